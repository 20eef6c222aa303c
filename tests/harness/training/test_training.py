"""harness.training (config, encoding, held_out, outputs): per-attempt masks through the chat template, left-padded
log-probabilities, configs, held-out evaluation rows, checkpoints. The masks are where public SCoRe code trained pad
tokens and prompts; each test can fail."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Literal

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import GenerationParams
from score_bench.harness.contracts.protocols import Task, Verifier
from score_bench.harness.contracts.types import Problem, Status, Verdict
from score_bench.harness.generation.rollout import RolloutConfig, rollout
from score_bench.harness.training.config import RunConfig, build_config
from score_bench.harness.training.encoding import TwoAttempts, encode_two_attempts, masked_sum, token_logprobs
from score_bench.harness.training.held_out import HeldOutEval
from score_bench.harness.training.outputs import CONFIG_FILE, save_checkpoint

from float_tolerance import logprob_tolerance

PROMPT = [{"role": "user", "content": "What is 12 + 7?"}]
INSTRUCTION = "There might be an error in the solution above. Please correct the error, if any."


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def model(tiny_model):
    return AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()


def samples() -> list[TwoAttempts]:
    return [TwoAttempts(PROMPT, "The answer is 19.", INSTRUCTION, "Final Answer: 19"),
            TwoAttempts([{"role": "user", "content": "Hi"}], "19", INSTRUCTION, "20")]


def test_masks_cover_each_attempt_and_its_end_token_only(tokenizer):
    batch = encode_two_attempts(tokenizer, samples())
    eos = tokenizer.eos_token
    for row, sample in enumerate(samples()):
        ids = batch.input_ids[row]
        first, second = batch.attempt_masks[0][row], batch.attempt_masks[1][row]
        assert tokenizer.decode(ids[first]) == sample.first + eos
        assert tokenizer.decode(ids[second]) == sample.second + eos
        assert not (first & second).any()
        assert not ((first | second) & (batch.attention_mask[row] == 0)).any()
        context = tokenizer.decode(ids[~(first | second) & (batch.attention_mask[row] == 1)])
        assert INSTRUCTION in context and sample.prompt[0]["content"] in context
        assert sample.first not in context or sample.first in sample.prompt[0]["content"]


def test_rows_are_left_padded(tokenizer):
    batch = encode_two_attempts(tokenizer, samples())
    short = batch.attention_mask[1]
    assert short[0] == 0 and short[-1] == 1
    assert bool((short.diff() >= 0).all())  # zeros then ones: padding only on the left
    assert batch.attention_mask[0].all()


def test_pad_equal_to_eos_pads_are_untrained_but_ending_eos_is(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.pad_token = tokenizer.eos_token
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    batch = encode_two_attempts(tokenizer, samples())
    eos = tokenizer.eos_token_id
    padding = batch.attention_mask == 0
    assert bool((batch.input_ids[padding] == eos).all()) and padding.any()
    for mask in batch.attempt_masks:
        assert not (mask & padding).any()
        for row in range(2):
            trained = batch.input_ids[row][mask[row]]
            assert trained[-1] == eos and int((trained == eos).sum()) == 1


def test_a_cut_attempt_does_not_train_an_end_token_it_never_sampled(tokenizer):
    cut = TwoAttempts(PROMPT, "The answer", INSTRUCTION, "Final", first_ended=False, second_ended=False)
    batch = encode_two_attempts(tokenizer, [cut])
    assert tokenizer.decode(batch.input_ids[0][batch.attempt_masks[0][0]]) == "The answer"
    assert tokenizer.decode(batch.input_ids[0][batch.attempt_masks[1][0]]) == "Final"
    # attempt 1's closing token stays in the context attempt 2 was generated from
    assert tokenizer.decode(batch.input_ids[0]).count(tokenizer.eos_token) >= 2


def test_piecewise_tokens_equal_the_rendered_conversation(tokenizer):
    sample = samples()[0]
    conversation = [*PROMPT, {"role": "assistant", "content": sample.first}, {"role": "user", "content": INSTRUCTION},
                    {"role": "assistant", "content": sample.second}]
    text = tokenizer.apply_chat_template(conversation, tokenize=False)
    whole = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = encode_two_attempts(tokenizer, [sample]).input_ids[0].tolist()
    assert whole[:len(ids)] == ids


def test_left_padded_rows_score_as_if_alone(tokenizer, model):
    batch = encode_two_attempts(tokenizer, samples())
    with torch.no_grad():
        together = token_logprobs(model, batch.input_ids, batch.attention_mask)
        alone_batch = encode_two_attempts(tokenizer, samples()[1:])
        alone = token_logprobs(model, alone_batch.input_ids, alone_batch.attention_mask)
    width = alone.shape[1]
    torch.testing.assert_close(together[1, -width:], alone[0], rtol=0, atol=logprob_tolerance(model.config))
    assert batch.attention_mask[1].sum() < batch.attention_mask[0].sum()  # row 1 really was padded


def test_logprobs_are_those_of_the_next_token(tokenizer, model):
    batch = encode_two_attempts(tokenizer, samples()[:1])
    with torch.no_grad():
        logp = token_logprobs(model, batch.input_ids, batch.attention_mask)
        logits = model(input_ids=batch.input_ids).logits.float().log_softmax(-1)
    t = 5
    assert logp[0, 0] == 0
    torch.testing.assert_close(logp[0, t], logits[0, t - 1, batch.input_ids[0, t]], rtol=0,
                               atol=logprob_tolerance(model.config))  # cross_entropy against log_softmax


def test_logprobs_carry_gradient(tokenizer, tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    batch = encode_two_attempts(tokenizer, samples()[:1])
    masked_sum(token_logprobs(model, batch.input_ids, batch.attention_mask), batch.attempt_masks[1]).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_masked_sum_ignores_anything_outside_the_mask():
    values = torch.tensor([[float("nan"), 1.0, 2.0], [float("inf"), 3.0, 4.0]])
    mask = torch.tensor([[False, True, True], [False, False, True]])
    assert masked_sum(values, mask).tolist() == [3.0, 4.0]


@dataclass(frozen=True)
class _Config:
    steps: int = 1
    rate: float = 0.1
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    name: str | None = None


def test_build_config_applies_preset_then_typed_overrides():
    config = build_config(_Config, {"fast": {"steps": 5}}, "fast",
                          {"rate": "0.5", "flag": "true", "mode": "b", "name": "none"})
    assert config == _Config(steps=5, rate=0.5, flag=True, mode="b", name=None)


@pytest.mark.parametrize("preset, overrides, message", [
    ("fats", {}, "Did you mean 'fast'"),
    (None, {"step": "2"}, "Did you mean 'steps'"),
    (None, {"steps": "two"}, "'steps' expects int"),
    (None, {"mode": "c"}, "'mode' must be one of a, b"),
    (None, {"flag": "maybe"}, "'flag' expects bool"),
])
def test_build_config_rejects_bad_input_by_name(preset, overrides, message):
    with pytest.raises(InputError, match=message):
        build_config(_Config, {"fast": {"steps": 5}}, preset, overrides)


class _EvenLengthDrawingRandomNumbers(Verifier):
    """Correct when the answer has an even length; draws from the global RNGs as a grader might."""

    def verify_batch(self, items):
        random.random(), torch.rand(1)
        return [Verdict(Status.CORRECT if len(answer or "") % 2 == 0 else Status.INCORRECT, answer)
                for _, answer in items]


class ParityTask(Task):
    name = "parity"
    splits = ("train", "test", "empty")
    correction_instruction = "Check your answer and rewrite it."
    verifier = _EvenLengthDrawingRandomNumbers()

    def problems(self, split):
        count = {"train": 3, "test": 8, "empty": 0}[split]
        return [Problem(id=f"{split}{i}", question=f"Say something {i}.", reference="") for i in range(count)]

    def first_prompt(self, problem):
        return [{"role": "user", "content": problem.question}]

    def extract(self, problem, response):
        return response


def test_held_out_eval_uses_the_first_problems_of_the_eval_split_on_its_schedule(tiny_backend):
    task = ParityTask()
    on = HeldOutEval(task, RunConfig(eval_every=2, eval_split="test", eval_problems=5), tiny_backend, 8)
    assert on.problems == task.problems("test")[:5]
    assert [step for step in range(7) if on.due(step)] == [0, 2, 4, 6]
    off = HeldOutEval(task, RunConfig(eval_every=0, eval_split="empty"), tiny_backend, 8)
    assert off.problems == [] and not any(off.due(step) for step in range(7))
    with pytest.raises(InputError, match="no problems in eval split 'empty'"):
        HeldOutEval(task, RunConfig(eval_every=1, eval_split="empty"), tiny_backend, 8)


def test_held_out_row_is_a_greedy_two_attempt_rollout_that_leaves_the_rngs_alone(tiny_backend):
    task = ParityTask()
    evaluator = HeldOutEval(task, RunConfig(eval_every=1, eval_split="test", eval_problems=6), tiny_backend, 8)
    random.seed(1)
    torch.manual_seed(1)
    row = evaluator.row(7, 2, iteration=2)
    assert (random.random(), torch.rand(1).item()) == (random.Random(1).random(),
                                                       torch.rand(1, generator=torch.Generator().manual_seed(1)).item())
    assert list(row)[:6] == ["kind", "step", "stage", "iteration", "task", "split"]
    assert (row["kind"], row["step"], row["stage"], row["iteration"], row["task"], row["split"]) == (
        "eval", 7, 2, 2, task.name, "test")
    traces = rollout(task, task.problems("test")[:6], tiny_backend,
                     RolloutConfig(turns=2, params=GenerationParams(max_new_tokens=8, temperature=0.0)))
    acc = [sum(t.attempts[i].correct for t in traces) / 6 for i in (0, 1)]
    assert row["problems"] == 6 and (row["accuracy_t1"], row["accuracy_t2"]) == pytest.approx(acc)
    assert row["delta"] == pytest.approx(acc[1] - acc[0]) and row["grading_errors"] == 0
    assert row["delta_i2c"] - row["delta_c2i"] == pytest.approx(row["delta"])
    assert set(row["ci95"]) == {"acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "acc_t1_flexible",
                                "acc_t2_flexible"}
    # the parity task has no flexible reading: graded the same in both modes
    assert (row["accuracy_t1_flexible"], row["accuracy_t2_flexible"]) == pytest.approx(acc)
    assert 0 < acc[0] < 1 or 0 < acc[1] < 1  # the comparison above is not between two trivial values


def test_checkpoint_loads_with_transformers_and_keeps_the_chat_template(tmp_path, tokenizer, model):
    out = save_checkpoint(tmp_path / "ckpt", model, tokenizer, _Config(steps=3), {"stage": 2})
    loaded = AutoModelForCausalLM.from_pretrained(out)
    assert AutoTokenizer.from_pretrained(out).chat_template == tokenizer.chat_template
    assert (out / "generation_config.json").is_file()
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert saved["config"]["steps"] == 3 and saved["stage"] == 2 and "versions" in saved
    for a, b in zip(loaded.parameters(), model.parameters()):
        assert torch.equal(a, b)
