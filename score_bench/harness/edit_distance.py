"""Levenshtein distance between two attempts, and the paper's edit-distance ratio that exposes "no edit" collapse.

Written here (numpy, one vectorised pass per row of the table) instead of adding a dependency: attempts are at
most a few thousand characters, and the row trick below keeps that to milliseconds.
"""

from __future__ import annotations

import numpy as np


def levenshtein(a: str, b: str) -> int:
    """Insertions, deletions and substitutions (each costing 1) that turn `a` into `b`."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    columns = np.arange(len(b) + 1, dtype=np.int64)
    previous = columns.copy()
    for i, char in enumerate(a, start=1):
        current = np.empty_like(previous)
        current[0] = i
        # substitution (or match) from the diagonal, deletion from above ...
        current[1:] = np.minimum(previous[:-1] + (target != ord(char)), previous[1:] + 1)
        # ... then insertion from the left: current[j] = min_k<=j (current[k] + j - k), a running minimum.
        current = np.minimum.accumulate(current - columns) + columns
        previous = current
    return int(previous[-1])


def edit_ratio(a: str, b: str) -> float:
    """Edit distance over the total length of both (Kumar et al. 2024): 0 for identical attempts."""
    total = len(a) + len(b)
    return levenshtein(a, b) / total if total else 0.0
