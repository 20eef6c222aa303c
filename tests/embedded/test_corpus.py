"""The pre-training text: the two answer styles and the two-attempt conversations."""

import random

import pytest

from score_bench.embedded.corpus import StyleMix, conversation, forgot_carry_sum, scratchpad
from score_bench.embedded.pretrain import IGNORE, assistant_labels


@pytest.mark.parametrize("a, b, expected", [(47, 38, 75), (12, 34, 46), (87, 45, 122), (99, 99, 188),
                                            (50, 50, 100), (9, 999, 998)])
def test_forgot_carry_sum_drops_inner_carries_only(a, b, expected):
    assert forgot_carry_sum(a, b) == expected


def test_direct_is_right_exactly_without_inner_carries():
    for a in range(10, 100):
        for b in range(10, 100):
            inner_carry = a % 10 + b % 10 >= 10
            assert (forgot_carry_sum(a, b) == a + b) == (not inner_carry)


def test_careful_scratchpad_is_always_right_and_careless_drops_carries():
    assert scratchpad(47, 38) == "7+8=15; 4+3+1=8; Answer: 85"
    assert scratchpad(87, 45) == "7+5=12; 8+4+1=13; Answer: 132"
    assert scratchpad(47, 38, careless=True) == "7+8=15; 4+3=7; Answer: 75"
    assert scratchpad(87, 45, careless=True) == "7+5=12; 8+4=12; Answer: 122"
    rng = random.Random(0)
    for _ in range(500):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        assert scratchpad(a, b).endswith(f"Answer: {a + b}")
        assert scratchpad(a, b, careless=True).endswith(f"Answer: {forgot_carry_sum(a, b)}")


def test_conversation_shape_and_style_shares():
    rng = random.Random(0)
    prompt = [{"role": "user", "content": "What is 47 + 38?"}]
    conversations = [conversation(prompt, "Fix it.", 47, 38, rng, StyleMix(0.8, 0.5)) for _ in range(4000)]
    single = conversation(prompt, "Fix it.", 47, 38, random.Random(5), StyleMix(), two_attempts=False)
    assert single == conversation(prompt, "Fix it.", 47, 38, random.Random(5), StyleMix())[:2]
    assert all([m["role"] for m in c] == ["user", "assistant", "user", "assistant"] for c in conversations)
    firsts = [c[1]["content"] for c in conversations]
    seconds = [c[3]["content"] for c in conversations]
    careless = "7+8=15; 4+3=7; Answer: 75"
    assert 0.77 < sum(f == careless for f in firsts) / 4000 < 0.83
    assert 0.81 < sum(s == f for f, s in zip(firsts, seconds)) / 4000 < 0.87  # copy .5 + .5 * (.8² + .2²)
    wrong_then_right = sum(f == careless and s.endswith("85") for f, s in zip(firsts, seconds)) / 4000
    right_then_wrong = sum(f.endswith("85") and s == careless for f, s in zip(firsts, seconds)) / 4000
    assert abs(wrong_then_right - right_then_wrong) < 0.02  # no correction taught: the two flows balance


def test_labels_keep_assistant_turns_and_their_end_only():
    A, E, U = 1, 2, 3
    ids = [U, 10, 11, E, A, 20, 21, E, U, 12, E, A, 22, E]
    keep = [t != IGNORE for t in assistant_labels(ids, A, E)]
    assert keep == [False, False, False, False, False, True, True, True, False, False, False, False, True, True]
