"""compare on constructed runs whose answer is known: a clear winner, a tie, and refusals."""

import json

import numpy as np
import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.evaluation.metrics import summarize
from score_bench.harness.reports.compare import compare_runs, to_markdown


def make_run(directory, ids, correct, task="arith"):
    directory.mkdir(parents=True)
    rows = [{"id": i, "correct": [bool(x) for x in c]} for i, c in zip(ids, correct)]
    (directory / "grades.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (directory / "results.json").write_text(json.dumps({"task": {"name": task}, "metrics": summarize(correct)}))
    return directory


@pytest.fixture
def problems():
    rng = np.random.default_rng(0)
    ids = [f"p{i:03d}" for i in range(300)]
    t1 = rng.random(300) < 0.5
    return ids, t1, rng


def test_a_real_improvement_is_marked_and_a_copy_is_not(tmp_path, problems):
    ids, t1, rng = problems
    base = make_run(tmp_path / "base", ids, np.stack([t1, t1], 1))
    better = make_run(tmp_path / "better", ids, np.stack([t1, t1 | (rng.random(300) < 0.4)], 1))
    same = make_run(tmp_path / "same", ids, np.stack([t1, t1], 1))
    result = compare_runs([base, better, same])
    pairs = {(p["a"], p["b"]): p["tests"] for p in result["pairs"]}
    assert pairs[("base", "better")]["acc_final"]["test"] == "mcnemar"
    assert pairs[("base", "better")]["acc_final"]["better"] == "better"
    assert pairs[("base", "better")]["delta"]["better"] == "better"
    assert pairs[("better", "same")]["acc_final"]["better"] == "better"
    assert pairs[("base", "same")]["acc_final"]["better"] is None
    assert pairs[("base", "same")]["delta"]["p_value"] == 1.0
    assert "| base |" in to_markdown(result)


def test_a_small_difference_is_not_called_significant(tmp_path, problems):
    ids, t1, _ = problems
    t2 = t1.copy()
    flips = np.flatnonzero(~t1)[:3]
    t2[flips] = True  # three more solved out of 300
    a = make_run(tmp_path / "a", ids, np.stack([t1, t1], 1))
    b = make_run(tmp_path / "b", ids, np.stack([t1, t2], 1))
    tests = compare_runs([a, b])["pairs"][0]["tests"]
    assert tests["acc_final"]["difference"] == pytest.approx(0.01)
    assert tests["acc_final"]["better"] is None


def test_refuses_different_problems_or_tasks(tmp_path, problems):
    ids, t1, _ = problems
    a = make_run(tmp_path / "a", ids, np.stack([t1, t1], 1))
    b = make_run(tmp_path / "b", ids[:-1] + ["other"], np.stack([t1, t1], 1))
    c = make_run(tmp_path / "c", ids, np.stack([t1, t1], 1), task="math")
    with pytest.raises(InputError, match="different problems"):
        compare_runs([a, b])
    with pytest.raises(InputError, match="different tasks"):
        compare_runs([a, c])
    with pytest.raises(InputError, match="not a run directory"):
        compare_runs([tmp_path / "missing"])


def test_an_eval_run_and_a_grade_run_on_the_same_problems_compare(tmp_path, problems):
    ids, t1, _ = problems
    graded = make_run(tmp_path / "graded", ids, np.stack([t1, t1], 1))
    evaluated = tmp_path / "evaluated"
    evaluated.mkdir()
    rows = [{"id": i, "sample": 0, "attempts": [{"correct": bool(c)}, {"correct": True}]} for i, c in zip(ids, t1)]
    (evaluated / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = summarize(np.stack([t1, np.ones_like(t1)], 1))
    (evaluated / "results.json").write_text(json.dumps({"task": {"name": "arith", "split": "test"}, "metrics": metrics}))
    tests = compare_runs([graded, evaluated])["pairs"][0]["tests"]
    assert tests["acc_final"]["difference"] == pytest.approx(1 - t1.mean())
    assert tests["acc_final"]["better"] == "evaluated"


def make_graded_run(directory, ids, correct, flexible):
    """A `grade` run directory with flexible correctness and the metrics grading writes for it."""
    directory.mkdir(parents=True)
    rows = [{"id": i, "correct": [bool(x) for x in c], "correct_flexible": [bool(x) for x in f]}
            for i, c, f in zip(ids, correct, flexible)]
    (directory / "grades.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = summarize(correct, flexible=flexible, extracted=correct, extracted_flexible=flexible)
    (directory / "results.json").write_text(json.dumps({"task": {"name": "arith"}, "metrics": metrics}))
    return directory


def test_flexible_accuracy_is_compared_beside_the_strict_one(tmp_path, problems):
    ids, t1, rng = problems
    gain = t1 | (rng.random(300) < 0.4)
    # b differs from a only under flexible extraction: strict says no difference, flexible a clear one
    a = make_graded_run(tmp_path / "a", ids, np.stack([t1, t1], 1), np.stack([t1, t1], 1))
    b = make_graded_run(tmp_path / "b", ids, np.stack([t1, t1], 1), np.stack([t1, gain], 1))
    result = compare_runs([a, b])
    tests = result["pairs"][0]["tests"]
    assert tests["acc_final"]["better"] is None and tests["delta"]["p_value"] == 1.0
    assert tests["acc_final_flexible"]["better"] == "b" and tests["delta_flexible"]["better"] == "b"
    markdown = to_markdown(result)
    assert "flexible Acc@t2" in markdown and "extracted@t1" in markdown and "flexible Δ(t1,t2)" in markdown
    old = make_run(tmp_path / "old", ids, np.stack([t1, t1], 1))  # graded before flexible extraction
    tests = compare_runs([a, old])["pairs"][0]["tests"]
    assert set(tests) == {"acc_final", "delta"}
    assert "n/a" in to_markdown(compare_runs([old]))
