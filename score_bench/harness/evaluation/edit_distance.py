"""The paper's edit-distance ratio between consecutive attempts, which exposes "no edit" collapse.

Levenshtein distance comes from rapidfuzz (C++, linear memory), so long MATH solutions cost microseconds.
"""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein


def levenshtein(a: str, b: str) -> int:
    """Insertions, deletions and substitutions (each costing 1) that turn `a` into `b`."""
    return Levenshtein.distance(a, b)


def edit_ratio(a: str, b: str) -> float:
    """Edit distance over the total length of both (Kumar et al. 2024): 0 for identical attempts."""
    total = len(a) + len(b)
    return levenshtein(a, b) / total if total else 0.0
