"""The paper's self-correction metrics (Kumar et al. 2024, section 3) with bootstrap intervals.

Input is a boolean array `correct[problem, sample, attempt]` (a 2-D [problem, attempt] array means one sample).
Rates average over samples within a problem first, then over problems, and the bootstrap resamples problems,
so every interval is over problems and Δ's interval is paired (both attempts move together).
The resampling is written out here rather than through scipy.stats.bootstrap because all metrics share one set
of resampled indices, which keeps their intervals mutually consistent and costs one pass.
"""

from __future__ import annotations

from math import comb
from typing import Sequence

import numpy as np
from scipy.stats import binomtest

from score_bench.harness.contracts.errors import InputError

BOOTSTRAP_RESAMPLES = 2000
"""Enough for stable 95% percentile bounds at the third decimal on a few hundred problems."""


def _ragged(correct) -> list[np.ndarray] | None:
    """Per-problem [sample, attempt] arrays when problems have different numbers of samples, else None."""
    if isinstance(correct, np.ndarray) or not len(correct):
        return None
    try:
        lengths = {len(cell) for cell in correct}
    except TypeError:
        return None
    if len(lengths) == 1:
        return None
    problems = [np.asarray(cell, dtype=bool) for cell in correct]
    if any(cell.ndim != 2 or cell.shape[0] == 0 for cell in problems) or len({c.shape[1] for c in problems}) > 1:
        raise InputError("correctness with unequal samples per problem must be [problem][sample][attempt] "
                         "with at least one sample per problem and the same number of attempts")
    return problems


def as_correctness(correct) -> np.ndarray:
    """A [problem, sample, attempt] bool array from nested lists or a 2-D/3-D array."""
    array = np.asarray(correct, dtype=bool)
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[2] == 0:
        raise InputError(f"correctness must be [problem, attempt] or [problem, sample, attempt], got {array.shape}")
    return array


FLEXIBLE = "_flexible"
"""Suffix of the metrics computed from flexible extraction (acc_t1_flexible, delta_flexible, ...)."""


def _point_metrics(per_problem: dict[str, np.ndarray], weights: np.ndarray) -> dict[str, float]:
    """Means over problems (rows of each [resample, problem] array), optionally reweighted by `weights`."""
    totals = {name: (values * weights).sum(axis=-1) for name, values in per_problem.items()}
    n = weights.sum(axis=-1)
    out = {name: total / n for name, total in totals.items() if not name.startswith("_")}
    for suffix in ("", FLEXIBLE):
        if f"delta_i2c{suffix}" in totals:
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"p_i2c_given_i{suffix}"] = totals[f"delta_i2c{suffix}"] / totals[f"_wrong_t1{suffix}"]
                out[f"p_c2i_given_c{suffix}"] = totals[f"delta_c2i{suffix}"] / totals[f"_right_t1{suffix}"]
    return out


def _per_problem(correct: np.ndarray, suffix: str = "") -> dict[str, np.ndarray]:
    """Per-problem rates (averaged over samples) whose means over problems are the reported metrics."""
    rates = {f"acc_t{t + 1}{suffix}": correct[:, :, t].mean(axis=1) for t in range(correct.shape[2])}
    if correct.shape[2] >= 2:
        first, second = correct[:, :, 0], correct[:, :, 1]
        rates[f"delta{suffix}"] = rates[f"acc_t2{suffix}"] - rates[f"acc_t1{suffix}"]
        rates[f"delta_i2c{suffix}"] = (~first & second).mean(axis=1)
        rates[f"delta_c2i{suffix}"] = (first & ~second).mean(axis=1)
        rates[f"_wrong_t1{suffix}"] = (~first).mean(axis=1)
        rates[f"_right_t1{suffix}"] = first.mean(axis=1)
    return rates


def _extraction_rates(extracted: np.ndarray, suffix: str) -> dict[str, np.ndarray]:
    """Per-problem share of attempts from which an answer was extracted, per attempt."""
    return {f"extraction_rate_t{t + 1}{suffix}": extracted[:, :, t].mean(axis=1) for t in range(extracted.shape[2])}


def summarize(correct, *, flexible=None, extracted=None, extracted_flexible=None, seed: int = 0,
              resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, dict]:
    """{"acc_t1": {"value": v, "ci95": [lo, hi]}, "acc_t2", "delta", "delta_i2c", "delta_c2i",
    "p_i2c_given_i", "p_c2i_given_c", "acc_tN"...}; the two-attempt entries only with >= 2 attempts, and
    "delta" also carries a two-sided bootstrap "p_value" against no change.
    `flexible` (correctness under flexible extraction, same shape) adds the same metrics suffixed "_flexible";
    `extracted` / `extracted_flexible` (whether an answer was extracted) add "extraction_rate_tN" and
    "extraction_rate_tN_flexible". All intervals come from one set of resampled problems.
    Conditional rates are None when nothing conditions them (e.g. no problem wrong at attempt 1).
    Problems may have different numbers of samples (nested lists): each problem's rates average its own
    samples, so every problem weighs the same whatever its count."""
    shape = _cell_shapes(correct)
    per_problem = _rates(correct, _per_problem)
    if flexible is not None:
        per_problem.update(_rates(_like(flexible, shape), lambda a: _per_problem(a, FLEXIBLE)))
    if extracted is not None:
        per_problem.update(_rates(_like(extracted, shape), lambda a: _extraction_rates(a, "")))
    if extracted_flexible is not None:
        per_problem.update(_rates(_like(extracted_flexible, shape), lambda a: _extraction_rates(a, FLEXIBLE)))
    n_problems = len(shape)
    point = _point_metrics(per_problem, np.ones(n_problems))
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n_problems, n_problems), minlength=n_problems)
                       for _ in range(resamples)])
    boot = _point_metrics({k: v[None, :] for k, v in per_problem.items()}, counts)
    metrics = {}
    for name, value in point.items():
        samples = boot[name][~np.isnan(boot[name])]
        finite = not np.isnan(value)
        metrics[name] = {
            "value": float(value) if finite else None,
            "ci95": [float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))]
            if finite and samples.size else None,
        }
        if name in ("delta", "delta" + FLEXIBLE):
            metrics[name]["p_value"] = _bootstrap_p(samples, resamples)
    return metrics


def _rates(values, rates_of) -> dict[str, np.ndarray]:
    """rates_of([problem, sample, attempt] array) per problem, for equal or ragged sample counts alike."""
    ragged = _ragged(values)
    if ragged is None:
        return rates_of(as_correctness(values))
    parts = [rates_of(cell[None]) for cell in ragged]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _cell_shapes(values) -> list[tuple[int, ...]]:
    """The [sample, attempt] shape of each problem's cell."""
    ragged = _ragged(values)
    if ragged is not None:
        return [cell.shape for cell in ragged]
    array = as_correctness(values)
    return [array.shape[1:]] * len(array)


def _like(values, shape: list[tuple[int, ...]]):
    if _cell_shapes(values) != shape:
        raise InputError("per-attempt arrays must have correctness's shape (samples and attempts per problem)")
    return values


def _bootstrap_p(samples: np.ndarray, resamples: int) -> float:
    """Two-sided bootstrap p-value of a difference against zero: twice the smaller tail mass at zero, never
    below 1/resamples (the smallest value the bootstrap can resolve)."""
    if not samples.size:
        return 1.0
    return float(min(1.0, max(2 * min((samples <= 0).mean(), (samples >= 0).mean()), 1 / resamples)))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): the chance that k of n samples, c of them correct, include one."""
    if not 0 < k <= n or not 0 <= c <= n:
        raise InputError(f"pass@k needs 0 < k <= n and 0 <= c <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def pass_at_k_by_turn(correct, ks: Sequence[int] = (1,)) -> dict[str, float]:
    """{"pass@k_tT": mean over problems} for every k not above the fewest samples of a problem; each problem's
    estimate uses its own n (problems may have different numbers of samples)."""
    problems = _ragged(correct) or list(as_correctness(correct))
    fewest = min(cell.shape[0] for cell in problems)
    out = {}
    for turn in range(problems[0].shape[1]):
        for k in ks:
            if k <= fewest:
                out[f"pass@{k}_t{turn + 1}"] = float(np.mean(
                    [pass_at_k(cell.shape[0], int(cell[:, turn].sum()), k) for cell in problems]))
    return out


def mcnemar(first: Sequence[bool], second: Sequence[bool]) -> dict:
    """Exact McNemar test of two paired correctness vectors: p-value of the discordant split under H0.
    "only_first"/"only_second" count problems one run solved and the other did not."""
    a, b = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    if a.shape != b.shape:
        raise InputError(f"paired test needs the same problems, got {a.shape[0]} and {b.shape[0]}")
    only_first, only_second = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_first + only_second
    p = 1.0 if discordant == 0 else float(binomtest(only_first, discordant, 0.5).pvalue)
    return {"only_first": only_first, "only_second": only_second, "p_value": p}


def paired_bootstrap(first, second, metric: str, *, seed: int = 0,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    """Difference second − first in `metric` (e.g. "delta") with a 95% interval from resampling the shared
    problems, and a two-sided bootstrap p-value (twice the smaller tail mass around zero, never below
    1/resamples, the smallest value the bootstrap can resolve)."""
    a, b = as_correctness(first), as_correctness(second)
    if a.shape[0] != b.shape[0]:
        raise InputError(f"paired test needs the same problems, got {a.shape[0]} and {b.shape[0]}")
    pa, pb = _per_problem(a), _per_problem(b)
    if metric not in pa or metric not in pb:
        raise InputError(f"unknown metric '{metric}' for a paired bootstrap; have {sorted(k for k in pa if k[0] != '_')}")
    n = a.shape[0]
    ones = np.ones(n)
    diff = _point_metrics(pb, ones)[metric] - _point_metrics(pa, ones)[metric]
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(resamples)])
    boot = (_point_metrics({k: v[None, :] for k, v in pb.items()}, counts)[metric]
            - _point_metrics({k: v[None, :] for k, v in pa.items()}, counts)[metric])
    boot = boot[~np.isnan(boot)]
    return {"metric": metric, "difference": float(diff),
            "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "p_value": _bootstrap_p(boot, resamples)}
