"""Re-grade the SmolLM2 runs with the current verifiers through `score-bench grade`, without generating again.

For each run directory under results/real/smollm2 it writes graded/responses.jsonl (the attempts of every
problem whose conversation finished, in the run's order) and grades it into graded/ with the task and task
options the run was generated with. The Korean runs are graded a second time, into graded-ko/, against the
built-in Korean set (`language=ko`: hand-written keys, the seed's typo corrected), whose questions and ids are the
seed CSV's. Runs stopped early (MATH, HumanEval, arith on this shared machine) are graded on what finished.

Usage (repository root): python results/real/regrade.py [RUN ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE / "smollm2"
SCORE_BENCH = Path(sys.executable).parent / "score-bench"


def responses(run: Path, turns: int) -> list[dict]:
    rows = []
    for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if len(row["attempts"]) == turns:
            rows.append({"id": row["id"], "responses": [attempt["text"] for attempt in row["attempts"]]})
    return rows


def grade(run: Path, output: str, options: dict) -> None:
    config = json.loads((run / "eval_config.json").read_text(encoding="utf-8"))["config"]
    graded = run / output
    graded.mkdir(exist_ok=True)
    for stale in ("grades.jsonl", "results.json"):
        (graded / stale).unlink(missing_ok=True)
    samples = graded / "responses.jsonl"
    samples.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in responses(run, config["turns"])),
                       encoding="utf-8")
    command = [str(SCORE_BENCH), "grade", "--task", config["task"], "--split", config["split"],
               "--samples", str(samples), "--output", str(graded)]
    for key, value in options.items():
        command += ["--data-dir", value] if key == "data_dir" else ["--task-option", f"{key}={value}"]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)


def main(names: list[str]) -> None:
    runs = [RUNS / name for name in names] or sorted(p for p in RUNS.iterdir() if (p / "samples.jsonl").is_file())
    for run in runs:
        options = json.loads((run / "eval_config.json").read_text(encoding="utf-8"))["config"]["task_options"]
        grade(run, "graded", options)
        if run.name.startswith("score-toy-ko"):
            grade(run, "graded-ko", {"language": "ko"})


if __name__ == "__main__":
    main(sys.argv[1:])
