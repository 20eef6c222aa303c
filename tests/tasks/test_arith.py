"""arith: disjoint splits, stable ids, seeded determinism, extraction and grading."""

import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.types import Status
from score_bench.tasks.arith import ArithTask, count_carries


@pytest.fixture(scope="module")
def task():
    return ArithTask()


def test_splits_are_disjoint_even_up_to_commutativity(task):
    test = {(p.metadata["a"], p.metadata["b"]) for p in task.problems("test")}
    train = {(p.metadata["a"], p.metadata["b"]) for p in task.problems("train")}
    assert len(test) == 500 and len(train) == 5000
    assert not test & train
    assert not {(b, a) for a, b in test} & train


def test_pretraining_stream_never_yields_a_test_pair(task):
    import random

    stream = task.sample_pairs("train", random.Random(1))
    drawn = {next(stream) for _ in range(3000)}
    assert all(task.split_of(a, b) == "train" and task.split_of(b, a) == "train" for a, b in drawn)
    assert not drawn & {(p.metadata["a"], p.metadata["b"]) for p in task.problems("test")}


def test_ids_name_operands_and_do_not_depend_on_size_or_seed(task):
    problem = task.problems("test")[0]
    a, b = problem.metadata["a"], problem.metadata["b"]
    assert problem.id == f"arith/test/{a}+{b}"
    assert problem.reference == str(a + b)
    small = ArithTask(n_test=50, seed=7)
    assert {p.id for p in small.problems("test")} <= {
        ArithTask(n_test=800).problem(p.metadata["a"], p.metadata["b"]).id for p in small.problems("test")}
    assert task.split_of(a, b) == ArithTask(seed=3).split_of(a, b) == "test"


def test_same_seed_same_problems_other_seed_other_order():
    first, again, other = ArithTask(seed=1), ArithTask(seed=1), ArithTask(seed=2)
    assert [p.id for p in first.problems("test")] == [p.id for p in again.problems("test")]
    assert [p.id for p in first.problems("test")] != [p.id for p in other.problems("test")]


def test_large_operand_spaces_are_sampled_not_listed():
    task = ArithTask(digits=5, n_test=20, n_train=30, operation="mul")
    test = task.problems("test")
    assert len({p.id for p in test}) == 20 and all("*" in p.id for p in test)
    assert all(len(str(p.metadata["a"])) == 5 for p in test)
    assert all(int(p.reference) == p.metadata["a"] * p.metadata["b"] for p in test)


def test_bad_options_are_input_errors():
    for options in ({"operation": "pow"}, {"digits": 0}, {"n_test": 0}, {"prompt": "no slot"}):
        with pytest.raises(InputError):
            ArithTask(**options)
    with pytest.raises(InputError, match="asked for 5000"):
        ArithTask(n_test=5000).problems("test")
    with pytest.raises(InputError, match="valid"):
        ArithTask().problems("valid")


def test_prompt_asks_for_the_marker(task):
    problem = task.problem(47, 38)
    assert task.first_prompt(problem) == [
        {"role": "user", "content": 'What is 47 + 38? End your response with "Answer: <number>".'}]
    assert "Answer: <number>" in task.correction_instruction


@pytest.mark.parametrize("response, expected", [
    ("7+8=15; 4+3+1=8; Answer: 85", "85"),
    ("Answer: 75", "75"),
    ("Answer: 12\nWait.\nAnswer: 85.", "85"),
    ("The final Answer: $85$", "85"),
    ("Answer:   -3  ", "-3"),
    ("85", None),
    ("Answer:", None),
    ("", None),
])
def test_extract(task, response, expected):
    assert task.extract(task.problem(47, 38), response) == expected


def test_verifier_grades_by_value(task):
    problem = task.problem(47, 38)
    responses = ["Answer: 85", "Answer: 85.0", "Answer: 75", "Answer: eighty", "no marker"]
    verdicts = task.verifier.verify_batch([(problem, task.extract(problem, r)) for r in responses])
    assert [v.status for v in verdicts] == [Status.CORRECT, Status.CORRECT, Status.INCORRECT, Status.INCORRECT,
                                            Status.INCORRECT]


@pytest.mark.parametrize("a, b, carries", [(47, 38, 1), (12, 34, 0), (87, 45, 2), (99, 1, 2), (-5, 3, 0)])
def test_count_carries(a, b, carries):
    assert count_carries(a, b) == carries
