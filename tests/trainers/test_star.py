"""The star trainer and what it shares with pair-sft (trainers/_sft.py): D vs D+ selection on hand-made
traces, the SFT loss on attempt-2 tokens only (checked against a hand-computed NLL), one step raising the
trained y2's log-probability, the no-example path, and an end-to-end smoke run producing a loadable checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem, Status, Verdict
from score_bench.harness.generation.rollout import Attempt, Trace
from score_bench.harness.training.config import build_config
from score_bench.harness.training.encoding import TwoAttempts, encode_two_attempts
from score_bench.harness.training.outputs import CONFIG_FILE, LOG_FILE
from score_bench.trainers._sft import sft_loss, star_examples
from score_bench.trainers.score import PRESETS as SCORE_PRESETS, ScoreConfig
from score_bench.trainers.star import PRESETS, StarConfig, StarTrainer

from float_tolerance import logprob_tolerance, reduction_tolerance
from test_score_trainer import ParityTask

INSTRUCTION = "Check your answer and rewrite it."
C, I, E = Status.CORRECT, Status.INCORRECT, Status.ERROR


def make_trace(pid: str, sample: int, first: tuple[str, Status], second: tuple[str, Status]) -> Trace:
    """A graded two-attempt trace as the rollout returns it."""
    problem = Problem(id=pid, question=f"Question {pid}?", reference="")
    messages = ({"role": "user", "content": problem.question}, {"role": "assistant", "content": first[0]},
                {"role": "user", "content": INSTRUCTION}, {"role": "assistant", "content": second[0]})
    attempts = tuple(Attempt(text, text, Verdict(status, text), n_tokens=3) for text, status in (first, second))
    return Trace(problem, sample, messages, attempts)


TRACES = [
    make_trace("a", 0, ("a-wrong", I), ("a-fixed", C)),       # i -> c
    make_trace("a", 1, ("a-right", C), ("a-kept", C)),        # c -> c
    make_trace("a", 2, ("a-right2", C), ("a-broken", I)),     # c -> i
    make_trace("b", 0, ("b-wrong", I), ("b-wrong2", I)),      # i -> i
    make_trace("b", 1, ("b-err", E), ("b-fixed", C)),         # grader error on y1: neither correct nor not
    make_trace("b", 2, ("b-wrong3", I), ("b-err2", E)),       # grader error on y2
]


@pytest.mark.parametrize("plus, expected", [
    (False, [("a-wrong", "a-fixed")]),
    (True, [("a-wrong", "a-fixed"), ("a-right", "a-kept")]),
])
def test_star_keeps_incorrect_to_correct_and_d_plus_adds_correct_to_correct(plus, expected):
    kept = star_examples(TRACES, plus, max_new_tokens=8)
    assert [(e.first, e.second) for e in kept] == expected
    assert all(e.prompt == [{"role": "user", "content": "Question a?"}] and e.instruction == INSTRUCTION
               for e in kept)


def test_star_marks_an_attempt_cut_at_max_new_tokens_as_not_ended():
    (kept,) = star_examples(TRACES[:1], False, max_new_tokens=3)  # n_tokens == 3: cut
    assert not kept.first_ended and not kept.second_ended
    (kept,) = star_examples(TRACES[:1], False, max_new_tokens=4)
    assert kept.first_ended and kept.second_ended


SAMPLES = [TwoAttempts([{"role": "user", "content": "What is 12 + 7?"}], "The answer is 18.",
                       "There might be an error.", "Final Answer: 19"),
           TwoAttempts([{"role": "user", "content": "Compute 3 * (4 - 9) please, and simplify the result."}],
                       "= 15", "Please correct the error.", "The answer is -15.")]


def test_sft_loss_is_the_mean_nll_of_the_attempt2_tokens_computed_by_hand(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    total, count = 0.0, 0
    for sample in SAMPLES:  # each row alone (no padding), positions found from the text, not from the masks
        messages = [*sample.prompt, {"role": "assistant", "content": sample.first},
                    {"role": "user", "content": sample.instruction}, {"role": "assistant", "content": sample.second}]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        target = tokenizer(sample.second, add_special_tokens=False)["input_ids"] + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        end = len(ids) - 1  # the template's trailing newline after <|im_end|>
        assert ids[end - len(target):end] == target
        with torch.no_grad():
            logp = F.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        for t in range(end - len(target), end):
            total -= logp[t - 1, ids[t]].item()
            count += 1
    batch = encode_two_attempts(tokenizer, SAMPLES)  # left-padded: the rows differ in length
    assert batch.attention_mask[1].all() != batch.attention_mask[0].all()
    with torch.no_grad():
        loss, tokens = sft_loss(model, batch)
    assert tokens == count
    # each token's log p scored alone and in a padded batch (logprob_tolerance), then their mean in float32
    mean = total / count
    assert abs(loss.item() - mean) <= logprob_tolerance(model.config) + reduction_tolerance(count) * mean


def test_one_sft_step_raises_the_log_probability_of_the_trained_y2(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    batch = encode_two_attempts(tokenizer, SAMPLES[:1])
    with torch.no_grad():
        before = sft_loss(model, batch)[0].item()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss, _ = sft_loss(model, batch)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = sft_loss(model, batch)[0].item()
    assert after < before - 1e-3


def smoke(tiny_model, tmp_path, **changes) -> StarConfig:
    values = {"model": str(tiny_model), "output": str(tmp_path / "out"), **changes}
    return with_values(build_config(StarConfig, PRESETS, "smoke"), **values)


def test_presets_mirror_score_budget():
    for name in SCORE_PRESETS:
        score = build_config(ScoreConfig, SCORE_PRESETS, name)
        star = build_config(StarConfig, PRESETS, name)
        assert star.updates == score.stage1_steps + score.stage2_steps
        assert star.sampling_batches * star.batch_size * star.samples_per_problem == \
            (score.stage1_steps + score.stage2_steps) * score.batch_size * score.samples_per_problem
        assert (star.learning_rate, star.sft_batch_size) == (score.learning_rate,
                                                             score.batch_size * score.samples_per_problem)
        assert (star.eval_every, star.eval_split, star.eval_problems) == (score.eval_every, score.eval_split,
                                                                          score.eval_problems)
        assert (star.generation, star.samples_per_problem) == (score.generation, score.samples_per_problem)


def test_smoke_run_writes_a_loadable_checkpoint_config_and_log(tiny_model, tmp_path):
    config = smoke(tiny_model, tmp_path, variant="d_plus")
    out = StarTrainer().train(config, task=ParityTask())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_model).chat_template
    trained = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert any(not torch.equal(p, q) for p, q in zip(trained.parameters(), base.parameters()))
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert saved["config"]["iterations"] == 2 and saved["config"]["model"] == str(tiny_model)
    budget = saved["budget"]
    assert budget["traces_sampled"] == 4 * 4 * 2 and budget["sampling_batches"] == 4
    assert budget["updates"] + budget["updates_skipped"] == 4 and budget["updates"] > 0
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    updates = [r for r in rows if r["loss"] is not None]
    assert [r["step"] for r in updates] == list(range(1, budget["updates"] + 1))
    assert {r["iteration"] for r in rows} == {1, 2} and {r["kind"] for r in rows} == {"train"}  # eval is off
    assert [r["traces_sampled"] for r in rows if r["iteration"] == 1][0] == 16
    for key in ("loss", "examples", "accuracy_t1", "accuracy_t2", "tokens_per_s"):
        assert all(r[key] is not None for r in updates), key
    assert all(r["examples"] >= r["batch_examples"] > 0 for r in updates)


class _Never(Verifier):
    def verify_batch(self, items):
        return [Verdict(Status.INCORRECT, answer) for _, answer in items]


class NeverTask(ParityTask):
    """Nothing is ever correct, so no example is ever kept."""

    verifier = _Never()


def test_no_example_kept_warns_logs_and_saves_the_model_unchanged(tiny_model, tmp_path):
    with pytest.warns(RuntimeWarning, match="no training example kept"):
        out = StarTrainer().train(smoke(tiny_model, tmp_path), task=NeverTask())
    trained = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert all(torch.equal(p, q) for p, q in zip(trained.parameters(), base.parameters()))
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [(r["iteration"], r["updates_skipped"], r["examples"]) for r in rows] == [(1, 2, 0), (2, 2, 0)]
    assert json.loads((out / CONFIG_FILE).read_text())["budget"]["updates"] == 0


@pytest.mark.parametrize("changes, message", [
    ({"model": ""}, "needs a model"),
    ({"iterations": 0}, "iterations"),
    ({"iterations": 5}, "sampling batch per iteration"),
    ({"temperature": 0.0}, "temperature"),
    ({"sft_batch_size": 0}, "sft_batch_size"),
])
def test_bad_configs_fail_by_name(tiny_model, tmp_path, changes, message):
    with pytest.raises(InputError, match=message):
        StarTrainer().train(smoke(tiny_model, tmp_path, **changes), task=ParityTask())
