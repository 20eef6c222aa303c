"""`score-bench grade` as a Python API: responses produced anywhere, graded attempt by attempt as the rollout grades
them (harness.grading.attempts), summarised by the metrics eval reports."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.progress import Progress
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Problem
from score_bench.harness.evaluation.metrics import pass_at_k_by_turn, summarize
from score_bench.harness.evaluation.result_schema import SCHEMA_VERSION
from score_bench.harness.grading.attempts import DETAIL_CAP, grade_attempts
from score_bench.harness.runtime.input_files import read_bytes, read_jsonl_objects
from score_bench.harness.runtime.provenance import problems_hash, provenance, write_json_atomic, write_jsonl_atomic


@dataclass(frozen=True)
class SampleRow:
    id: str
    responses: tuple[str, ...]


def read_samples(path: Path) -> list[SampleRow]:
    """Rows {"id": ..., "responses": [attempt1, attempt2, ...]}; any malformed line fails naming its number."""
    path = Path(path)
    rows = []
    for number, row in read_jsonl_objects(path, "--samples file"):
        if "id" not in row or "responses" not in row:
            raise InputError(f'{path}:{number}: a row must be an object with "id" and "responses"')
        responses = row["responses"]
        if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
            raise InputError(f'{path}:{number}: "responses" must be a non-empty list of strings')
        rows.append(SampleRow(str(row["id"]), tuple(responses)))
    attempts = {len(row.responses) for row in rows}
    if len(attempts) > 1:
        raise InputError(f"{path}: rows have different numbers of attempts ({sorted(attempts)}); grade them apart")
    return rows


def resolve_problems(task: Task, ids: set[str], split: str | None, source: Path) -> dict[str, Problem]:
    """The task's problems for `ids`, from `split` or else from every split; an unknown id fails by name."""
    found: dict[str, Problem] = {}
    for name in [split] if split else list(task.splits):
        found.update({p.id: p for p in task.problems(name) if p.id in ids})
        if len(found) == len(ids):
            break
    unknown = sorted(ids - found.keys())
    if unknown:
        where = f"split '{split}'" if split else "any split"
        raise InputError(f"{source}: id {unknown[0]!r} is not a problem of task '{task.name}' in {where}"
                         + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    return found


def correctness_by_problem(ids: Sequence[str], correct: Sequence[Sequence[bool]]) -> list[list[list[bool]]]:
    """Group per-row correctness into [problem][sample][attempt], problems in first-seen order: rows that
    repeat an id are further samples of that problem, and problems may have different numbers of them."""
    grouped: dict[str, list[list[bool]]] = {}
    for row_id, row in zip(ids, correct):
        grouped.setdefault(row_id, []).append(list(row))
    return list(grouped.values())


def metrics_block(correct: list[list[list[bool]]], seed: int = 0, **per_attempt) -> dict:
    """The "metrics" entry of a results file, plus pass@k per turn when every problem has several samples
    (k up to the fewest samples of a problem; each problem's pass@k uses its own n).
    `per_attempt`: summarize's flexible / extracted / extracted_flexible arrays, shaped like `correct`."""
    metrics = summarize(correct, seed=seed, **per_attempt)
    n_samples = min(len(cell) for cell in correct)
    if n_samples > 1:
        ks = sorted({1, n_samples} | {k for k in (5, 10) if k < n_samples})
        metrics["pass_at_k"] = pass_at_k_by_turn(correct, ks=ks)
    return metrics


def _sample_counts(problems: Sequence[Problem], correct: list[list[list[bool]]]) -> dict:
    """samples_per_problem (None when problems differ), its range, and per-problem counts when they differ."""
    counts = [len(cell) for cell in correct]
    equal = len(set(counts)) == 1
    out: dict = {"samples_per_problem": counts[0] if equal else None,
                 "samples_min": min(counts), "samples_max": max(counts)}
    if not equal:
        out["samples_by_problem"] = {p.id: n for p, n in zip(problems, counts)}
    return out


def _cap(text: str | None) -> str | None:
    return text if text is None or len(text) <= DETAIL_CAP else text[:DETAIL_CAP] + "…[truncated]"


def grade_file(task: Task, samples: Path, output: Path, split: str | None = None,
               progress: Progress | None = None, task_options: Mapping[str, Any] | None = None) -> dict:
    """Grade a samples file; write output/grades.jsonl and output/results.json; return the results.
    `task_options` are those `task` was built with: results record them as eval's do (config.task_options)."""
    started = time.time()
    rows = read_samples(samples)
    samples_sha256 = hashlib.sha256(read_bytes(samples, "--samples file")).hexdigest()
    config = json.loads(json.dumps({"task": task.name, "split": split, "task_options": dict(task_options or {})},
                                   default=str))
    check_grade_output(Path(output), task.name, samples_sha256, config["task_options"])
    problems = resolve_problems(task, {row.id for row in rows}, split, Path(samples))
    pairs = [(problems[row.id], response) for row in rows for response in row.responses]
    graded_pairs = iter(grade_attempts(task, pairs, progress))
    grades = []
    for row in rows:
        row_grades = [next(graded_pairs) for _ in row.responses]
        strict, flexible = [g.verdict for g in row_grades], [g.flexible_verdict for g in row_grades]
        grades.append({
            "schema_version": SCHEMA_VERSION,
            "id": row.id,
            "correct": [v.correct for v in strict],
            "extracted": [_cap(v.extracted) for v in strict],
            "status": [v.status.value for v in strict],
            "detail": [_cap(v.detail) for v in strict],
            "correct_flexible": [v.correct for v in flexible],
            "extracted_flexible": [_cap(v.extracted) for v in flexible],
        })
    ids = [g["id"] for g in grades]
    correct = correctness_by_problem(ids, [g["correct"] for g in grades])
    per_attempt = {
        "flexible": correctness_by_problem(ids, [g["correct_flexible"] for g in grades]),
        "extracted": correctness_by_problem(ids, [[e is not None for e in g["extracted"]] for g in grades]),
        "extracted_flexible": correctness_by_problem(
            ids, [[e is not None for e in g["extracted_flexible"]] for g in grades]),
    }
    graded = [problems[row_id] for row_id in dict.fromkeys(row.id for row in rows)]
    results = {
        "schema_version": SCHEMA_VERSION,
        "kind": "grade",
        "task": {"name": task.name, "split": split, "problems": len(graded), "problems_sha256": problems_hash(graded),
                 "correction_instruction": task.correction_instruction},
        "config": config,
        "samples_file": str(samples),
        "samples_sha256": samples_sha256,
        "counts": {"rows": len(rows), "problems": len(correct), **_sample_counts(graded, correct),
                   "attempts": len(rows[0].responses),
                   "errors": sum(status == "error" for g in grades for status in g["status"])},
        "metrics": metrics_block(correct, **per_attempt),
        "wall_time_s": round(time.time() - started, 3),
        **provenance(),
    }
    write_jsonl_atomic(Path(output) / "grades.jsonl", grades)
    write_json_atomic(Path(output) / "results.json", results)
    return results



def check_grade_output(output: Path, task: str, samples_sha256: str, task_options: dict | None = None) -> None:
    """Refuse an --output that holds another run: an eval or training run, or the grades of another samples
    file, task or task options. Regrading the same file with the same task into its own directory is allowed."""
    from score_bench.harness.runtime.input_files import read_json

    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output} is a file, not a directory")
    others = [name for name in ("samples.jsonl", "eval_config.json", "training_log.jsonl", "trainer_config.json")
              if (output / name).exists()]
    if others:
        raise InputError(f"--output {output} holds another run ({others[0]}); grading there would replace its "
                         "results: use a new directory")
    if (output / "results.json").exists():
        previous = read_json(output / "results.json", "results file")
        same = (isinstance(previous, dict) and previous.get("kind") == "grade"
                and previous.get("samples_sha256") == samples_sha256
                and isinstance(previous.get("task"), dict) and previous["task"].get("name") == task
                and isinstance(previous.get("config", {}), dict)
                and previous.get("config", {}).get("task_options", {}) == (task_options or {}))
        if not same:
            raise InputError(f"--output {output} holds the results of another run; use a new directory")
