"""The `evaluate` module loaded from its local path gives the numbers of a committed run's results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from score_bench.evaluate_metrics import SELF_CORRECTION

PAPER_METRICS = ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "p_i2c_given_i", "p_c2i_given_c")
RUN = Path(__file__).resolve().parents[1] / "results" / "real" / "smollm2" / "score-toy-en-64tokens"


@pytest.mark.skipif(not (RUN / "results.json").is_file(), reason=f"{RUN} is not committed")
def test_evaluate_load_reproduces_a_committed_results_json():
    evaluate = pytest.importorskip("evaluate", reason="the evaluate package is in the test extra")
    results = json.loads((RUN / "results.json").read_text())
    rows = [json.loads(line) for line in (RUN / "samples.jsonl").read_text().splitlines()]
    assert results["counts"]["samples"] == 1 and len(rows) == results["counts"]["problems"]
    metric = evaluate.load(SELF_CORRECTION)
    got = metric.compute(first_correct=[r["attempts"][0]["correct"] for r in rows],
                         second_correct=[r["attempts"][1]["correct"] for r in rows], seed=results["seed"])
    assert got["delta_i2c"] > 0 or got["delta_c2i"] > 0  # a run where attempts change, so Δ's parts are tested
    for name in PAPER_METRICS:
        assert got[name] == results["metrics"][name]["value"], name
        assert got[f"{name}_ci95"] == results["metrics"][name]["ci95"], name


def test_evaluate_module_on_a_small_example():
    evaluate = pytest.importorskip("evaluate", reason="the evaluate package is in the test extra")
    got = evaluate.load(SELF_CORRECTION).compute(first_correct=[True, False, False, True],
                                                  second_correct=[True, True, False, False])
    assert (got["acc_t1"], got["acc_t2"], got["delta"], got["delta_i2c"], got["delta_c2i"]) == (0.5, 0.5, 0, .25, .25)
    assert got["p_i2c_given_i"] == 0.5 and got["p_c2i_given_c"] == 0.5
