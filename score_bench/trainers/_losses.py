"""The SCoRe objectives (Kumar et al. 2024, eqs. 3 and 4) as pure functions of per-token log-probabilities,
masks and verifier rewards, so every term can be checked on hand-computed tensors.

Conventions. Tensors are [batch, length]; `mask1`/`mask2` select the sampled tokens of attempt 1/2 (see
harness.training.encoding.EncodedBatch). An attempt's log-probability is the sum over its tokens (REINFORCE on whole
sequences, no length normalisation), and the loss is the batch mean of -advantage x log-probability.

KL. The penalty is KL(pi_theta(.|context) || pi_ref(.|context)) over each attempt, estimated per sampled token
(k1 = log pi_theta - log pi_ref; k3 = r - 1 - log r with r = pi_ref / pi_theta) and summed over the
attempt's tokens. With kl_mode "reward" (default) the estimate is subtracted, detached, from the attempt's
return, as in RLHF: with k1 the policy gradient is then the exact score-function gradient of
E[return] - beta * KL. With kl_mode "loss" the k3 estimate is a differentiable loss term (GRPO style; its
gradient is that of the forward KL(pi_ref || pi_theta)). k1 as a loss term has zero expected gradient, so
that combination is rejected.

Credit. Each attempt's log-probability is multiplied by its own advantage only:
- Stage I: attempt 2's return is r2 (r1 plays no part); attempt 1 gets no reward term unless
  `stage1_credit_attempt1` (then r2, the literal REINFORCE reading of eq. 3) — only its KL anchor.
- Stage II: attempt 1's return is r1, attempt 2's is r2 + alpha * (r2 - r1).
Rewards never carry gradient: they are detached before use.

Micro-batching (harness.training.accumulation). The loss is built in three steps so a batch can be scored in parts with
exactly the one-pass gradient: sequence_kl (per-sample KL), stage_advantages (returns, and baselines over the
whole batch: computed once, before any micro-batch), stage_objective (a micro-batch's share of the batch mean).
stage_loss composes them for one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.training.encoding import masked_sum

if TYPE_CHECKING:
    from score_bench.trainers.score import ScoreConfig

LOG_RATIO_CLAMP = 20.0
"""k3 exponentiates the log-ratio; clamping keeps one far-off token from turning the loss into inf."""


def kl_per_token(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) at the sampled tokens (which were drawn from pi_theta)."""
    log_ratio = ref_logp - logp  # log pi_ref / pi_theta
    if estimator == "k1":
        return -log_ratio
    if estimator == "k3":
        log_ratio = log_ratio.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
        return log_ratio.exp() - 1 - log_ratio
    raise InputError(f"unknown KL estimator '{estimator}'; use k1 or k3")


def baseline_group(samples_per_problem: int, batch_size: int) -> int:
    """The samples a baseline averages over: one problem's when each is sampled several times, else the batch."""
    return samples_per_problem if samples_per_problem > 1 else batch_size


def baseline(returns: torch.Tensor, kind: str, group_size: int) -> torch.Tensor:
    """The REINFORCE baseline for each sample, computed within consecutive groups of `group_size` samples
    (the samples of one problem, or the whole batch when each problem is sampled once).
    none: 0. mean: the group's mean return (includes the sample itself: slightly biased, lowest variance).
    rloo: the mean of the other samples of the group (leave-one-out: unbiased); 0 for a group of one."""
    returns = returns.detach()
    if kind == "none":
        return torch.zeros_like(returns)
    if group_size < 1 or returns.numel() % group_size:
        raise InputError(f"batch of {returns.numel()} samples does not split into groups of {group_size}")
    groups = returns.view(-1, group_size)
    if kind == "mean":
        return groups.mean(-1, keepdim=True).expand_as(groups).reshape(-1)
    if kind == "rloo":
        if group_size == 1:
            return torch.zeros_like(returns)
        others = (groups.sum(-1, keepdim=True) - groups) / (group_size - 1)
        return others.reshape(-1)
    raise InputError(f"unknown baseline '{kind}'; use none, mean or rloo")


def kl_weights(stage: int, config: "ScoreConfig") -> tuple[float, float]:
    """(weight on attempt 1's KL, weight on attempt 2's KL). beta1 everywhere; Stage I adds the strong beta2
    on attempt 1; Stage II adds `stage2_attempt1_kl` on attempt 1 (0 = the paper)."""
    if stage == 1:
        return config.beta1 + config.beta2, config.beta1
    if stage == 2:
        return config.beta1 + config.stage2_attempt1_kl, config.beta1
    raise InputError(f"SCoRe has stages 1 and 2, not {stage}")


def shaped_rewards(stage: int, r1: torch.Tensor, r2: torch.Tensor,
                   config: "ScoreConfig") -> tuple[torch.Tensor, torch.Tensor]:
    """Each attempt's reward before the KL penalty (see the module docstring for who is credited with what)."""
    r1, r2 = r1.detach().float(), r2.detach().float()
    if stage == 1:
        first = r2 if config.stage1_credit_attempt1 else torch.zeros_like(r2)
        return first, r2
    if stage == 2:
        return r1, r2 + config.alpha * (r2 - r1)
    raise InputError(f"SCoRe has stages 1 and 2, not {stage}")


@dataclass(frozen=True)
class StageLoss:
    loss: torch.Tensor
    """The scalar to minimise (carries gradient through the policy's log-probabilities only)."""
    returns: tuple[torch.Tensor, torch.Tensor]
    advantages: tuple[torch.Tensor, torch.Tensor]
    kl: tuple[torch.Tensor, torch.Tensor]
    """Per-sample KL estimate of each attempt (summed over its tokens), detached."""

    def stats(self) -> dict[str, float]:
        return {"loss": float(self.loss.detach()),
                "return_t1": float(self.returns[0].mean()), "return_t2": float(self.returns[1].mean()),
                "kl_t1": float(self.kl[0].mean()), "kl_t2": float(self.kl[1].mean())}


def sequence_kl(logp: torch.Tensor, ref_logp: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor],
                estimator: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's KL estimate per attempt, summed over the attempt's tokens ([batch] each); differentiable
    through `logp`."""
    per_token = kl_per_token(logp, ref_logp.detach(), estimator)
    return masked_sum(per_token, masks[0]), masked_sum(per_token, masks[1])


def stage_advantages(stage: int, rewards: tuple[torch.Tensor, torch.Tensor],
                     kl: tuple[torch.Tensor, torch.Tensor] | None, config: "ScoreConfig",
                     group_size: int) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(returns, advantages) of every sample of the batch: the shaped rewards, minus the detached KL penalty when
    kl_mode is "reward" (`kl` may be None otherwise), and the baseline over the whole batch's groups. Computed
    before any micro-batch is scored, so micro-batching cannot change a baseline."""
    shaped = shaped_rewards(stage, *rewards, config)
    if config.kl_mode == "reward":
        weights = kl_weights(stage, config)
        returns = tuple(g - w * k.detach() for g, w, k in zip(shaped, weights, kl))
    else:
        returns = shaped
    advantages = tuple(g - baseline(g, config.baseline, group_size) for g in returns)
    return returns, advantages


def stage_objective(stage: int, logp: torch.Tensor, ref_logp: torch.Tensor,
                    masks: tuple[torch.Tensor, torch.Tensor], advantages: tuple[torch.Tensor, torch.Tensor],
                    config: "ScoreConfig", batch_size: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """The share of the whole batch's loss that the rows of `logp` carry (their terms summed, divided by the
    whole batch's `batch_size`), and their per-sample KL (detached). Summed over micro-batches this is the batch
    mean of -advantage x log-probability (+ the KL term when kl_mode is "loss")."""
    kl = sequence_kl(logp, ref_logp, masks, config.kl_estimator)
    seq_logp = (masked_sum(logp, masks[0]), masked_sum(logp, masks[1]))
    loss = -(advantages[0].detach() * seq_logp[0] + advantages[1].detach() * seq_logp[1]).sum()
    if config.kl_mode == "loss":
        weights = kl_weights(stage, config)
        loss = loss + (weights[0] * kl[0] + weights[1] * kl[1]).sum()
    return loss / batch_size, (kl[0].detach(), kl[1].detach())


def stage_loss(stage: int, logp: torch.Tensor, ref_logp: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor],
               rewards: tuple[torch.Tensor, torch.Tensor], config: "ScoreConfig", group_size: int) -> StageLoss:
    """The Stage I or Stage II loss for one batch in one pass. `rewards` are the verifier's r1, r2 per sample."""
    kl = sequence_kl(logp.detach(), ref_logp, masks, config.kl_estimator)
    returns, advantages = stage_advantages(stage, rewards, kl, config, group_size)
    loss, kl = stage_objective(stage, logp, ref_logp, masks, advantages, config, logp.shape[0])
    return StageLoss(loss, returns, advantages, kl)
