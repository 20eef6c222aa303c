"""The README table of the SmolLM2-135M-Instruct runs: one row per run directory under results/real/smollm2,
read from its results.json (strict and flexible accuracy, extraction rate, Δ, Δi→c, Δc→i with their 95%
intervals, tokens/s, wall time). Usage: python results/real/table.py > results/real/table.md"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUNS = Path(__file__).resolve().parent / "smollm2"


def cell(metrics: dict, name: str, signed: bool = False) -> str:
    entry = metrics.get(name)
    if not entry or entry.get("value") is None:
        return "n/a"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    text = fmt.format(entry["value"])
    if entry.get("ci95"):
        low, high = entry["ci95"]
        text += f" [{fmt.format(low)}, {fmt.format(high)}]"
    return text


def row(run: Path) -> list[str]:
    results = json.loads((run / "results.json").read_text(encoding="utf-8"))
    metrics, timing = results["metrics"], results.get("timing", {})
    counts = results.get("counts", {})
    wall = results.get("wall_time_s")
    return [run.name, str(counts.get("problems", "?")),
            cell(metrics, "acc_t1"), cell(metrics, "acc_t2"),
            cell(metrics, "acc_t1_flexible"), cell(metrics, "acc_t2_flexible"),
            f"{cell(metrics, 'extraction_rate_t1')} / {cell(metrics, 'extraction_rate_t2')}",
            cell(metrics, "delta", True), cell(metrics, "delta_i2c", True), cell(metrics, "delta_c2i", True),
            cell(metrics, "delta_flexible", True),
            "n/a" if timing.get("tokens_per_s") is None else f"{timing['tokens_per_s']:.1f}",
            "n/a" if wall is None else f"{wall / 60:.1f} min"]


HEADER = ["run", "problems", "strict Acc@t1", "strict Acc@t2", "flexible Acc@t1", "flexible Acc@t2",
          "extracted t1 / t2 (strict)", "Δ(t1,t2)", "Δi→c", "Δc→i", "flexible Δ", "tokens/s", "wall time"]


def main(runs: list[Path]) -> None:
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for run in runs:
        if (run / "results.json").is_file():
            print("| " + " | ".join(row(run)) + " |")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or sorted(p for p in RUNS.iterdir() if p.is_dir()))
