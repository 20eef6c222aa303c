"""The SCoRe trainer on a tiny random Llama: gradient direction on real log-probabilities, the frozen
reference of both stages, and an end-to-end smoke run producing a loadable checkpoint and a log."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.contracts.protocols import Task, Verifier
from score_bench.harness.contracts.types import Problem, Status, Verdict
from score_bench.harness.training.config import build_config
from score_bench.harness.training.encoding import TwoAttempts, encode_two_attempts, masked_sum, token_logprobs
from score_bench.harness.training.outputs import CONFIG_FILE, LOG_FILE
from score_bench.tasks.score_toy import ScoreToyTask
from score_bench.trainers._losses import stage_loss
from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreRun, ScoreTrainer


class _EvenLength(Verifier):
    def verify_batch(self, items):
        return [Verdict(Status.CORRECT if len(answer or "") % 2 == 0 else Status.INCORRECT, answer)
                for _, answer in items]


class ParityTask(Task):
    """A real (if silly) task: a response is correct when it has an even number of characters, so a random
    model is right about half the time and every batch carries both rewards."""

    name = "parity"
    splits = ("train",)
    correction_instruction = "Check your answer and rewrite it."
    verifier = _EvenLength()

    def problems(self, split):
        return [Problem(id=f"p{i}", question=f"Say something {i}.", reference="") for i in range(6)]

    def first_prompt(self, problem):
        return [{"role": "user", "content": problem.question}]

    def extract(self, problem, response):
        return response


def smoke(tiny_model, tmp_path, **changes) -> ScoreConfig:
    return with_values(build_config(ScoreConfig, PRESETS, "smoke"), model=str(tiny_model), output=str(tmp_path / "out"),
                   **changes)


SAMPLE = TwoAttempts([{"role": "user", "content": "What is 12 + 7?"}], "The answer is 19.",
                     "There might be an error.", "Final Answer: 19")


@pytest.mark.parametrize("stage, rewards, direction", [
    (1, (0.0, 1.0), +1),   # Stage I: r2 = 1 -> attempt 2 becomes more likely
    (2, (1.0, 0.0), -1),   # Stage II: broke a right answer -> 0 + alpha * (0 - 1) < 0 -> less likely
])
def test_one_step_moves_the_rewarded_attempt_in_the_reward_direction(tiny_model, stage, rewards, direction):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    batch = encode_two_attempts(tokenizer, [SAMPLE])
    config = ScoreConfig(model="unused", baseline="none")

    def second_logp():
        return masked_sum(token_logprobs(model, batch.input_ids, batch.attention_mask), batch.attempt_masks[1])

    with torch.no_grad():
        ref = token_logprobs(model, batch.input_ids, batch.attention_mask)
        before = second_logp().item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    logp = token_logprobs(model, batch.input_ids, batch.attention_mask)
    loss = stage_loss(stage, logp, ref, batch.attempt_masks, tuple(torch.tensor([r]) for r in rewards), config, 1)
    loss.loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = second_logp().item()
    assert (after - before) * direction > 1e-3


def test_reference_is_frozen_and_is_the_base_model_in_both_stages(tiny_model, tmp_path):
    score = ScoreRun(smoke(tiny_model, tmp_path, beta1=0.5, beta2=0.5), task=ParityTask())
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    reference = score.run.reference
    assert not any(p.requires_grad for p in reference.parameters())
    score.stage(1)
    assert any(not torch.equal(p, q) for p, q in zip(score.run.policy.parameters(), base.parameters()))
    score.stage(2)
    assert score.run.reference is reference
    assert all(torch.equal(p, q) for p, q in zip(reference.parameters(), base.parameters()))
    rows = [json.loads(line) for line in (tmp_path / "out" / LOG_FILE).read_text().splitlines()]
    first_stage2 = next(r for r in rows if r["stage"] == 2)
    # measured before any Stage II update: zero if the reference had been reset to the Stage I policy
    assert abs(first_stage2["kl_t1"]) + abs(first_stage2["kl_t2"]) > 1e-6


def test_smoke_run_writes_a_loadable_checkpoint_config_and_log(tiny_model, tmp_path):
    config = smoke(tiny_model, tmp_path, task="score-toy", split="test")
    out = ScoreTrainer().train(config, task=ScoreToyTask())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_model).chat_template
    AutoModelForCausalLM.from_pretrained(out)
    AutoModelForCausalLM.from_pretrained(out / "stage1")
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert saved["config"]["stage1_steps"] == 2 and saved["config"]["model"] == str(tiny_model)
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [(r["step"], r["stage"]) for r in rows] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    for key in ("reward_t1", "reward_t2", "accuracy_t1", "accuracy_t2", "kl_t1", "kl_t2", "loss", "tokens_per_s"):
        assert all(r[key] is not None for r in rows), key


def test_presets_are_valid_configs():
    for name in PRESETS:
        build_config(ScoreConfig, PRESETS, name)
    assert build_config(ScoreConfig, PRESETS, "paper").alpha == 10.0
    assert build_config(ScoreConfig, PRESETS, "laptop-countdown").stage2_attempt1_kl == 0.0  # Stage II as published


@pytest.mark.parametrize("changes, message", [
    ({"model": ""}, "needs a model"),
    ({"temperature": 0.0}, "temperature"),
    ({"kl_mode": "loss"}, "k3"),
    ({"batch_size": 0}, "batch_size"),
    ({"stop": ("###",)}, "'stop' must be empty"),
])
def test_bad_configs_fail_by_name(tiny_model, tmp_path, changes, message):
    with pytest.raises(InputError, match=message):
        ScoreRun(with_values(smoke(tiny_model, tmp_path), **changes), task=ParityTask())


def test_rollout_traces_are_grouped_by_problem_and_rebuilt_as_sampled(tiny_model, tmp_path):
    task = ParityTask()
    run = ScoreRun(smoke(tiny_model, tmp_path, samples_per_problem=3), task=task)
    problems = task.problems("train")[:2]
    traces = run.sample(problems)
    assert [t.problem.id for t in traces] == ["p0", "p0", "p0", "p1", "p1", "p1"]
    assert len({t.attempts[0].text for t in traces[:3]}) > 1  # the samples of one problem differ
    sample = run.two_attempts(traces[4])
    assert sample.prompt == task.first_prompt(problems[1]) and sample.instruction == task.correction_instruction
    assert (sample.first, sample.second) == (traces[4].attempts[0].text, traces[4].attempts[1].text)


def test_full_run_scores_stage2_against_the_base_model(tiny_model, tmp_path):
    out = ScoreTrainer().train(smoke(tiny_model, tmp_path, beta1=0.5, beta2=0.5), task=ParityTask())
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    first_stage2 = next(r for r in rows if r["stage"] == 2)
    assert rows[0]["kl_t1"] == 0 and rows[0]["kl_t2"] == 0  # the policy starts as the reference
    assert abs(first_stage2["kl_t1"]) + abs(first_stage2["kl_t2"]) > 1e-6  # not reset to the Stage I output


def test_checkpoints_record_the_code_the_run_started_from(tiny_model, tmp_path, monkeypatch):
    """A commit made during a long run must not be recorded as the code that trained: provenance is taken once,
    when the run starts, and every checkpoint of the run (stage1 and final) carries that one."""
    import score_bench.harness.training.run as training_run

    calls = iter(range(1000))
    monkeypatch.setattr(training_run, "provenance", lambda: {"git": {"commit": f"c{next(calls)}", "dirty": False}})
    out = ScoreTrainer().train(smoke(tiny_model, tmp_path, task="score-toy", split="test"), task=ScoreToyTask())
    for checkpoint in (out, out / "stage1"):
        assert json.loads((checkpoint / CONFIG_FILE).read_text())["git"] == {"commit": "c0", "dirty": False}
