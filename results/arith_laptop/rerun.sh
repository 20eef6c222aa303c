#!/usr/bin/env bash
# Reruns every number behind results/demo, results/demo-seed1 and results/arith_laptop/stage2_published at the
# checked-out commit, from the embedded base model models/base-seed0 (`make base-model` builds it when missing).
# Every command runs with the CPU kernels the demo pins (score_bench/harness/runtime/cpu_kernels.py) and one thread, so
# the numbers are the same on any x86-64 CPU with AVX2. About 45 min on a quiet 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
make base-model
make demo                                                      # seed 0 -> results/demo/ and results/demo/quick/
rm -rf runs/demo-seed1
$BIN/score-bench demo --seed 1 --runs-dir runs/demo-seed1 --results-dir results/demo-seed1

# SCoRe with Stage II as published (stage2_attempt1_kl=0), seeds 0 and 1 side by side, one thread each.
eval "export $($BIN/python -c 'from score_bench.harness.runtime.cpu_kernels import PINNED; print(" ".join(f"{k}={v}" for k, v in PINNED.items()))')"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
published() {
  local s=$1
  rm -rf runs/exp2/score-published-s$s runs/exp2/eval-score-published-s$s
  $BIN/score-bench train --task arith --trainer score --model models/base-seed0 --output runs/exp2/score-published-s$s \
    --preset laptop --set seed=$s --set stage2_attempt1_kl=0 --threads 1
  $BIN/score-bench eval --model runs/exp2/score-published-s$s --task arith --split test --max-new-tokens 64 --seed $s \
    --output runs/exp2/eval-score-published-s$s --threads 1
  cp runs/exp2/score-published-s$s/training_log.jsonl results/arith_laptop/stage2_published/training_log-s$s.jsonl
  cp runs/exp2/eval-score-published-s$s/results.json results/arith_laptop/stage2_published/eval-s$s.json
}
published 0 > runs/published-s0.log 2>&1 &
first=$!
published 1 > runs/published-s1.log 2>&1
wait $first
