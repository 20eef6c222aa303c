#!/usr/bin/env bash
# Copies the countdown runs of results/countdown/rerun.sh (runs/countdown/) into results/: per seed the
# comparison table (score-bench compare), the plots (score-bench plot), every eval's results.json and samples, the
# training logs; the scale runs into results/scale/countdown-*. Then rewrites machine paths (portable_paths.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
RUNS=runs/countdown
OUT=results/countdown/laptop
rm -rf "$OUT" && mkdir -p "$OUT"/eval "$OUT"/samples "$OUT"/training_logs
named=$(mktemp -d)
trap 'rm -rf "$named"' EXIT
for seed in 0 1; do
  mkdir -p "$named/s$seed/base"
  cp results/countdown/base-seed0-test500/{results.json,samples.jsonl} "$named/s$seed/base/"
  for run in score-stage1 score star pair-sft; do
    src=$RUNS/eval-${run%-stage1}-s$seed
    [ "$run" = score-stage1 ] && src=$src-stage1
    mkdir -p "$named/s$seed/$run"
    cp "$src"/{results.json,samples.jsonl} "$named/s$seed/$run/"
    cp "$src/results.json" "$OUT/eval/$run-s$seed.json"
    gzip -9nc "$src/samples.jsonl" > "$OUT/samples/$run-s$seed.jsonl.gz"
  done
  for trainer in score star pair-sft; do
    cp "$RUNS/$trainer-s$seed/training_log.jsonl" "$OUT/training_logs/$trainer-s$seed.jsonl"
  done
  (cd "$named/s$seed" && "$OLDPWD/$BIN/score-bench" compare base score-stage1 score star pair-sft --format markdown) \
    > "$OUT/comparison-s$seed.md"
  $BIN/score-bench plot "$RUNS/score-s$seed" "$RUNS/star-s$seed" "$RUNS/pair-sft-s$seed" \
    "$named/s$seed"/{base,score-stage1,score,star,pair-sft} --output "$OUT/plots-s$seed" > /dev/null
done
for name in base score-s0 score-s1; do
  dest=results/scale/countdown-$name
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$RUNS/scale-$name"/{scale.json,scale.png,eval_config.json} "$dest/"
  for file in samples votes; do gzip -9nc "$RUNS/scale-$name/$file.jsonl" > "$dest/$file.jsonl.gz"; done
done
$BIN/python results/portable_paths.py
