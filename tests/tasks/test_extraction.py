"""Strict and flexible extraction of every task, from a table of model outputs (extraction_cases.json).

Each case: task, response, the expected strict and flexible extraction (null: nothing extracted), and where
given the reference and the expected [strict, flexible] correctness through the task's real verifier and the
shared grading path. Outputs marked "source": "smollm2" are verbatim greedy outputs of SmolLM2-135M-Instruct
(see the file's cases); the others are written in the shapes it and similar models produce.
math/humaneval extraction tests need no data; the graded math cases spawn math-verify workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from score_bench.harness.contracts.types import Problem
from score_bench.harness.grading.attempts import grade_attempts
from score_bench.tasks.arith import ArithTask
from score_bench.tasks.countdown import CountdownTask
from score_bench.tasks.humaneval import HumanEvalTask
from score_bench.tasks.math import MathTask
from score_bench.tasks.score_toy import ScoreToyTask

CASES = json.loads((Path(__file__).parent / "extraction_cases.json").read_text(encoding="utf-8"))
IDS = [f"{c['task']}: {c['why']}" for c in CASES]


@pytest.fixture(scope="module")
def tasks():
    made = {"math": MathTask(), "arith": ArithTask(), "countdown": CountdownTask(), "humaneval": HumanEvalTask(),
            "score-toy": ScoreToyTask()}
    yield made
    made["math"].verifier.close()


def problem_of(case: dict, tasks: dict) -> Problem:
    task = tasks[case["task"]]
    if case["task"] == "math":
        return Problem("math/case", case.get("question", "?"), case.get("reference", "0"))
    if case["task"] == "arith":
        return task.problem(*case.get("operands", (47, 38)))
    if case["task"] == "countdown":
        return task.problem(*case.get("instance", ((3, 5, 7), 22)))
    if case["task"] == "humaneval":
        return {p.id: p for p in task.problems("test")}[case.get("problem", "HumanEval/0")]
    return task.problems("test")[case.get("row", 0)]


def check(extracted: str | None, expected: str | None, case: dict) -> None:
    if expected is None:
        assert extracted is None
    elif case["task"] == "humaneval":  # a program: it holds the expected code, under the prompt's preamble
        assert extracted is not None and expected in extracted
        assert extracted.startswith("from typing import List")
    else:
        assert extracted == expected


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_extraction(case, tasks):
    task, problem = tasks[case["task"]], problem_of(case, tasks)
    check(task.extract(problem, case["response"]), case["strict"], case)
    flexible = task.extract_flexible(problem, case["response"])
    check(flexible, case["flexible"], case)
    if "not_in_flexible" in case:
        assert case["not_in_flexible"] not in flexible


def test_every_task_has_cases_in_both_modes():
    for name in ("math", "arith", "countdown", "humaneval", "score-toy"):
        mine = [c for c in CASES if c["task"] == name]
        assert any(c["strict"] is not None for c in mine) and any(c["strict"] is None for c in mine), name
        assert any(c["flexible"] is not None for c in mine) and any(c["flexible"] is None for c in mine), name


@pytest.mark.parametrize("name", ["math", "arith", "countdown", "score-toy"])
def test_graded_cases_through_the_shared_grading_path(name, tasks):
    graded = [c for c in CASES if c["task"] == name and "correct" in c]
    grades = grade_attempts(tasks[name], [(problem_of(c, tasks), c["response"]) for c in graded])
    got = {c["why"]: [g.verdict.correct, g.flexible_verdict.correct] for c, g in zip(graded, grades)}
    assert got == {c["why"]: c["correct"] for c in graded}
    for case, grade in zip(graded, grades):
        assert (grade.verdict.extracted, grade.flexible_verdict.extracted) == (case["strict"], case["flexible"])
