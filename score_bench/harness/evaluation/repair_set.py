"""Repair sets: an eval run's wrong first attempts, as a first-attempts file for repair-only evaluation.

The paper's MBPP-R is the base model's wrong MBPP answers, given as attempt 1 so that only the correction is
generated and graded. `build_repair_set` reads a finished `score-bench eval` run (any task), keeps sample 0's
attempt 1 of every problem it got wrong, and writes JSONL rows {"id", "text", ...} that `eval --first-attempt`
loads. Every row carries `repair_set` (the source run's task, split and model): an evaluation given such a file
runs only the problems the file holds, in the split's order, and its results say they are repair results.
"""

from __future__ import annotations

import json
from pathlib import Path

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.runtime.input_files import read_json, read_text
from score_bench.harness.runtime.provenance import provenance, write_jsonl_atomic

SAMPLES_FILE, CONFIG_FILE = "samples.jsonl", "eval_config.json"
MARK = "repair_set"
"""The row field that marks a first-attempts file as a repair set (a subset of a split, by construction)."""


def build_repair_set(run_dir: Path, output: Path) -> dict:
    """Write the repair set of `run_dir` to `output`; returns a summary. Validates everything before writing."""
    run_dir, output = Path(run_dir), Path(output)
    if not run_dir.is_dir():
        raise InputError(f"--from {run_dir}: not a directory")
    config = _read_config(run_dir / CONFIG_FILE)
    rows = _read_samples(run_dir / SAMPLES_FILE)
    if output.suffix != ".jsonl":
        raise InputError(f"--output {output}: a repair set is JSONL; name the file *.jsonl")
    if output.exists():
        raise InputError(f"--output {output} exists; remove it or choose another path")
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: directory {output.parent} does not exist")
    settings = config.get("config", {})
    source = {"task": settings.get("task"), "split": settings.get("split"), "model": settings.get("model"),
              "weights_sha256": config.get("weights_sha256"), "problems_sha256": config.get("problems_sha256"),
              "run": str(run_dir)}
    if settings.get("first_attempts") or settings.get("task_first_attempts"):
        raise InputError(f"--from {run_dir}: that run's first attempts were given, not generated; "
                         f"build a repair set from a run that generated them")
    wrong = [row for row in rows if not row["attempts"][0]["correct"]]
    if not wrong:
        raise InputError(f"--from {run_dir}: every first attempt is correct; the repair set would be empty")
    label = {"task": source["task"], "split": source["split"], "model": source["model"]}
    out_rows = [{"id": row["id"], "text": row["attempts"][0]["text"], "status": row["attempts"][0]["status"],
                 "detail": row["attempts"][0].get("detail", ""), MARK: label} for row in wrong]
    write_jsonl_atomic(output, out_rows)
    return {"output": str(output), "rows": len(out_rows), "problems_in_run": len(rows), "source": source,
            "built_with": provenance()}


def repair_set_ids(rows: list[dict]) -> set[str] | None:
    """The ids of a first-attempts file's rows when every row is marked as a repair set, else None."""
    if rows and all(isinstance(row, dict) and isinstance(row.get(MARK), dict) for row in rows):
        return {str(row["id"]) for row in rows}
    return None


def read_marked_rows(path: Path) -> list[dict]:
    """The JSON rows of a JSONL first-attempts file (for the repair-set mark); [] for other formats."""
    if Path(path).suffix == ".json":
        return []
    rows = []
    for line in read_text(path, "--first-attempt file").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                return []
    return rows


def _read_config(path: Path) -> dict:
    if not path.exists():
        raise InputError(f"--from {path.parent}: no {CONFIG_FILE}; is it a `score-bench eval` run directory?")
    config = read_json(path, "--from run file")
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise InputError(f"--from {path.parent}: {CONFIG_FILE} is not an eval run's config")
    return config


def _read_samples(path: Path) -> list[dict]:
    """Sample 0 of every problem, in file order; any malformed row fails naming its line."""
    if not path.exists():
        raise InputError(f"--from {path.parent}: no {SAMPLES_FILE}; the run has not produced samples")
    text = read_text(path, "--from run file")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ok = (isinstance(row["id"], str) and isinstance(row["attempts"][0]["text"], str)
                  and isinstance(row["attempts"][0]["correct"], bool))
        except (ValueError, KeyError, IndexError, TypeError):
            ok = False
        if not ok:
            raise InputError(f"{path}:{number}: not a sample row (id, attempts[0].text, attempts[0].correct)")
        if row.get("sample", 0) == 0:
            rows.append(row)
    if not rows:
        raise InputError(f"{path}: holds no samples")
    return rows
