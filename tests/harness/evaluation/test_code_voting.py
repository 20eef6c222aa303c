"""Majority voting over programs: code answers group by identical per-test outcomes on the task's tests, with
real programs in the real sandbox, through the hook (harness.grading.voting) and through `scale`'s vote (by hand)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from score_bench.harness.contracts import registry
from score_bench.harness.evaluation.configs import ScaleConfig
from score_bench.harness.evaluation.scale import summarize_scale
from score_bench.harness.grading import sandbox
from score_bench.harness.grading.verifiers.per_test_outcomes import per_test_outcomes, split_tests
from score_bench.harness.grading.voting import group_answers
from score_bench.harness.runtime import settings

from test_scale import hand_vote

needs_sandbox = pytest.mark.skipif(sandbox.probe() is not None, reason=f"no working sandbox: {sandbox.probe()}")
DATA = settings.data_dir() or Path(__file__).resolve().parents[3].parent / "shared" / "data"
"""SCORE_BENCH_DATA_DIR (CI sets it), else ../shared/data beside the repo."""

# HumanEval/0 has_close_elements: 7 asserts, of which tests 1, 3, 5, 6 expect True and 2, 4, 7 expect False.
PAIRWISE = '''from typing import List
def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
'''
SORTED = '''def has_close_elements(numbers, threshold):
    ordered = sorted(numbers)
    return any(b - a < threshold for a, b in zip(ordered, ordered[1:]))
'''
ALWAYS_FALSE = "def has_close_elements(numbers, threshold):\n    return False\n"
NEVER_NEGATIVE_LENGTH = "def has_close_elements(numbers, threshold):\n    return len(numbers) < 0\n"
ALWAYS_TRUE = "def has_close_elements(numbers, threshold):\n    return True\n"
UNSORTED_NEIGHBOURS = '''def has_close_elements(numbers, threshold):
    return any(abs(a - b) < threshold for a, b in zip(numbers, numbers[1:]))
'''
BROKEN = "def has_close_elements(numbers, threshold)\n    return False\n"


def test_tests_split_per_assert_keeping_the_context():
    check_style = ("METADATA = {}\n\ndef check(candidate):\n    import math\n    assert True\n"
                   "    assert candidate(1) == 2\n    x = 3\n    for i in range(x):\n        assert candidate(i) >= 0\n")
    first, second = split_tests(check_style)
    assert "candidate(1) == 2" in first and "candidate(i)" not in first
    assert "candidate(i) >= 0" in second and "candidate(1)" not in second
    for variant in (first, second):  # the context (imports, assignments, `assert True`) stays in each test
        assert "METADATA" in variant and "import math" in variant and "x = 3" in variant and "assert True" in variant
    module_style = "def helper(v):\n    assert v\n    return v\nassert f(1) == helper(1)\nassert f(2) == 2\n"
    assert [v.count("assert f(") for v in split_tests(module_style)] == [1, 1]
    assert all("def helper" in v for v in split_tests(module_style))  # definitions are context, not tests
    assert split_tests("assert f(1) == 1\n") == ("assert f(1) == 1\n",)  # one test: as it is
    assert split_tests("assert f(1) ==\n") == ("assert f(1) ==\n",)  # does not parse: one test, left to grading


@pytest.fixture(scope="module")
def humaneval():
    task = registry.load_task("humaneval", workers=2)
    return task, next(p for p in task.problems("test") if p.id == "HumanEval/0")


@needs_sandbox
def test_outcome_vectors_of_real_programs(humaneval):
    task, problem = humaneval
    outcomes = per_test_outcomes(task.verifier.verify_batch, [(problem, ALWAYS_FALSE), (problem, BROKEN)])
    c, i = "correct", "incorrect"
    assert outcomes == [(i, c, i, c, i, i, c), (i,) * 7]


@needs_sandbox
def test_reference_solutions_pass_every_test_run_on_its_own(humaneval):
    """A sample of HumanEval and MBPP references (bench/check_split_tests.py checks them all): splitting the
    tests keeps each test runnable, so a right program's outcome vector is all "correct"."""
    task, _ = humaneval
    samples = [(task, [(p, p.question + p.metadata["canonical_solution"]) for p in task.problems("test")[::10]])]
    if (DATA / "mbpp" / "mbpp.jsonl").is_file():
        mbpp = registry.load_task("mbpp", data_dir=str(DATA), workers=2)
        samples.append((mbpp, [(p, p.metadata["canonical_solution"]) for p in mbpp.problems("test")[::25]]))
    for code_task, items in samples:
        outcomes = per_test_outcomes(code_task.verifier.verify_batch, items)
        assert sum(len(o) > 1 for o in outcomes) >= 0.9 * len(items)  # the tests were split
        assert [p.id for (p, _), o in zip(items, outcomes) if set(o) != {"correct"}] == [], code_task.name


@needs_sandbox
def test_programs_vote_together_when_they_pass_and_fail_the_same_tests(humaneval):
    task, problem = humaneval
    answers = [ALWAYS_FALSE, PAIRWISE, NEVER_NEGATIVE_LENGTH, SORTED, ALWAYS_TRUE, UNSORTED_NEIGHBOURS, None,
               BROKEN, SORTED + "# the same program, commented\n"]
    groups = group_answers([problem], [answers], task.verifier)[0]
    # two correct programs written differently vote together; so do two programs failing the same tests;
    # failing other tests (ALWAYS_TRUE, UNSORTED_NEIGHBOURS, BROKEN) is another group each
    assert groups == [0, 1, 0, 1, 2, 3, None, 4, 1]


@needs_sandbox
def test_scale_votes_over_mbpp_programs_match_a_vote_by_hand(tmp_path):
    """summarize_scale on hand-written MBPP samples (problem 11, remove_Occ: 3 tests and 2 challenge tests):
    the votes recomputed by hand from behaviour classes assigned by reading the programs."""
    if not (DATA / "mbpp" / "mbpp.jsonl").is_file():
        pytest.skip(f"no MBPP data at {DATA}")
    task = registry.load_task("mbpp", data_dir=str(DATA), workers=2)
    problem = next(p for p in task.problems("test") if p.id == "11")
    programs = {  # text -> behaviour class, assigned by hand
        "def remove_Occ(s, ch):\n    s = s.replace(ch, '', 1)\n    i = s.rfind(ch)\n"
        "    return s if i < 0 else s[:i] + s[i + 1:]\n": "right",
        "def remove_Occ(s, ch):\n    first = s.find(ch)\n    if first == -1:\n        return s\n"
        "    rest = s[:first] + s[first + 1:]\n    last = rest.rfind(ch)\n"
        "    return rest if last == -1 else rest[:last] + rest[last + 1:]\n": "right",
        "def remove_Occ(s, ch):\n    return s.replace(ch, '')\n": "removes every occurrence",  # fails one test
        "def remove_Occ(s, c):\n    return ''.join(x for x in s if x != c)\n": "removes every occurrence",
        "def remove_Occ(s, ch):\n    return s\n": "unchanged",
    }
    right, right2, every, every2, unchanged = programs
    first_attempts = [right, every, right2, None, unchanged, every2, every, right]
    second_attempts = [right2, every, right, every2]
    verdicts = {text: v.correct for text, v in zip(programs, task.verifier.verify_batch(
        [(problem, text) for text in programs]))}
    assert [verdicts[t] for t in programs] == [True, True, False, False, False]
    rows = {}
    for k, first in enumerate(first_attempts):
        attempts = [first] + ([second_attempts[k]] if k < len(second_attempts) else [])
        rows[(problem.id, k)] = {"attempts": [
            {"extracted": a, "correct": a is not None and verdicts[a], "extracted_flexible": a,
             "correct_flexible": a is not None and verdicts[a]} for a in attempts]}
    config = ScaleConfig(model="hand", task="mbpp", output=tmp_path, budgets=(2, 4, 8), seed=5)
    result, votes = summarize_scale(config, task, [problem], rows)
    assert result["voting"]["grouping"] == "MbppVerifier.same_answer_batch"
    recorded = {(v["budget"], v["arm"]): v for v in votes}
    for budget in (2, 4, 8):
        for arm, cell in (("parallel", first_attempts[:budget]), ("sequential", second_attempts[:budget // 2])):
            answer, correct = hand_vote(cell, [a is not None and verdicts[a] for a in cell], programs.get,
                                        seed=5, problem_id="11", budget=budget, arm=arm)
            vote = recorded[(budget, arm)]
            assert (vote["answer"], vote["correct"]) == (answer, correct), (budget, arm)
    # at budget 4 the two different texts of "right" outvote "removes every occurrence" 2 to 1
    assert (recorded[(4, "parallel")]["correct"], recorded[(4, "parallel")]["votes"]) == (True, 2)
    assert recorded[(8, "parallel")]["tied"] == 2  # 3 against 3: the recorded seeded rule decides
    assert json.dumps(votes)  # votes.jsonl rows are plain JSON


@needs_sandbox
def test_scale_runs_end_to_end_on_mbpp_with_the_embedded_model(embedded_model, tmp_path):
    """A smoke run of `score-bench scale` on a code task: the embedded arith model writes no program, so every
    vote abstains; the run still samples, grades in the sandbox, votes through the code hook and writes it all."""
    from typer.testing import CliRunner

    from score_bench.cli import app

    if not (DATA / "mbpp" / "mbpp.jsonl").is_file():
        pytest.skip(f"no MBPP data at {DATA}")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["scale", "--model", str(embedded_model), "--task", "mbpp", "--data-dir",
                                      str(DATA), "--limit", "2", "--budgets", "1,2,4", "--max-new-tokens", "16",
                                      "--batch-size", "8", "--output", str(out), "--no-plot", "--threads", "1"])
    assert result.exit_code == 0, result.output
    scale = json.loads((out / "scale.json").read_text())
    assert scale["voting"]["grouping"] == "MbppVerifier.same_answer_batch"
    assert [e["budget"] for e in scale["budgets"]] == [1, 2, 4]
    assert scale["counts"] == {"problems": 2, "max_budget": 4, "corrected_conversations": 2, "generations": 12}
    votes = [json.loads(line) for line in (out / "votes.jsonl").read_text().splitlines()]
    assert len(votes) == 2 * (1 + 2 + 2)  # per problem: parallel at 1, 2, 4 and sequential at 2, 4
