"""Grading attempts: the task extracts each response's answer twice (strictly, as its prompt asks, and flexibly,
wherever the response puts it) and its verifier judges each distinct extraction. The rollout grades every attempt
here, and so does `score-bench grade` (harness.evaluation.grade_file)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from score_bench.harness.contracts.progress import Progress, phase
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Problem, Status, Verdict

__all__ = ["AttemptGrade", "grade_attempts", "DETAIL_CAP"]

DETAIL_CAP = 500
"""Characters of a verdict's detail and of each extracted answer kept in grades.jsonl: enough to debug."""
VERIFY_CHUNK = 256
"""Items per verifier call: large enough to keep every worker busy, small enough for live progress."""


@dataclass(frozen=True)
class AttemptGrade:
    """One response graded twice: as the task's stated format asks (strict, the headline) and as the task's
    flexible extraction reads it. Each verdict's `extracted` is its extraction (None: nothing extracted)."""

    verdict: Verdict
    flexible_verdict: Verdict


def grade_attempts(task: Task, pairs: Sequence[tuple[Problem, str]], progress: Progress | None = None,
                   description: str = "grading") -> list[AttemptGrade]:
    """Grades of (problem, response) pairs, in order: strict and flexible extraction by the task, judgement by
    its verifier (once per distinct extraction: a flexible answer equal to the strict one shares its verdict).
    A sample that fails to extract, or a verifier that fails, gives verdicts with status error for the samples
    concerned, never a crashed run."""
    items: list[tuple[Problem, str | None]] = []
    failed: dict[int, Verdict] = {}
    for problem, response in pairs:
        for extract in (task.extract, task.extract_flexible):
            try:
                items.append((problem, extract(problem, response)))
            except Exception as err:
                failed[len(items)] = Verdict(Status.ERROR, None, _error_detail("extraction failed", err))
                items.append((problem, None))
    # items alternate strict, flexible; a flexible extraction equal to its strict one is not verified again
    same = {i for i in range(1, len(items), 2)
            if i not in failed and i - 1 not in failed and items[i][1] == items[i - 1][1]}
    to_verify = [(i, item) for i, item in enumerate(items) if i not in failed and i not in same]
    verdicts: dict[int, Verdict] = dict(failed)
    with phase(progress, description, len(to_verify)) as step:
        for start in range(0, len(to_verify), VERIFY_CHUNK):
            chunk = to_verify[start:start + VERIFY_CHUNK]
            for (i, (_, extracted)), verdict in zip(chunk, _verify([item for _, item in chunk], task)):
                verdicts[i] = replace(verdict, extracted=extracted, detail=verdict.detail[:DETAIL_CAP])
            step(len(chunk))
    for i in same:
        verdicts[i] = verdicts[i - 1]
    return [AttemptGrade(verdicts[i], verdicts[i + 1]) for i in range(0, len(items), 2)]


def _verify(items: list[tuple[Problem, str | None]], task: Task) -> list[Verdict]:
    try:
        verdicts = list(task.verifier.verify_batch(items))
    except Exception as err:
        return [Verdict(Status.ERROR, None, _error_detail("verifier failed", err))] * len(items)
    if len(verdicts) != len(items):
        detail = f"verifier returned {len(verdicts)} verdicts for {len(items)} answers"
        return [Verdict(Status.ERROR, None, detail)] * len(items)
    return verdicts


def _error_detail(what: str, err: BaseException) -> str:
    return f"{what}: {type(err).__name__}: {err}"[:DETAIL_CAP]
