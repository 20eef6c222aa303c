"""Benchmark of the embedded base model: build it for several seeds and check the issue-4 band.

For each seed: build time (budget: 600 s on the 2-core machine), greedy Accuracy@t1 and @t2 and Δ with 95%
bootstrap intervals over the 500 arith test problems, measured by the same run_eval that `score-bench eval`
uses. Pass: 0.40 <= Acc@t1 <= 0.75 and Δ not significantly positive (its interval reaches 0 or below), for
every seed, each built in at most 600 s. Writes results/base_model/summary.json.

    python bench/bench_base_model.py [--seeds 0 1 2] [--out runs/base_model] [--keep-seed0 models/base-seed0]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from score_bench.embedded import BaseModelConfig, build_base_model
from score_bench.harness.runtime.provenance import provenance, write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
BAND = (0.40, 0.75)
BUDGET_SECONDS = 600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "base_model")
    parser.add_argument("--summary", type=Path, default=ROOT / "results" / "base_model" / "summary.json")
    parser.add_argument("--keep-seed0", type=Path, default=None, help="also copy the seed-0 model here")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        output = args.out / f"seed{seed}"
        if output.exists():
            shutil.rmtree(output)
        started = time.monotonic()
        build_base_model(replace(BaseModelConfig(), seed=seed, output_dir=str(output)))
        total = time.monotonic() - started
        card = json.loads((output / "card.json").read_text())
        m = card["measured"]["metrics"]
        row = {
            "seed": seed, "build_seconds": card["build_seconds"], "build_and_measure_seconds": round(total, 1),
            "build_over_budget": round(card["build_seconds"] / BUDGET_SECONDS, 3),
            "steps": card["training"]["steps"], "final_loss": round(card["training"]["final_loss"], 4),
            **{name: m[name] for name in ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i")},
            "unchanged_share": card["measured"]["edit_ratio"]["t1_t2"]["unchanged"],
        }
        row["in_band"] = BAND[0] <= m["acc_t1"]["value"] <= BAND[1]
        row["delta_not_significantly_positive"] = m["delta"]["ci95"][0] <= 0
        row["within_budget"] = card["build_seconds"] <= BUDGET_SECONDS
        rows.append(row)
        print(f"seed {seed}: build {row['build_seconds']:.0f}s ({row['build_over_budget']:.2f} of budget), "
              f"acc_t1 {_fmt(m['acc_t1'])}, acc_t2 {_fmt(m['acc_t2'])}, delta {_fmt(m['delta'])}", flush=True)
        if seed == 0 and args.keep_seed0:
            if args.keep_seed0.exists():
                shutil.rmtree(args.keep_seed0)
            shutil.copytree(output, args.keep_seed0)
    passed = all(r["in_band"] and r["delta_not_significantly_positive"] and r["within_budget"] for r in rows)
    write_json_atomic(args.summary, {
        "command": "python " + " ".join([str(Path(sys.argv[0]))] + sys.argv[1:]),
        "criteria": {"acc_t1_band": BAND, "delta": "95% CI lower bound <= 0", "build_seconds_max": BUDGET_SECONDS},
        "config": BaseModelConfig().to_dict(),
        "seeds": rows, "passed": passed, "cpu_threads": BaseModelConfig().threads,
        "note": "Build times are wall-clock on a 2-core machine shared with other jobs at the time.",
        "provenance": provenance(),
    })
    print(f"{'PASS' if passed else 'FAIL'}: summary in {args.summary}")
    return 0 if passed else 1


def _fmt(metric: dict) -> str:
    lo, hi = metric["ci95"]
    return f"{metric['value']:.3f} [{lo:.3f}, {hi:.3f}]"


if __name__ == "__main__":
    raise SystemExit(main())
