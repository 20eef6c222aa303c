import numpy as np
import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.evaluation.metrics import mcnemar, paired_bootstrap, pass_at_k, pass_at_k_by_turn, summarize


def test_paper_metrics_on_a_hand_counted_case():
    # 10 problems: 4 c->c, 1 c->i, 3 i->c, 2 i->i
    rows = [[1, 1]] * 4 + [[1, 0]] + [[0, 1]] * 3 + [[0, 0]] * 2
    m = summarize(rows)
    assert m["acc_t1"]["value"] == pytest.approx(0.5)
    assert m["acc_t2"]["value"] == pytest.approx(0.7)
    assert m["delta"]["value"] == pytest.approx(0.2)
    assert m["delta_i2c"]["value"] == pytest.approx(0.3)
    assert m["delta_c2i"]["value"] == pytest.approx(0.1)
    assert m["delta"]["value"] == pytest.approx(m["delta_i2c"]["value"] - m["delta_c2i"]["value"])
    assert m["p_i2c_given_i"]["value"] == pytest.approx(3 / 5)
    assert m["p_c2i_given_c"]["value"] == pytest.approx(1 / 5)


def test_intervals_cover_the_estimate_and_shrink_with_more_problems():
    rng = np.random.default_rng(0)
    small = summarize(rng.random((50, 2)) < 0.6)
    large = summarize(rng.random((2000, 2)) < 0.6)
    for m in (small, large):
        for entry in m.values():
            lo, hi = entry["ci95"]
            assert lo <= entry["value"] <= hi
    width = lambda m: m["acc_t1"]["ci95"][1] - m["acc_t1"]["ci95"][0]
    assert width(large) < width(small) / 3


def test_delta_interval_is_paired():
    # Attempt 2 = attempt 1 plus one extra solve on 10% of problems: a paired interval excludes 0,
    # an unpaired one (two independent accuracies near 0.5) would not.
    rng = np.random.default_rng(1)
    first = rng.random(400) < 0.5
    second = first | (rng.random(400) < 0.2)
    m = summarize(np.stack([first, second], axis=1))
    assert m["delta"]["ci95"][0] > 0


def test_conditional_rates_are_none_without_a_condition():
    m = summarize([[1, 1], [1, 0]])
    assert m["p_i2c_given_i"]["value"] is None and m["p_i2c_given_i"]["ci95"] is None


def test_samples_average_within_a_problem_first():
    correct = np.zeros((2, 4, 2), dtype=bool)
    correct[0, :2, 0] = True  # problem 0: half its samples right at t1
    assert summarize(correct)["acc_t1"]["value"] == pytest.approx(0.25)


def test_pass_at_k_matches_the_combinatorial_definition():
    assert pass_at_k(5, 0, 1) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    correct = np.zeros((1, 4, 1), dtype=bool)
    correct[0, 0, 0] = True
    assert pass_at_k_by_turn(correct, ks=(1, 2, 8)) == {"pass@1_t1": 0.25, "pass@2_t1": 0.5}
    with pytest.raises(InputError):
        pass_at_k(3, 1, 4)


def test_mcnemar_counts_discordant_pairs_and_detects_a_real_difference():
    a = np.array([1] * 30 + [0] * 70, dtype=bool)
    b = np.array([1] * 30 + [1] * 25 + [0] * 45, dtype=bool)
    result = mcnemar(a, b)
    assert (result["only_first"], result["only_second"]) == (0, 25)
    assert result["p_value"] < 1e-6
    assert mcnemar(a, a)["p_value"] == 1.0
    with pytest.raises(InputError):
        mcnemar(a, b[:50])


def test_paired_bootstrap_on_delta():
    rng = np.random.default_rng(2)
    base_t1 = rng.random(300) < 0.5
    base = np.stack([base_t1, base_t1], axis=1)  # Δ = 0
    better = np.stack([base_t1, base_t1 | (rng.random(300) < 0.3)], axis=1)  # Δ ≈ 0.15
    result = paired_bootstrap(base, better, "delta")
    assert result["difference"] > 0.1 and result["ci95"][0] > 0 and result["p_value"] < 0.01
    same = paired_bootstrap(base, base, "delta")
    assert same["difference"] == 0 and same["p_value"] == 1.0
    with pytest.raises(InputError):
        paired_bootstrap(base, better, "nonsense")


def test_bad_shapes_are_input_errors():
    with pytest.raises(InputError):
        summarize([])
    with pytest.raises(InputError):
        summarize([True, False])


def test_a_single_attempt_has_accuracy_only():
    m = summarize([[True], [False], [True], [True]])
    assert m["acc_t1"]["value"] == pytest.approx(0.75)
    assert set(m) == {"acc_t1"}


def test_bootstrap_p_value_is_floored_at_its_resolution():
    base = np.zeros((200, 2), dtype=bool)
    better = np.ones((200, 2), dtype=bool)
    result = paired_bootstrap(base, better, "acc_t2", resamples=500)
    assert result["p_value"] == pytest.approx(1 / 500)


def test_flexible_and_extraction_metrics_share_the_bootstrap_and_carry_delta_p_values():
    rng = np.random.default_rng(3)
    strict = rng.random((80, 2)) < 0.2
    flexible = strict.copy()
    flexible[:, 1] |= rng.random(80) < 0.5  # attempt 2 gains under flexible reading only
    extracted = strict | (rng.random((80, 2)) < 0.1)
    m = summarize(strict, flexible=flexible, extracted=extracted, extracted_flexible=np.ones_like(strict))
    assert m["acc_t2_flexible"]["value"] == pytest.approx(flexible[:, 1].mean())
    assert m["delta_flexible"]["value"] == pytest.approx(flexible[:, 1].mean() - flexible[:, 0].mean())
    assert m["delta_i2c_flexible"]["value"] - m["delta_c2i_flexible"]["value"] == pytest.approx(
        m["delta_flexible"]["value"])
    assert m["extraction_rate_t1"]["value"] == pytest.approx(extracted[:, 0].mean())
    assert m["extraction_rate_t2_flexible"] == {"value": 1.0, "ci95": [1.0, 1.0]}
    assert m["delta_flexible"]["ci95"][0] > 0 and m["delta_flexible"]["p_value"] < 0.01
    assert 0 < m["delta"]["p_value"] <= 1
    for name in ("acc_t1_flexible", "delta_c2i_flexible", "p_i2c_given_i_flexible", "extraction_rate_t2"):
        lo, hi = m[name]["ci95"]
        assert lo <= m[name]["value"] <= hi
    # strict metrics do not move when the flexible ones are added
    assert {k: v for k, v in m.items() if k in summarize(strict)} == summarize(strict)
    with pytest.raises(InputError, match="shape"):
        summarize(strict, flexible=flexible[:10])
