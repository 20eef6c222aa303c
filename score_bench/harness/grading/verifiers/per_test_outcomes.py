"""Per-test outcomes of programs: how majority voting groups code answers (harness.grading.voting).

Two programs for one problem are the same answer when they pass and fail the same tests: their outcome
vectors on the problem's tests are identical, whatever their text. Grading runs a problem's tests as one
suite that stops at the first failure, so it records no per-test outcome; here each test runs on its own,
through the verifier's own `verify_batch` (the same sandboxes, limits and checker), all programs and tests of
a call in one batch.

A problem's tests come from its test code (Problem.reference, see harness.grading.verifiers.code): the statements of
`check(candidate)`'s body when the code defines `check` (HumanEval), else its top-level statements (MBPP's
asserts). A test is such a statement that holds an assert and a call; every other statement (imports,
assignments, helper definitions, `assert True`) is context, kept before each test in its own order. Test code
with fewer than two tests is one test. A test's outcome is its verdict's status (correct, incorrect or error),
so a program that cannot load fails every test alike.

The vote's verdict stays the grading's (harness.grading.voting: the group's first program, graded on the whole suite
under one time limit). Run alone, each test gets the whole limit, so a program too slow for the suite can pass
every test alone: it then votes with the right programs, and counts wrong when it is the group's first.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import replace
from functools import lru_cache
from typing import Callable, Sequence

from score_bench.harness.contracts.types import Problem, Verdict

__all__ = ["split_tests", "per_test_outcomes", "same_per_test_outcomes"]

VerifyBatch = Callable[[Sequence[tuple[Problem, str | None]]], list[Verdict]]


@lru_cache(maxsize=4096)
def split_tests(test_code: str) -> tuple[str, ...]:
    """The test code as one test code per test (see the module docstring); (test_code,) when it has fewer
    than two tests or does not parse."""
    try:
        tree = ast.parse(test_code)
    except SyntaxError:
        return (test_code,)
    check = next((node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.name == "check"), None)
    owner = check if check is not None else tree
    tests = [i for i, statement in enumerate(owner.body) if _is_test(statement)]
    if len(tests) < 2:
        return (test_code,)
    variants = []
    for kept in tests:
        owner.body, original = [s for i, s in enumerate(owner.body) if i not in tests or i == kept], owner.body
        variants.append(ast.unparse(copy.deepcopy(tree)))
        owner.body = original
    return tuple(variants)


def _is_test(statement: ast.stmt) -> bool:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    nodes = list(ast.walk(statement))
    return any(isinstance(n, ast.Assert) for n in nodes) and any(isinstance(n, ast.Call) for n in nodes)


def per_test_outcomes(verify_batch: VerifyBatch, items: Sequence[tuple[Problem, str]]) -> list[tuple[str, ...]]:
    """Each (problem, program)'s outcome per test of the problem ("correct", "incorrect" or "error"), from one
    verify_batch call over every program and test."""
    runs = [(replace(problem, reference=test), program)
            for problem, program in items for test in split_tests(problem.reference)]
    statuses = iter([verdict.status.value for verdict in verify_batch(runs)] if runs else [])
    return [tuple(next(statuses) for _ in split_tests(problem.reference)) for problem, _ in items]


def same_per_test_outcomes(verify_batch: VerifyBatch, items: Sequence[tuple[Problem, str, str]]) -> list[bool]:
    """Whether each (problem, a, b) has identical per-test outcomes; each distinct program runs once."""
    distinct: dict[tuple[str, str, str], tuple[Problem, str]] = {}
    for problem, a, b in items:
        for program in (a, b):
            distinct.setdefault((problem.id, problem.reference, program), (problem, program))
    outcomes = dict(zip(distinct, per_test_outcomes(verify_batch, list(distinct.values()))))
    return [outcomes[(p.id, p.reference, a)] == outcomes[(p.id, p.reference, b)] for p, a, b in items]
