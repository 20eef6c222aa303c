"""Training diagnostics (issue #10 item 7): rows say `no_signal` when every trace of a step earned the same reward,
or, under a per-problem baseline, when every problem's traces did (issue #20 item 7), and a run with no signal at
all ends with a warning naming the likely cause (also printed by the CLI); the
trainers score the sampled token ids, not a re-tokenization of the text (issue #10 item 8)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from transformers import AutoTokenizer
from typer.testing import CliRunner

from score_bench.cli import app
from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem, Status, Verdict
from score_bench.harness.generation.rollout import Attempt, Trace
from score_bench.harness.training.encoding import TwoAttempts, encode_two_attempts, two_attempts_of
from score_bench.harness.training.learning_signal import AttemptCounts, likely_cause, no_signal
from score_bench.harness.training.outputs import CONFIG_FILE, LOG_FILE
from score_bench.trainers.score import ScoreTrainer

from test_score_trainer import ParityTask, smoke


class _NoAnswer(ParityTask):
    """No response ever holds an answer: extraction gives None, the verifier says incorrect."""

    def extract(self, problem, response):
        return None


class _Incorrect(Verifier):
    def verify_batch(self, items):
        return [Verdict(Status.INCORRECT, answer) for _, answer in items]


_NoAnswer.verifier = _Incorrect()


class _EvenProblem(Verifier):
    def verify_batch(self, items):
        return [Verdict(Status.CORRECT if int(problem.id[1:]) % 2 == 0 else Status.INCORRECT, answer)
                for problem, answer in items]


class _SameWithinProblem(ParityTask):
    """Right on the even-numbered problems whatever the response: a step holds both rewards, but every problem's
    samples earn the same one, so a per-problem baseline cancels every advantage."""

    verifier = _EvenProblem()


def test_no_signal_means_one_reward_per_attempt_across_the_step():
    assert no_signal([[0, 0, 0], [1, 1, 1]])
    assert not no_signal([[0, 0, 0], [0, 1, 0]])
    assert not no_signal([[1, 0], [1, 1]])


def test_no_signal_looks_at_the_groups_the_baseline_uses():
    mixed_step_uniform_problems = [[1, 1, 0, 0]]
    assert no_signal(mixed_step_uniform_problems, group_size=2, baseline="rloo")
    assert no_signal(mixed_step_uniform_problems, group_size=2, baseline="mean")
    assert not no_signal(mixed_step_uniform_problems, group_size=4, baseline="rloo")  # one group: the batch
    assert not no_signal(mixed_step_uniform_problems, baseline="mean")
    assert not no_signal([[1, 0, 0, 0]], group_size=2, baseline="rloo")
    # no baseline (or leave-one-out over groups of one): the reward is the advantage, so only zeros are silent
    assert not no_signal([[1, 1]], baseline="none") and no_signal([[0, 0]], baseline="none")
    assert not no_signal([[1, 1]], group_size=1, baseline="rloo") and no_signal([[0, 0]], group_size=1,
                                                                                 baseline="rloo")


@pytest.mark.parametrize("counts, cause", [
    (AttemptCounts(attempts=8, extracted=0, cut=8), "no attempt was extracted: check max_new_tokens and the answer "
                                                    "format; 8 of 8 attempts were cut at max_new_tokens=16"),
    (AttemptCounts(attempts=8, extracted=8, correct=8), "every attempt was correct"),
    (AttemptCounts(attempts=8, extracted=5), "no attempt was correct (5 of 8 extracted)"),
    (AttemptCounts(attempts=8, errors=8), "every attempt failed to grade"),
])
def test_likely_cause_reads_the_attempts(counts, cause):
    assert cause in likely_cause(counts, 16)


def test_a_zero_signal_run_warns_with_the_cause_and_logs_no_signal(tiny_model, tmp_path):
    config = smoke(tiny_model, tmp_path, stage1_steps=1, stage2_steps=1, max_new_tokens=8)
    with pytest.warns(RuntimeWarning, match="no learning signal in any of the 2 training steps.*"
                                            "no attempt was extracted: check max_new_tokens and the answer format"):
        out = ScoreTrainer().train(config, task=_NoAnswer())
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [r["no_signal"] for r in rows if r["kind"] == "train"] == [True, True]
    assert all(r["extracted"] == 0 and r["attempts"] == 16 for r in rows if r["kind"] == "train")
    assert "no attempt was extracted" in json.loads((out / CONFIG_FILE).read_text())["warning"]


def test_uniform_problems_in_a_mixed_batch_have_no_signal_under_a_per_problem_baseline(tiny_model, tmp_path):
    """Issue #20 item 7: 4 problems x 2 samples, half the problems right: the batch is mixed, but the per-problem
    RLOO baseline cancels every advantage. The row says no_signal, the gradient is 0, the warning names why."""
    config = smoke(tiny_model, tmp_path, stage1_steps=1, stage2_steps=0, max_new_tokens=8)
    assert config.samples_per_problem == 2 and config.baseline == "rloo"
    with pytest.warns(RuntimeWarning, match="every problem's samples earned the same reward; more samples per "
                                            "problem or a batch baseline"):
        out = ScoreTrainer().train(config, task=_SameWithinProblem())
    (row,) = [r for r in (json.loads(line) for line in (out / LOG_FILE).read_text().splitlines())
              if r["kind"] == "train"]
    assert row["no_signal"] and 0 < row["reward_t2"] < 1
    # step 1's policy is the reference, so the KL part of each return is exactly 0 as well: nothing moves
    assert row["grad_norm"] == 0.0


@pytest.mark.parametrize("change", [{"samples_per_problem": 1, "batch_size": 8}, {"baseline": "none"}])
def test_the_same_rewards_carry_a_signal_under_a_batch_baseline_or_none(tiny_model, tmp_path, recwarn, change):
    """The same task, one sample per problem (the baseline is over the whole mixed batch) or no baseline (the
    right problems' rewards are advantages): a signal, and the gradient says so."""
    config = smoke(tiny_model, tmp_path, stage1_steps=1, stage2_steps=0, max_new_tokens=8, **change)
    out = ScoreTrainer().train(config, task=_SameWithinProblem())
    (row,) = [r for r in (json.loads(line) for line in (out / LOG_FILE).read_text().splitlines())
              if r["kind"] == "train"]
    assert not row["no_signal"] and row["grad_norm"] > 0
    assert not [w for w in recwarn if "learning signal" in str(w.message)]


def test_a_run_with_signal_says_so_and_does_not_warn(tiny_model, tmp_path, recwarn):
    out = ScoreTrainer().train(smoke(tiny_model, tmp_path, stage1_steps=1, stage2_steps=0, max_new_tokens=8),
                               task=ParityTask())
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [r["no_signal"] for r in rows if r["kind"] == "train"] == [False]
    assert not [w for w in recwarn if "learning signal" in str(w.message)]
    assert "warning" not in json.loads((out / CONFIG_FILE).read_text())


def test_the_cli_prints_the_no_signal_warning(tiny_model, tmp_path):
    """A random tiny model never writes arith's "Answer: N": the CLI run ends with the warning on its output."""
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["train", "--task", "arith", "--trainer", "score", "--model", str(tiny_model),
                                      "--output", str(out), "--preset", "smoke", "--set", "stage1_steps=1",
                                      "--set", "stage2_steps=0", "--set", "max_new_tokens=8"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "no attempt was extracted" in result.output
    assert (out / "model.safetensors").exists()


# -- the sampled token ids are what is scored ------------------------------------------------------------------

def test_the_scored_ids_are_the_sampled_ids_even_when_not_the_canonical_split(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text = "The answer is 19."
    canonical = tokenizer(text, add_special_tokens=False)["input_ids"]
    by_character = [i for ch in text for i in tokenizer(ch, add_special_tokens=False)["input_ids"]]
    assert by_character != canonical and tokenizer.decode(by_character) == text  # a non-canonical split
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    problem = Problem(id="p", question="What is 12 + 7?", reference="19")
    verdict = Verdict(Status.CORRECT, "19")
    first = Attempt(text, "19", verdict, len(by_character) + 1, token_ids=tuple(by_character) + (end,))
    second = Attempt(text, "19", verdict, len(canonical) + 1, token_ids=tuple(canonical) + (end,))
    messages = ({"role": "user", "content": problem.question}, {"role": "assistant", "content": text},
                {"role": "user", "content": "Check."}, {"role": "assistant", "content": text})
    sample = two_attempts_of(Trace(problem, 0, messages, (first, second)), first, second, max_new_tokens=64)
    batch = encode_two_attempts(tokenizer, [sample])
    ids = batch.input_ids[0]
    assert ids[batch.attempt_masks[0][0]].tolist() == by_character + [end]  # what was sampled, not canonical
    assert ids[batch.attempt_masks[1][0]].tolist() == canonical + [end]
    # Without ids (a given attempt) or with ids that are not the text (cut by a stop string), the text is tokenized
    for ids_given in ((), tuple(by_character[:-2])):
        fallback = encode_two_attempts(tokenizer, [replace(sample, first_ids=ids_given)])
        assert fallback.input_ids[0][fallback.attempt_masks[0][0]].tolist() == canonical + [end]


# -- reward: strict | flexible ---------------------------------------------------------------------------------

class _EvenAnswer(Verifier):
    def verify_batch(self, items):
        return [Verdict(Status.INCORRECT if answer is None else
                        Status.CORRECT if len(answer) % 2 == 0 else Status.INCORRECT, answer) for _, answer in items]


class _FlexibleOnly(_NoAnswer):
    """The stated format is never met (strict extraction: None), but the flexible extraction reads the whole
    response, judged by its parity: rewards exist only under reward=flexible."""

    verifier = _EvenAnswer()

    def extract_flexible(self, problem, response):
        return response


@pytest.mark.parametrize("reward", ["strict", "flexible"])
def test_the_reward_setting_chooses_the_verdict_trained_on(tiny_model, tmp_path, reward):
    from score_bench.trainers._sft import star_examples
    from score_bench.trainers.score import ScoreRun

    score = ScoreRun(smoke(tiny_model, tmp_path, reward=reward, max_new_tokens=8), task=_FlexibleOnly())
    traces = score.sample(score.run.next_problems())
    attempts = [a for t in traces for a in t.attempts]
    if reward == "strict":
        assert all(a.extracted is None and not a.correct for a in attempts)
        assert star_examples(traces, True, 8) == []
    else:
        assert all(a.extracted == a.text for a in attempts)
        assert {a.correct for a in attempts} == {True, False}  # even and odd lengths: a signal to learn from
        assert all(a.correct == (len(a.text) % 2 == 0) for a in attempts)
