#!/usr/bin/env bash
# Reruns every number of results/countdown/laptop and results/scale/countdown-* at the checked-out commit: SCoRe
# (Stage II as published), STaR and Pair-SFT from the embedded countdown base model, seeds 0 and 1, the same
# budget (the laptop-countdown preset: 200 rollout batches of 16 problems x 4 samples, 200 updates), evaluated
# greedily on the 500 test problems; then `score-bench scale` on the base model and on both SCoRe checkpoints.
# Every command runs with the CPU kernels the demo pins and one thread, two at a time: about 2 h on a
# 2-core machine (SCoRe 20 min, STaR and Pair-SFT 25-30 min each, scale about 9 min per model).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
[ -d models/countdown-base-seed0 ] || $BIN/score-bench base-model --task countdown --output models/countdown-base-seed0 --seed 0
eval "export $($BIN/python -c 'from score_bench.harness.runtime.cpu_kernels import PINNED; print(" ".join(f"{k}={v}" for k, v in PINNED.items()))')"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
TASK=(--task countdown --task-option max_count=3)

train() {  # TRAINER SEED -> runs/countdown/TRAINER-sSEED, then its eval (and Stage I's, for score)
  local out=runs/countdown/$1-s$2
  rm -rf "$out" runs/countdown/eval-$1-s$2*
  $BIN/score-bench train "${TASK[@]}" --trainer "$1" --model models/countdown-base-seed0 --output "$out" \
    --preset laptop-countdown --set seed="$2" --threads 1
  for model in "$out" $([ "$1" = score ] && echo "$out/stage1"); do
    $BIN/score-bench eval --model "$model" "${TASK[@]}" --max-new-tokens 75 --limit 500 --threads 1 \
      --output "runs/countdown/eval-$(basename "$out")$([ "$model" = "$out" ] || echo -stage1)"
  done
}
scale() {  # NAME MODEL -> runs/countdown/scale-NAME
  rm -rf runs/countdown/scale-$1
  $BIN/score-bench scale --model "$2" "${TASK[@]}" --budgets 1,2,4,8,16,32 --max-new-tokens 75 --batch-size 250 \
    --temperature 0.7 --threads 1 --output runs/countdown/scale-$1
}

mkdir -p runs/countdown
(train score 0; train pair-sft 0; train star 1) > runs/countdown/first.log 2>&1 &
first=$!
(train score 1; train star 0; train pair-sft 1) > runs/countdown/second.log 2>&1
wait $first
(scale base models/countdown-base-seed0; scale score-s1 runs/countdown/score-s1) > runs/countdown/scale-first.log 2>&1 &
first=$!
scale score-s0 runs/countdown/score-s0 > runs/countdown/scale-second.log 2>&1
wait $first
bash results/countdown/collect.sh
