"""The math task: MATH500 and the 12k train split, the paper's prompts, answer extraction, and that all 500
MATH500 reference solutions grade correct against their answers through the real verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from score_bench.harness.contracts import registry
from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.types import Status
from score_bench.harness.runtime import settings
from score_bench.tasks import math as math_task
from score_bench.tasks.math import MathTask, extract_answer

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """SCORE_BENCH_DATA_DIR (CI sets it), else ../shared/data beside the repo."""
    root = settings.data_dir() or REPO.parent / "shared" / "data"
    if not (root / "math" / "math500_test.jsonl").is_file():
        pytest.skip(f"MATH data not found under {root} (set SCORE_BENCH_DATA_DIR)")
    return root


@pytest.fixture(scope="module")
def task(data_dir):
    task = MathTask(data_dir=data_dir)
    yield task
    task.verifier.close()


@pytest.mark.timeout(300)
def test_all_500_reference_solutions_grade_correct(task):
    problems = task.problems("test")
    assert len(problems) == 500
    items = [(p, task.extract(p, p.metadata["solution"])) for p in problems]
    verdicts = task.verifier.verify_batch(items)
    wrong = [(p.id, p.reference, answer, v.status.value, v.detail)
             for (p, answer), v in zip(items, verdicts) if v.status is not Status.CORRECT]
    assert not wrong, wrong[:10]


def test_splits_and_ids(task, data_dir):
    test, train = task.problems("test"), task.problems("train")
    first = json.loads((data_dir / "math" / "math500_test.jsonl").read_text().splitlines()[0])
    assert test[0].id == first["unique_id"] and test[0].reference == first["answer"]
    assert test[0].question == first["problem"] and test[0].metadata["subject"] == first["subject"]
    assert len(train) > 11_000
    ids = [p.id for p in test + train]
    assert len(set(ids)) == len(ids), "test and train overlap or repeat ids"


def test_registered_under_its_name(data_dir):
    task = registry.load_task("math", data_dir=data_dir)
    assert isinstance(task, MathTask) and task.name == "math" and task.splits == ("test", "train")


def test_prompts_are_the_papers(task):
    form = 'write it in the form "Final Answer: The final answer is $answer$. I hope it is correct."'
    assert task.system_prompt == (
        "You are a math expert. When you respond, respond only with the Solution of the final Problem, thinking "
        "step by step. At the end of the Solution, when you give your final answer, " + form)
    assert task.correction_instruction == (
        "There might be an error in the solution above because of lack of understanding of the question. Please "
        "correct the error, if any, and rewrite the solution. Only output the final solution! At the end of the "
        "Solution, when you give your final answer, " + form)
    problem = task.problems("test")[0]
    messages = task.first_prompt(problem)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == task.system_prompt and problem.question in messages[1]["content"]


def test_prompts_can_be_overridden(data_dir):
    task = MathTask(data_dir=data_dir, system_prompt="Be brief.", correction_instruction="Try again.")
    assert task.first_prompt(task.problems("test")[0])[0]["content"] == "Be brief."
    assert task.correction_instruction == "Try again."


@pytest.mark.parametrize("response, expected", [
    ("So x = 2.\nFinal Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
    ("Final Answer: The final answer is $\\$18.90$. I hope it is correct.", "\\$18.90"),
    ("The final answer is $3$. I hope it is correct. On reflection, the final answer is $4$.", "4"),
    ("Final Answer: The final answer is 7. I hope it is correct.", "7"),
    ("Final Answer: The final answer is $\\boxed{12}$. I hope it is correct.", "12"),
    ("Thus $\\boxed{5}$. Final Answer: The final answer is $6$. I hope it is correct.", "6"),
    ("First \\boxed{1}, then \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\frac{\\sqrt{3}}{2}"),
    ("Answer: \\fbox{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("so it is $\\boxed 5$", "5"),
    ("the set \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("an unclosed \\boxed{\\frac{1}{2}", None),
    ("I do not know.", None),
    ("", None),
])
def test_extract(response, expected):
    assert extract_answer(response) == expected


def test_a_missing_local_file_names_the_path(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path / "math" / "math500_test.jsonl")) as caught:
        MathTask(data_dir=tmp_path).problems("test")
    assert "\n" not in str(caught.value)


def test_a_malformed_row_names_file_and_line(tmp_path):
    (tmp_path / "math").mkdir()
    good = {"unique_id": "a", "problem": "1+1?", "solution": "\\boxed{2}", "answer": "2"}
    (tmp_path / "math" / "math500_test.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(InputError, match=r"math500_test.jsonl:2"):
        MathTask(data_dir=tmp_path).problems("test")
    (tmp_path / "math" / "math500_test.jsonl").write_text(json.dumps({**good, "answer": None}) + "\n")
    with pytest.raises(InputError, match=r"math500_test.jsonl:1.*answer"):
        MathTask(data_dir=tmp_path).problems("test")


def test_unknown_split(task):
    with pytest.raises(InputError, match="available: test, train"):
        task.problems("validation")


def test_without_a_local_directory_it_asks_the_hub(monkeypatch):
    """The hub is unreachable here; check what is asked for and how rows map, with `load_dataset` replaced."""
    import datasets

    monkeypatch.delenv("SCORE_BENCH_DATA_DIR", raising=False)
    asked = []

    def load_dataset(name, split):
        asked.append((name, split))
        return [{"unique_id": f"{split}/0", "problem": "2+2?", "solution": "\\boxed{4}", "answer": "4",
                 "subject": "Prealgebra", "level": 1}]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    task = MathTask()
    assert task.problems("test")[0].id == "test/0" and task.problems("train")[0].reference == "4"
    assert asked == [math_task.HUB["test"], math_task.HUB["train"]]
    assert asked[0] == ("HuggingFaceH4/MATH-500", "test")

    def unreachable(name, split):
        raise ConnectionError("no route to host\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(InputError, match="HuggingFaceH4/MATH-500.*no route to host.*SCORE_BENCH_DATA_DIR") as caught:
        MathTask().problems("test")
    assert "\n" not in str(caught.value)
