#!/usr/bin/env bash
# The short SmolLM2-135M-Instruct runs of results/real/README.md, greedy, CLI only, one after another
# (run from the repository root after `make real-model`; one torch thread, niced, on a shared machine).
set -euo pipefail
M=models/smollm2-135m-instruct
O=results/real/smollm2
KO=${DATA:-../shared/data}/score_toy/SCoRe_Dataset.csv  # DATA: where ../shared/data is
run() { nice -n 10 .venv/bin/score-bench eval --model $M --threads 1 "$@"; }
run --task score-toy --max-new-tokens 128 --output $O/score-toy-en
run --task score-toy --max-new-tokens 128 --task-first-attempts --output $O/score-toy-en-repair
run --task score-toy --max-new-tokens 128 --task-option path=$KO --output $O/score-toy-ko
run --task score-toy --max-new-tokens 128 --task-option path=$KO --task-first-attempts --output $O/score-toy-ko-repair
run --task arith --max-new-tokens 256 --output $O/arith
