"""The README table of the SmolLM2-135M-Instruct runs: one row per run directory under results/real/smollm2,
read from its re-graded results (regrade.py; strict and flexible accuracy, extraction rate, Δ, Δi→c, Δc→i with their 95%
intervals, tokens/s, wall time). Usage: python results/real/table.py > results/real/table.md; for a run stopped early, first
python results/real/table.py --record-stopped RUN_DIR (writes RUN_DIR/stopped.json from the files' times)."""

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


def graded_results(run: Path) -> dict:
    """regrade.py's results (graded-ko/ for the Korean runs: the built-in Korean set's keys), else eval's."""
    for name in ("graded-ko", "graded", "."):
        if (run / name / "results.json").is_file():
            return json.loads((run / name / "results.json").read_text(encoding="utf-8"))
    raise FileNotFoundError(run / "results.json")


def record_stopped(run: Path) -> None:
    """For a run stopped before its end (no eval results.json): what finished and how fast, from the files'
    times (eval_config.json is written when generation starts, samples.jsonl after each finished batch)."""
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    tokens = sum(a["tokens"] or 0 for row in rows for a in row["attempts"] if not a["given"])
    wall = (run / "samples.jsonl").stat().st_mtime - (run / "eval_config.json").stat().st_mtime
    config = json.loads((run / "eval_config.json").read_text(encoding="utf-8"))["config"]
    stopped = {"problems_finished": len(rows), "problems_planned": config["limit"], "generated_tokens": tokens,
               "wall_time_s": round(wall, 1), "tokens_per_s": round(tokens / wall, 2) if wall > 0 else None,
               "note": "stopped before its end on a shared 2-core machine; timing from file times"}
    (run / "stopped.json").write_text(json.dumps(stopped, indent=2) + "\n", encoding="utf-8")


def row(run: Path) -> list[str]:
    results = graded_results(run)
    metrics, counts = results["metrics"], results.get("counts", {})
    if (run / "results.json").is_file():
        generated = json.loads((run / "results.json").read_text(encoding="utf-8"))
        timing, wall = generated.get("timing", {}), generated.get("wall_time_s")
        problems = str(counts.get("problems", "?"))
    else:
        stopped = json.loads((run / "stopped.json").read_text(encoding="utf-8"))
        timing, wall = stopped, stopped["wall_time_s"]
        problems = f"{counts.get('problems', '?')} (stopped; of {stopped['problems_planned'] or 'all'})"
    return [run.name, problems,
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
    if runs and str(runs[0]) == "--record-stopped":
        for run in runs[1:]:
            record_stopped(run)
        return
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for run in runs:
        if (run / "results.json").is_file() or (run / "stopped.json").is_file():
            print("| " + " | ".join(row(run)) + " |")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or sorted(p for p in RUNS.iterdir() if p.is_dir()))
