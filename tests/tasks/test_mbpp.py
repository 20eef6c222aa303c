"""mbpp task: splits, prompts (one shown test, the rest hidden), extraction, grading of reference solutions
through `score-bench grade`, and hostile programs from tests/harness/grading/hostile/ adapted to an MBPP problem.

The full 974 + 427 reference run is bench/check_mbpp_references.py (results/mbpp/references-*); here a subset
covering every grading path: plain rows, challenge tests, test_setup_code rows and program-defined classes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from score_bench.harness.contracts import registry
from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.types import Status
from score_bench.harness.grading import sandbox
from score_bench.harness.grading.attempts import grade_attempts
from score_bench.harness.runtime import settings
from score_bench.tasks.mbpp import CASE_FUNCTION, CORRECTION_INSTRUCTION, MbppTask

DATA = settings.data_dir() or Path(__file__).resolve().parents[2].parent / "shared" / "data"
"""SCORE_BENCH_DATA_DIR (CI sets it), else ../shared/data beside the repo."""
needs_data = pytest.mark.skipif(not (DATA / "mbpp" / "mbpp.jsonl").exists(), reason=f"no MBPP data under {DATA}")
needs_sandbox = pytest.mark.skipif(sandbox.probe() is not None, reason=f"no working sandbox: {sandbox.probe()}")
HOSTILE = Path(__file__).resolve().parents[1] / "harness" / "grading" / "hostile"
pytestmark = needs_data


@pytest.fixture(scope="module")
def full() -> MbppTask:
    return MbppTask(data_dir=DATA, timeout=4.0, workers=2)


@pytest.fixture(scope="module")
def by_id(full):
    return {p.id: p for split in full.splits for p in full.problems(split)}


def test_splits_by_task_id_in_both_variants(full):
    sizes = {split: len(full.problems(split)) for split in full.splits}
    assert sizes == {"prompt": 10, "test": 500, "validation": 90, "train": 374}
    test = full.problems("test")
    assert (test[0].id, test[-1].id) == ("11", "510")
    sanitized = registry.load_task("mbpp-sanitized", data_dir=DATA)
    assert {s: len(sanitized.problems(s)) for s in sanitized.splits} == {"prompt": 7, "test": 257,
                                                                         "validation": 43, "train": 120}
    with pytest.raises(InputError, match="unknown split"):
        full.problems("dev")
    with pytest.raises(InputError, match="unknown MBPP variant"):
        MbppTask(variant="plus", data_dir=DATA)


def test_missing_data_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="mbpp.jsonl"):
        MbppTask(data_dir=tmp_path).problems("test")


def test_prompt_shows_text_signature_and_only_the_first_test(full, by_id):
    problem = by_id["11"]
    rows = {json.loads(line)["task_id"]: json.loads(line) for line in (DATA / "mbpp" / "mbpp.jsonl").open()}
    row = rows[11]
    (message,) = full.first_prompt(problem)
    assert message["role"] == "user"
    assert row["text"] in message["content"]
    assert "remove_Occ(s, ch)" in message["content"]
    assert row["test_list"][0] in message["content"]
    for hidden in row["test_list"][1:] + row["challenge_test_list"]:
        assert hidden.strip() not in message["content"]
    assert full.correction_instruction == CORRECTION_INSTRUCTION
    assert CORRECTION_INSTRUCTION.startswith("# There might be an error in the code above")


def test_setup_code_rows_show_their_setup_and_call_through_cases(by_id):
    for problem_id in ("367", "927", "601"):
        problem = by_id[problem_id]
        assert problem.metadata["entry_point"] == CASE_FUNCTION
        assert "assert" not in problem.metadata["program_suffix"]  # inputs only: the asserts stay in the checker
    assert "root = Node(1)" in by_id["367"].question


SMOLLM2_12 = ("```python\ndef sort_matrix(M):\n    return sorted(M, key=lambda x: x[0])\n\n# Test the function\n"
              "assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]]) == [[1, 1, 1], [1, 2, 3], [2, 4, 5]]\n```\n\n"
              "This function uses the `sorted` function to sort the matrix based on the sum of its rows.")
"""SmolLM2-135M-Instruct's greedy attempt 1 on MBPP 12, verbatim: a wrong key, and the shown test below it."""
REMOVE = "def remove_Occ(s, ch):\n    return s\n"


@pytest.mark.parametrize("problem_id, response, strict, flexible", [
    ("11", f"Sure:\n```python\n{REMOVE}```\nThat's it.", REMOVE, REMOVE),
    ("11", "```python\nimport re\n```\n```python\nx = 1\n```", "x = 1\n", "x = 1\n"),
    ("11", REMOVE, REMOVE, REMOVE),  # no fence, but the whole response is a program
    ("11", f"Here it is:\n{REMOVE}", None, REMOVE),  # prose with unfenced code: flexible only
    ("11", f"```python\nimport re\n{REMOVE}print(remove_Occ('hello', 'l'))\n```",
     f"import re\n{REMOVE}print(remove_Occ('hello', 'l'))\n", f"import re\n{REMOVE}"),  # calls: strict only
    ("12", SMOLLM2_12, SMOLLM2_12.split("```python\n")[1].split("```")[0],
     "def sort_matrix(M):\n    return sorted(M, key=lambda x: x[0])\n"),
    ("11", "```python\n```", None, None),
])
def test_extract(full, by_id, problem_id, response, strict, flexible):
    assert full.extract(by_id[problem_id], response) == strict
    assert full.extract_flexible(by_id[problem_id], response) == flexible


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "score_bench", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SCORE_BENCH_DATA_DIR": str(DATA)})


@needs_sandbox
@pytest.mark.parametrize("task_name, ids", [
    # 11-47 have challenge tests; 367/927 setup code; 601 a program class; 533 types as arguments; 56 a
    # function named check; 40/88/653 return Counter/defaultdict; 737 a regex match
    ("mbpp", ["2", "11", "12", "17", "40", "47", "56", "88", "367", "533", "596", "601", "653", "927", "974"]),
    ("mbpp-sanitized", ["2", "11", "17", "56", "88", "737"]),
])
def test_reference_solutions_grade_correct_through_the_cli(tmp_path, task_name, ids):
    task = registry.load_task(task_name, data_dir=DATA)
    problems = {p.id: p for split in task.splits for p in task.problems(split)}
    rows = [{"id": i, "responses": [f"```python\n{problems[i].metadata['canonical_solution']}\n```"]} for i in ids]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = run_cli("grade", "--task", task_name, "--samples", str(samples), "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    grades = [json.loads(line) for line in (tmp_path / "out" / "grades.jsonl").read_text().splitlines()]
    assert {g["id"]: g["status"][0] for g in grades} == {i: "correct" for i in ids}


@needs_sandbox
def test_hard_coding_the_shown_example_fails_and_wrong_classes_fail(full, by_id):
    shown = "def remove_Occ(s, ch):\n    return 'heo'\n"  # the example's expected value, whatever the input
    wrong_node = by_id["927"].metadata["canonical_solution"].replace("return 0 ;", "return 1 ;")  # off by one
    assert wrong_node != by_id["927"].metadata["canonical_solution"]
    no_node = "def max_height(node):\n    return 3\n"  # the setup code needs the program's Node class
    fence = "```python\n{}```".format
    grades = grade_attempts(full, [(by_id["11"], fence(shown)),
                                   (by_id["11"], fence(by_id["11"].metadata["canonical_solution"] + "\n")),
                                   (by_id["927"], fence(wrong_node)), (by_id["927"], fence(no_node))])
    verdicts = [grade.verdict for grade in grades]
    assert [v.status for v in verdicts] == [Status.INCORRECT, Status.CORRECT, Status.INCORRECT, Status.INCORRECT]
    assert "failed to load" in verdicts[3].detail and "Node" in verdicts[3].detail
    assert verdicts[0].extracted == shown  # the trusted case suffix never shows in what was extracted


ADAPTER = "\n\ndef square_Sum(n):\n    return solve([2 * i + 1 for i in range(n)])\n"
"""MBPP 267, square_Sum(n), is the sum of squares of the first n odd numbers: the hostile programs' solve(xs)
(sum of squares) applied to them, so each case's expected verdict carries over unchanged."""


@needs_sandbox
def test_hostile_programs_adapted_to_mbpp_are_contained(full, by_id):
    cases = json.loads((HOSTILE / "cases.json").read_text())["cases"]
    problem = by_id["267"]
    honest = by_id["267"].metadata["canonical_solution"]
    pairs = []
    for case in cases:
        pairs += [(problem, (HOSTILE / case["file"]).read_text() + ADAPTER), (problem, honest)]
    verdicts = full.verifier.verify_batch(pairs)
    wrong = {case["file"]: (verdicts[2 * i].status.value, verdicts[2 * i].detail[:200])
             for i, case in enumerate(cases) if verdicts[2 * i].status.value != case["expect"]}
    assert wrong == {}
    assert all(v.correct for v in verdicts[1::2])  # the grader kept grading honestly between them
