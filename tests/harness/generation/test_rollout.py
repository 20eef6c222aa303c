"""The multi-attempt rollout on a real task (score-toy) and the tiny model: conversation shape, given first
attempts, resume-skips, seeds per sample, and failures to grade becoming error verdicts."""

from __future__ import annotations

import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import GenerationParams
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.registry import load_task
from score_bench.harness.contracts.types import Status
from score_bench.harness.generation.rollout import RolloutConfig, iter_rollout, plan, rollout

PARAMS = GenerationParams(max_new_tokens=12)


@pytest.fixture(scope="module")
def task():
    return load_task("score-toy")


@pytest.fixture(scope="module")
def problems(task):
    return task.problems("test")[:6]


def test_each_attempt_sees_the_previous_one_and_the_correction_instruction(task, problems, tiny_backend):
    traces = rollout(task, problems, tiny_backend, RolloutConfig(turns=3, params=PARAMS, chunk_size=4))
    assert [(t.problem.id, t.sample) for t in traces] == [(p.id, 0) for p in problems]
    for trace in traces:
        prompt = task.first_prompt(trace.problem)
        texts = [a.text for a in trace.attempts]
        assert list(trace.messages) == prompt + [
            {"role": "assistant", "content": texts[0]}, {"role": "user", "content": task.correction_instruction},
            {"role": "assistant", "content": texts[1]}, {"role": "user", "content": task.correction_instruction},
            {"role": "assistant", "content": texts[2]}]
        assert all(a.n_tokens >= 1 and not a.given for a in trace.attempts)
    # Attempt 2 is exactly what the model says when shown attempt 1 and the instruction.
    again = tiny_backend.generate([list(t.messages[:len(prompt) + 2]) for t in traces], PARAMS)
    assert [c.text for c in again] == [t.attempts[1].text for t in traces]


def test_verdicts_come_from_the_task_verifier(task, problems, tiny_backend):
    traces = rollout(task, problems, tiny_backend, RolloutConfig(params=PARAMS))
    for trace in traces:
        for attempt in trace.attempts:
            expected = task.verifier.verify_batch([(trace.problem, task.extract(trace.problem, attempt.text))])[0]
            assert attempt.verdict.status == expected.status
            assert attempt.extracted == task.extract(trace.problem, attempt.text)


def test_given_first_attempts_are_used_and_only_the_correction_is_generated(task, problems, tiny_backend):
    given = {p.id: p.fixed_first_attempt for p in problems}
    traces = rollout(task, problems, tiny_backend, RolloutConfig(params=PARAMS), first_attempts=given)
    for trace in traces:
        first, second = trace.attempts
        assert first.text == given[trace.problem.id] and first.given and first.n_tokens == 0
        assert not second.given and second.n_tokens >= 1
        assert not first.correct  # score-toy's original answers are wrong by construction
    with pytest.raises(InputError, match="no first attempt"):
        rollout(task, problems, tiny_backend, RolloutConfig(params=PARAMS), first_attempts={})


def test_skipped_units_are_left_out_and_the_rest_is_unchanged(task, problems, tiny_backend):
    config = RolloutConfig(samples=2, params=GenerationParams(max_new_tokens=12, temperature=1.0, seed=5),
                           chunk_size=4)
    full = [t for chunk in iter_rollout(task, problems, tiny_backend, config) for t in chunk]
    skip = {(problems[0].id, 0), (problems[3].id, 1), (problems[5].id, 1)}
    partial = [t for chunk in iter_rollout(task, problems, tiny_backend, config, skip=skip) for t in chunk]
    expected = [t for t in full if (t.problem.id, t.sample) not in skip]
    assert [(t.problem.id, t.sample, [a.text for a in t.attempts]) for t in partial] == \
           [(t.problem.id, t.sample, [a.text for a in t.attempts]) for t in expected]


def test_samples_differ_and_repeat_with_their_seed(task, problems, tiny_backend):
    params = GenerationParams(max_new_tokens=12, temperature=1.0, seed=1)
    config = RolloutConfig(samples=3, params=params, chunk_size=5)
    first = rollout(task, problems, tiny_backend, config)
    assert len(first) == 3 * len(problems) and [(t.problem.id, t.sample) for t in first] == \
        [(p.id, k) for p, k in plan(problems, 3)]
    per_problem = {p.id: {t.attempts[0].text for t in first if t.problem.id == p.id} for p in problems}
    assert any(len(texts) > 1 for texts in per_problem.values())
    # Another chunking (and so other batches) gives the same samples: seeds belong to (sample, turn, prompt).
    second = rollout(task, problems, tiny_backend, RolloutConfig(samples=3, params=params, chunk_size=64))
    assert [[a.text for a in t.attempts] for t in first] == [[a.text for a in t.attempts] for t in second]


class _BrittleTask(Task):
    """score-toy whose extraction breaks on one problem and whose verifier breaks on another."""

    def __init__(self, inner, bad_extract: str, bad_verify: str):
        self._inner, self._bad_extract, self._bad_verify = inner, bad_extract, bad_verify
        self.name, self.splits = inner.name, inner.splits
        self.correction_instruction = inner.correction_instruction
        self.first_prompt, self.problems = inner.first_prompt, inner.problems

    def extract(self, problem, response):
        if problem.id == self._bad_extract:
            raise ValueError("cannot parse")
        return self._inner.extract(problem, response)

    @property
    def verifier(self):
        return self

    def verify_batch(self, items):
        if any(problem.id == self._bad_verify for problem, _ in items):
            raise RuntimeError("grader crashed")
        return self._inner.verifier.verify_batch(items)


def test_a_failure_to_grade_is_an_error_verdict_not_a_crash(task, problems, tiny_backend):
    brittle = _BrittleTask(task, bad_extract=problems[1].id, bad_verify=problems[4].id)
    traces = rollout(brittle, problems, tiny_backend, RolloutConfig(params=PARAMS, chunk_size=3))
    statuses = {t.problem.id: {a.verdict.status for a in t.attempts} for t in traces}
    assert statuses[problems[1].id] == {Status.ERROR}
    assert "extraction failed: ValueError" in traces[1].attempts[0].verdict.detail
    # The verifier fails for the whole chunk holding problems[4] (problems 3..5), and only for it.
    assert all(statuses[p.id] == {Status.ERROR} for p in problems[3:])
    assert all(Status.ERROR not in statuses[p.id] for p in (problems[0], problems[2]))


def test_config_rejects_nonsense():
    with pytest.raises(InputError, match="turns"):
        RolloutConfig(turns=0)
    with pytest.raises(InputError, match="samples"):
        RolloutConfig(samples=0)
