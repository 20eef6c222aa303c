"""Micro-batching with gradient accumulation (issue #13 item 1): the gradient of a batch of 16 scored in
micro-batches of 4 equals the one-pass gradient to float tolerance, for SCoRe Stage I and II and for the SFT
baselines (star, pair-sft); a baseline computed per micro-batch instead of per batch gives a visibly different
gradient, so the equality tests would catch it; and a 2-process DDP run in micro-batches takes the one-process,
one-pass first step."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.training.accumulation import micro_batches
from score_bench.harness.training.config import build_config
from score_bench.harness.training.encoding import TwoAttempts, encode_two_attempts, token_logprobs
from score_bench.trainers._losses import stage_loss
from score_bench.trainers._sft import SftRun
from score_bench.trainers.pair_sft import PRESETS as PAIR_PRESETS, PairSftConfig
from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreRun, ScoreTrainer
from score_bench.trainers.star import PRESETS as STAR_PRESETS, StarConfig

from float_tolerance import (assert_same_gradient, assert_same_score_step, assert_same_step, gradient_difference,
                             logprob_tolerance, reduction_tolerance, score_statistic_bounds)
from test_score_ddp import free_port, vocab_of
from test_score_resume import child_env, log_rows, write_script
from test_score_trainer import ParityTask

BATCH, MICRO = 16, 4


def examples(n: int = BATCH, seed: int = 0) -> list[TwoAttempts]:
    """Two-attempt conversations of different lengths, so micro-batches differ in padding and token counts."""
    rng = random.Random(seed)
    words = "the answer is 19 compute 3 * 4 wrong correct rewrite final".split()

    def text(k):
        return " ".join(rng.choice(words) for _ in range(k))

    return [TwoAttempts([{"role": "user", "content": f"Question {i}: {text(rng.randint(1, 6))}"}],
                        text(rng.randint(1, 12)), "Check your answer and rewrite it.", text(rng.randint(1, 12)))
            for i in range(n)]


def rewards(n: int = BATCH, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n,), generator=g).float(), torch.randint(0, 2, (n,), generator=g).float()


def perturb(model, seed: int = 3) -> None:
    """Move the policy away from the reference, so every KL term is nonzero and enters the returns."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)


def grads(model) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def tokens(tokenizer) -> int:
    """The token positions of examples(): each gradient element is a sum over them, split by micro-batching."""
    return int(encode_two_attempts(tokenizer, examples()).attention_mask.sum())


def score_run(tiny_model, tmp_path, micro, **changes) -> ScoreRun:
    config = with_values(build_config(ScoreConfig, PRESETS, "smoke"), model=str(tiny_model), grad_clip=0.0,
                     output=str(tmp_path / f"out-{micro}"), samples_per_problem=1, micro_batch_size=micro,
                     beta1=0.5, beta2=0.5, **changes)
    score = ScoreRun(config, task=ParityTask())
    perturb(score.run.model)
    return score


def score_gradient(score: ScoreRun, stage: int):
    batch = encode_two_attempts(score.run.tokenizer, examples())
    score.run.optimizer.zero_grad(set_to_none=True)
    result = score.backward(stage, batch, rewards())
    return grads(score.run.model), result


@pytest.mark.parametrize("stage, changes", [
    (1, {}),
    (2, {}),
    (2, {"kl_mode": "loss", "kl_estimator": "k3", "baseline": "mean"}),
])
def test_score_micro_batches_take_the_one_pass_gradient(tiny_model, tmp_path, stage, changes):
    score = score_run(tiny_model, tmp_path, None, **changes)
    run = score.run
    whole, whole_result = score_gradient(score, stage)
    parts, parts_result = score_gradient(score_run(tiny_model, tmp_path, MICRO, **changes), stage)
    assert max(float(g.abs().max()) for g in whole.values()) > 1e-3  # a real gradient, not zeros
    assert_same_gradient(whole, parts, tokens(run.tokenizer))
    batch = encode_two_attempts(run.tokenizer, examples())
    attempt_tokens = int(batch.attempt_masks[0].sum() + batch.attempt_masks[1].sum())
    bounds = score_statistic_bounds(run.config, attempt_tokens / BATCH, BATCH, run.model.config.vocab_size)
    for key, value in whole_result.stats().items():
        assert abs(parts_result.stats()[key] - value) <= bounds[key], key


def test_a_baseline_per_micro_batch_would_change_the_gradient(tiny_model, tmp_path):
    """The counter-check: scoring each micro-batch with its own leave-one-out baseline (what naive accumulation
    does) is far from the one-pass gradient, so the equality above is not a tolerance artefact."""
    score = score_run(tiny_model, tmp_path, None)
    run = score.run
    whole, _ = score_gradient(score, 1)
    batch = encode_two_attempts(run.tokenizer, examples())
    r1, r2 = rewards()
    run.optimizer.zero_grad(set_to_none=True)
    for part in micro_batches(batch.lengths(), MICRO):
        piece = batch.rows(part)
        with torch.no_grad():
            ref = token_logprobs(run.reference, piece.input_ids, piece.attention_mask)
        logp = token_logprobs(run.policy, piece.input_ids, piece.attention_mask)
        naive = stage_loss(1, logp, ref, piece.attempt_masks, (r1[part], r2[part]), run.config, len(piece))
        (naive.loss * len(piece) / BATCH).backward()
    assert gradient_difference(whole, grads(run.model)) > 100 * reduction_tolerance(tokens(run.tokenizer))


SFT = [("star", StarConfig, STAR_PRESETS), ("pair-sft", PairSftConfig, PAIR_PRESETS)]


@pytest.mark.parametrize("trainer, config_class, presets", SFT)
def test_sft_micro_batches_take_the_one_pass_gradient(tiny_model, tmp_path, trainer, config_class, presets):
    def gradient(micro):
        config = with_values(build_config(config_class, presets, "smoke"), model=str(tiny_model), grad_clip=0.0,
                         output=str(tmp_path / f"{trainer}-{micro}"), micro_batch_size=micro)
        sft = SftRun(config, trainer, task=ParityTask())
        loss, count = sft.backward(examples())  # the minibatch's gradient, in .grad
        return grads(sft.run.model), float(loss), count, sft.run

    whole, whole_loss, whole_count, run = gradient(None)
    parts, parts_loss, parts_count, _ = gradient(MICRO)
    assert max(float(g.abs().max()) for g in whole.values()) > 1e-3
    assert_same_gradient(whole, parts, tokens(run.tokenizer))
    assert parts_count == whole_count
    # the mean NLL of the attempt-2 tokens, each scored in another micro-batch's padding, summed in another order
    bound = logprob_tolerance(run.model.config) + reduction_tolerance(whole_count) * whole_loss
    assert abs(parts_loss - whole_loss) <= bound


def test_micro_batches_split_by_rows_and_by_padded_tokens():
    assert micro_batches([5] * 10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert micro_batches([5] * 3, None) == [slice(0, 3)]
    # 20 padded tokens: rows of 5 go four at a time; a longer row widens its micro-batch; a row over budget is alone
    assert micro_batches([5, 5, 5, 5, 5], None, 20) == [slice(0, 4), slice(4, 5)]
    assert micro_batches([5, 8, 5, 30, 5], None, 20) == [slice(0, 2), slice(2, 3), slice(3, 4), slice(4, 5)]
    assert micro_batches([5, 5, 5], 2, 100) == [slice(0, 2), slice(2, 3)]


def test_micro_batch_settings_are_checked_before_loading(tmp_path):
    with pytest.raises(InputError, match="micro_batch_size"):  # as the config is built
        ScoreConfig(model="does-not-matter", output=str(tmp_path / "x"), micro_batch_size=0)
    assert not (tmp_path / "x").exists()


def test_two_process_micro_batched_step_equals_the_one_pass_step(tiny_model, tmp_path):
    """DDP in micro-batches of one (two per process): gradients are synchronised once, at the last micro-batch,
    and the first step's loss, all-reduced gradient norm and weights are those of one process on the whole batch."""
    settings = {"split": "train", "eval_split": "train", "stage1_steps": 1, "stage2_steps": 0, "batch_size": 4,
                "save_every": 0, "eval_every": 0, "beta1": 0.5, "beta2": 0.5, "model": str(tiny_model)}
    out = tmp_path / "ddp"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    done = subprocess.run([*launch, str(write_script(tmp_path)),
                           json.dumps({**settings, "output": str(out), "micro_batch_size": 1})],
                          env=child_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    config = build_config(ScoreConfig, PRESETS, "smoke", {**settings, "output": str(tmp_path / "single")})
    single = ScoreTrainer().train(config, task=ParityTask())
    assert_same_score_step(log_rows(single)[0], log_rows(out)[0], config, vocab_of(tiny_model))
    assert_same_step(load_file(tiny_model / "model.safetensors"), load_file(single / "model.safetensors"),
                     load_file(out / "model.safetensors"))
