"""The numpy Levenshtein against the textbook dynamic programme, on fixed and random strings."""

from __future__ import annotations

import random

import pytest

from score_bench.harness.evaluation.edit_distance import edit_ratio, levenshtein


def textbook(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        previous_diagonal, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            previous_diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous_diagonal + (x != y))
    return row[-1]


@pytest.mark.parametrize("a, b, distance", [
    ("", "", 0), ("abc", "", 3), ("", "abc", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2),
    ("same", "same", 0), ("정답은 1392년", "정답은 1398년", 1), ("ab", "ba", 2), ("a\x00b", "ab", 1),
])
def test_known_distances(a, b, distance):
    assert levenshtein(a, b) == distance == levenshtein(b, a)


def test_matches_the_textbook_programme_on_random_strings():
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abc€1 ") for _ in range(rng.randint(0, 25)))
        b = "".join(rng.choice("abc€1 ") for _ in range(rng.randint(0, 25)))
        assert levenshtein(a, b) == textbook(a, b)


def test_ratio_is_distance_over_total_length():
    assert edit_ratio("", "") == 0.0
    assert edit_ratio("same", "same") == 0.0
    assert edit_ratio("abc", "xyz") == 0.5
    assert edit_ratio("kitten", "sitting") == pytest.approx(3 / 13)
