"""Tolerances for one float32 computation done two ways: in another process layout (DDP, FSDP), in micro-batches,
in another batch shape, recomputed (gradient checkpointing) or merged (LoRA). Sums taken in another order round
differently, so these comparisons need a tolerance, and each one here is scaled to what is compared: float32
epsilon times the length of the reduction times the size of its terms, or the size of the optimiser step. An
absolute number measured on one CPU is not a property of the code: another CPU's kernels block the same sums in
another order. (The same code on the same inputs in the same process is compared exactly instead.)"""

from __future__ import annotations

import math

import torch

EPS32 = torch.finfo(torch.float32).eps
"""2**-23: one float32 rounding changes a number by at most half of this, relative to it."""


def reduction_tolerance(terms: float) -> float:
    """Relative difference allowed between two float32 reductions of `terms` terms taken in different orders or
    groupings: eps x terms, the worst case of a float32 sum relative to the sum of the terms' magnitudes."""
    return EPS32 * terms


def gradient_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest per-tensor ||a - b|| / ||a|| of two gradients (or any two sets of named tensors)."""
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).norm() / a[k].norm()) if a[k].norm() > 0 else float(b[k].norm()) for k in a)


def assert_same_gradient(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], terms: int) -> None:
    """`a` and `b` are one gradient computed two ways, each element a sum over `terms` token positions: every
    tensor agrees to reduction_tolerance(terms) of its norm (the worst case is relative to the terms' summed
    magnitudes, which the norm stands for unless the batch's contributions cancel to a small part of them)."""
    difference = gradient_difference(a, b)
    assert difference <= reduction_tolerance(terms), f"gradients differ by {difference:.3g} of their norm"


STEP_TOLERANCE = math.sqrt(1e-5)
"""How far two optimiser steps from the same weights may differ, as a norm over all weights, relative to the
step's norm. Adam moves a weight by about the learning rate whatever its gradient's size (g / (|g| + 1e-8)), so
the float32 noise of a gradient element (about 1e-9 here) changes a weight's step noticeably only where the
gradient is within a few 1e-8 of zero: a few weights in 10^5 of gradients about 1e-3 in size (clipped to norm 1
over the tiny model's 1.2e5 weights), and there by part of a step. An elementwise bound cannot hold on every CPU;
the whole step may differ by what one weight in 10^5 taking a whole step the other way gives, sqrt(1e-5). Real
errors change most weights' steps: a learning rate 10% off gives 0.09, a lost micro-batch or gradients never
all-reduced 1.0. A gradient scaled by a constant (summed over processes, not averaged) takes the same step once
clipped: compare the gradient norms for that (assert_same_score_step)."""


def step_difference(before: dict[str, torch.Tensor], after_a: dict[str, torch.Tensor],
                    after_b: dict[str, torch.Tensor]) -> float:
    """||step_a - step_b|| / ||step_a|| over all weights together, where step_x = after_x - before."""
    assert before.keys() == after_a.keys() == after_b.keys()
    step_a = torch.cat([(after_a[k] - before[k]).flatten() for k in before])
    step_b = torch.cat([(after_b[k] - before[k]).flatten() for k in before])
    assert step_a.norm() > 0, "the step did not move the weights"
    return float((step_a - step_b).norm() / step_a.norm())


def assert_same_step(before: dict[str, torch.Tensor], after_a: dict[str, torch.Tensor],
                     after_b: dict[str, torch.Tensor]) -> None:
    """`after_a` and `after_b` are `before` moved by the same optimiser step(s) computed two ways (STEP_TOLERANCE)."""
    difference = step_difference(before, after_a, after_b)
    assert difference <= STEP_TOLERANCE, f"the steps differ by {difference:.3g} of the step's norm"


def logprob_tolerance(model_config) -> float:
    """Absolute difference (nats) allowed between two float32 computations of one token's log-probability under a
    model (its transformers config): in another batch shape or padding, through a wrapper, from merged weights, by
    another engine's kernels. A logit is a dot product over the hidden size, and log p subtracts from it the log of
    a sum over the vocabulary of terms up to 1: eps x (hidden + vocab), the worst case of those reductions (what is
    measured is a float32 spacing or two of |log p|)."""
    return reduction_tolerance(model_config.hidden_size + model_config.vocab_size)


def logprob_sum_tolerance(tokens: float, size: float) -> float:
    """Absolute difference allowed between two float32 sums of `tokens` token log-probabilities, each at most `size`
    in magnitude, scored in different batch layouts: a log-probability ends in a subtraction at its own magnitude
    and differs there by about one rounding (1 to 3 float32 spacings measured), and those add up over the tokens:
    eps x tokens x size."""
    return EPS32 * tokens * size


def random_model_logp(vocab: int) -> float:
    """A bound on |log p| of a token under the random tiny test models: their next-token distributions are near
    uniform, so log p is about -log(vocab); twice that."""
    return 2 * math.log(vocab)


def score_statistic_bounds(config, tokens_per_trace: float, traces: int, vocab: int) -> dict[str, float]:
    """How far the KL, return and loss statistics of one SCoRe step on the same samples may differ between two
    layouts. They are means over traces of sums of log-probabilities: logprob_sum_tolerance over a trace's tokens
    and the mean over traces, times each term's weight (in the loss an advantage, at most the span of the returns:
    1 + alpha of shaped reward, doubled for their KL part)."""
    kl = logprob_sum_tolerance(tokens_per_trace + traces, 2 * random_model_logp(vocab))  # policy and reference
    return {"kl_t1": kl, "kl_t2": kl, "return_t1": (config.beta1 + config.beta2 + config.stage2_attempt1_kl) * kl,
            "return_t2": config.beta1 * kl, "loss": 2 * (1 + config.alpha) * kl}


def assert_same_score_step(a: dict, b: dict, config, vocab: int) -> None:
    """Two log rows of one SCoRe step taken on the same samples in two layouts (one process, DDP, FSDP). Rewards
    and token counts are exact: the same traces, and their means over a power-of-two number of them are exact in
    float. KL, returns and loss: score_statistic_bounds. The gradient norm is a norm of sums over the batch's
    tokens: reduction_tolerance of its attempt tokens (the loss's terms), relative to itself. (The step itself:
    assert_same_step.)"""
    for key in ("accuracy_t1", "accuracy_t2", "attempt_tokens"):
        assert a[key] == b[key], key
    traces = config.batch_size * config.samples_per_problem
    for key, bound in score_statistic_bounds(config, a["attempt_tokens"] / traces, traces, vocab).items():
        assert abs(a[key] - b[key]) <= bound, f"{key}: {a[key]} and {b[key]} differ by more than {bound:.3g}"
    assert a["grad_norm"] > 0
    difference = abs(a["grad_norm"] - b["grad_norm"]) / a["grad_norm"]
    assert difference <= reduction_tolerance(a["attempt_tokens"]), f"grad_norm differs by {difference:.3g} of itself"
