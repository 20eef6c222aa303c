"""The SCoRe objectives on tiny hand-computed tensors: KL estimators and masks, baselines, who is credited
with which reward in each stage, the bonus sign, and that rewards carry no gradient."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.trainers._losses import baseline, kl_per_token, kl_weights, shaped_rewards, stage_loss
from score_bench.trainers.score import ScoreConfig

# Two samples, six positions: [pad/prompt, prompt, y1, y1, instruction, y2]
M1 = torch.tensor([[False, False, True, True, False, False]] * 2)
M2 = torch.tensor([[False, False, False, False, False, True]] * 2)
CONFIG = ScoreConfig(model="unused", alpha=10.0, beta1=0.01, beta2=0.1, baseline="none")


def logps(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logp = (-torch.rand(2, 6, generator=g) * 3).requires_grad_(True)
    ref = -torch.rand(2, 6, generator=g) * 3
    return logp, ref


def grad_of(stage, logp, ref, rewards, config=CONFIG, group=2):
    logp = logp.detach().clone().requires_grad_(True)
    out = stage_loss(stage, logp, ref, (M1, M2), rewards, config, group)
    out.loss.backward()
    return out, logp.grad


def test_kl_estimators_on_a_hand_computed_token():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    assert kl_per_token(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_per_token(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + math.log(2))
    assert kl_per_token(ref, ref, "k3").item() == 0
    with pytest.raises(InputError, match="k2"):
        kl_per_token(logp, ref, "k2")


@pytest.mark.parametrize("kind, group, expected", [
    ("none", 4, [0, 0, 0, 0]),
    ("mean", 4, [0.5, 0.5, 0.5, 0.5]),
    ("mean", 2, [0.5, 0.5, 0.0, 0.0]),
    ("rloo", 4, [1 / 3, 2 / 3, 1 / 3, 2 / 3]),
    ("rloo", 2, [0.0, 1.0, 0.0, 0.0]),
    ("rloo", 1, [0, 0, 0, 0]),
])
def test_baselines_on_a_hand_computed_batch(kind, group, expected):
    returns = torch.tensor([1.0, 0.0, 0.0, 0.0]) if group == 2 else torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert baseline(returns, kind, group).tolist() == pytest.approx(expected)


def test_baseline_rejects_groups_that_do_not_divide_the_batch():
    with pytest.raises(InputError, match="groups of 3"):
        baseline(torch.zeros(4), "rloo", 3)


def test_kl_and_gradient_touch_only_the_attempt_tokens():
    logp, ref = logps()
    out, grad = grad_of(1, logp, ref, (torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])))
    outside = ~(M1 | M2)
    assert bool((grad[outside] == 0).all()) and bool((grad[M1] != 0).all()) and bool((grad[M2] != 0).all())
    moved = logp.detach().clone()
    moved[outside] -= 5.0  # prompt, instruction and padding log-probs change; nothing else
    again, _ = grad_of(1, moved, ref, (torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])))
    assert torch.equal(out.kl[0], again.kl[0]) and torch.equal(out.kl[1], again.kl[1])
    assert out.loss.item() == again.loss.item()
    expected_kl1 = (logp - ref).detach()[:, 2:4].sum(-1)  # k1, summed over attempt 1's two tokens
    assert torch.allclose(out.kl[0], expected_kl1)


def test_stage1_ignores_r1():
    logp, ref = logps()
    r2 = torch.tensor([1.0, 0.0])
    out_a, grad_a = grad_of(1, logp, ref, (torch.tensor([0.0, 0.0]), r2))
    out_b, grad_b = grad_of(1, logp, ref, (torch.tensor([1.0, 1.0]), r2))
    assert out_a.loss.item() == out_b.loss.item() and torch.equal(grad_a, grad_b)
    _, grad_c = grad_of(1, logp, ref, (torch.tensor([0.0, 0.0]), torch.tensor([0.0, 1.0])))
    assert not torch.equal(grad_a, grad_c)  # r2 does matter


def test_stage1_attempt1_gets_only_its_kl_anchor_unless_credited():
    logp, _ = logps()
    ref = logp.detach().clone()  # policy == reference: the KL anchor is zero, so only rewards could move y1
    rewards = (torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
    out, grad = grad_of(1, logp, ref, rewards)
    assert bool((grad[M1] == 0).all())
    assert out.returns[1].tolist() == [1.0, 0.0]
    credited = replace(CONFIG, stage1_credit_attempt1=True)
    out, grad = grad_of(1, logp, ref, rewards, credited)
    assert out.returns[0].tolist() == [1.0, 0.0]
    assert grad[0][M1[0]].tolist() == pytest.approx([-0.5, -0.5])  # -advantage / batch size


def test_stage1_kl_weights_are_beta1_plus_beta2_on_attempt1_and_beta1_on_attempt2():
    assert kl_weights(1, CONFIG) == pytest.approx((0.11, 0.01))
    assert kl_weights(2, CONFIG) == pytest.approx((0.01, 0.01))
    assert kl_weights(2, replace(CONFIG, stage2_attempt1_kl=1.0)) == pytest.approx((1.01, 0.01))
    logp, ref = logps()
    out, _ = grad_of(1, logp, ref, (torch.zeros(2), torch.zeros(2)))
    assert torch.allclose(out.returns[0], -0.11 * out.kl[0]) and torch.allclose(out.returns[1], -0.01 * out.kl[1])


@pytest.mark.parametrize("r1, r2, expected2", [(0.0, 1.0, 11.0), (1.0, 0.0, -10.0), (1.0, 1.0, 1.0),
                                               (0.0, 0.0, 0.0)])
def test_stage2_bonus_rewards_fixing_and_punishes_breaking(r1, r2, expected2):
    first, second = shaped_rewards(2, torch.tensor([r1]), torch.tensor([r2]), CONFIG)
    assert first.item() == r1 and second.item() == expected2


def test_stage2_each_attempt_is_credited_with_its_own_return():
    logp, _ = logps()
    ref = logp.detach().clone()  # KL zero, so returns are the shaped rewards exactly
    out, grad = grad_of(2, logp, ref, (torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])))
    assert out.returns[0].tolist() == [1.0, 0.0] and out.returns[1].tolist() == [-10.0, 11.0]
    # d loss / d logp at a token = -(own advantage) / batch size: attempt 1 never sees attempt 2's return
    assert grad[0][M1[0]].tolist() == pytest.approx([-0.5, -0.5])
    assert grad[1][M1[1]].tolist() == pytest.approx([0.0, 0.0])
    assert grad[0][M2[0]].tolist() == pytest.approx([5.0]) and grad[1][M2[1]].tolist() == pytest.approx([-5.5])


def test_baseline_is_applied_per_attempt():
    logp, _ = logps()
    ref = logp.detach().clone()
    out, _ = grad_of(2, logp, ref, (torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])),
                     replace(CONFIG, baseline="mean"))
    assert out.advantages[0].tolist() == [0.5, -0.5] and out.advantages[1].tolist() == [-10.5, 10.5]


def test_rewards_and_kl_penalty_carry_no_gradient_in_reward_mode():
    logp, ref = logps()
    r1, r2 = torch.tensor([1.0, 0.0], requires_grad=True), torch.tensor([0.0, 1.0], requires_grad=True)
    out, grad = grad_of(2, logp, ref, (r1, r2))
    assert r1.grad is None and r2.grad is None
    # the KL sits in the (detached) return, so the gradient is exactly -advantage / batch on each token
    for mask, advantage in zip((M1, M2), out.advantages):
        assert torch.allclose(grad[mask].view(2, -1), (-advantage / 2)[:, None].expand(2, int(mask[0].sum())))


def test_k3_in_the_loss_pulls_towards_the_reference():
    logp, _ = logps()
    ref = logp.detach() - 1.0  # the policy is more confident than the reference everywhere
    config = replace(CONFIG, kl_mode="loss", kl_estimator="k3", beta1=1.0, beta2=0.0)
    out, grad = grad_of(2, logp, ref, (torch.zeros(2), torch.zeros(2)), config)
    assert out.returns[0].tolist() == [0.0, 0.0]  # no KL inside the return in this mode
    assert bool((grad[M1 | M2] > 0).all())  # descending the loss lowers the over-confident log-probs


def test_k1_in_the_loss_is_rejected():
    logp, ref = logps()
    with pytest.raises(InputError, match="k3"):
        stage_loss(1, logp, ref, (M1, M2), (torch.zeros(2), torch.zeros(2)),
                   replace(CONFIG, kl_mode="loss", kl_estimator="k1"), 2)
