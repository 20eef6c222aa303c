"""One contract test over every registered task plugin: what the rollout and the verifier rely on."""

import pytest

from score_bench.harness.contracts import registry
from score_bench.harness.contracts.protocols import Task, Verifier
from score_bench.harness.contracts.types import Status

TASKS = registry.available(registry.TASKS)


@pytest.fixture(scope="module", params=TASKS)
def task(request):
    return registry.load_task(request.param)


def test_every_planned_task_is_registered():
    assert set(TASKS) >= {"math", "humaneval", "score-toy", "arith", "countdown"}


def test_task_contract(task):
    assert isinstance(task, Task)
    assert isinstance(task.verifier, Verifier)
    assert task.splits and isinstance(task.correction_instruction, str) and task.correction_instruction.strip()
    problems = task.problems(task.splits[0])
    assert problems, f"{task.name}: no problems"
    ids = [p.id for p in problems]
    assert len(set(ids)) == len(ids), f"{task.name}: duplicate ids"
    assert ids == [p.id for p in task.problems(task.splits[0])], f"{task.name}: ids not stable"
    for problem in problems[:3]:
        messages = task.first_prompt(problem)
        assert messages and all(set(m) == {"role", "content"} for m in messages)
        assert messages[-1]["role"] == "user"
        assert all(m["role"] in ("system", "user") for m in messages)


def test_empty_and_garbage_responses_are_incorrect_not_errors(task):
    problem = task.problems(task.splits[0])[0]
    responses = ["", "I do not know.", "\x00\x01" * 50]
    verdicts = task.verifier.verify_batch([(problem, task.extract(problem, r)) for r in responses])
    assert [v.status for v in verdicts] == [Status.INCORRECT] * len(responses)
