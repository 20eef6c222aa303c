"""Grade every MBPP reference solution through `score-bench grade`, full and sanitized, and record the counts.

    SCORE_BENCH_DATA_DIR=../shared/data python bench/check_mbpp_references.py [--variant full|sanitized|both]

For each variant: writes a samples file whose one response per row is the reference code in a ```python fence,
runs the `score-bench grade` command line on it (the path a user takes), and checks every row is correct.
Writes results/mbpp/references-<variant>/ (grades.jsonl, results.json) and the samples file beside them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from score_bench.tasks.mbpp import SPLITS, MbppTask

ROOT = Path(__file__).resolve().parent.parent
TASK_NAMES = {"full": "mbpp", "sanitized": "mbpp-sanitized"}


def write_samples(variant: str, path: Path) -> int:
    task = MbppTask(variant=variant)
    rows = [{"id": p.id, "responses": [f"```python\n{p.metadata['canonical_solution']}\n```"]}
            for split in SPLITS for p in task.problems(split)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(rows)


def check(variant: str, out_root: Path) -> dict:
    out = out_root / f"references-{variant}"
    samples = out / "samples.jsonl"
    count = write_samples(variant, samples)
    command = [str(Path(sys.executable).with_name("score-bench")), "grade", "--task", TASK_NAMES[variant],
               "--samples", str(samples), "--output", str(out)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    grades = [json.loads(line) for line in (out / "grades.jsonl").read_text().splitlines()]
    failed = [(g["id"], g["detail"][0]) for g in grades if not g["correct"][0]]
    print(f"{variant}: {len(grades) - len(failed)}/{count} reference solutions graded correct")
    for problem_id, detail in failed:
        print(f"  {problem_id}: {detail}")
    return {"variant": variant, "rows": count, "correct": len(grades) - len(failed),
            "failed": [problem_id for problem_id, _ in failed]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("full", "sanitized", "both"), default="both")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "mbpp")
    args = parser.parse_args()
    variants = ("full", "sanitized") if args.variant == "both" else (args.variant,)
    outcomes = [check(variant, args.output) for variant in variants]
    if any(o["failed"] for o in outcomes):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
