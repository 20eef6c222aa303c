"""The demo end to end in its --quick form (the CI variant) on the embedded base model: three trainers run as the
CLI commands they are, five evaluations, summary.json, comparison.md and plots; its numbers are the committed
ones in results/demo/quick (the tripwire: a change that moves them must rerun the demo); then a rerun that keeps
the finished trainings, and the ways a demo refuses to go on."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from score_bench.demo import QUICK_BASE_STEPS, QUICK_EVAL_PROBLEMS, RUN_NAMES, DemoConfig, demo_jobs, run_demo
from score_bench.harness.contracts.errors import InputError, ScoreBenchError

PNG = b"\x89PNG\r\n\x1a\n"
COMMITTED = Path(__file__).resolve().parents[1] / "results" / "demo" / "quick" / "summary.json"
RERUN = "rerun `make demo` and commit results/demo"


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory, embedded_model) -> tuple[DemoConfig, dict]:
    """`score-bench demo --quick` on the embedded base model (`make test` builds it as `make demo` does), with the
    seed of the committed quick run."""
    root = tmp_path_factory.mktemp("demo")
    seed = json.loads(COMMITTED.read_text(encoding="utf-8"))["seed"]
    config = DemoConfig(base_model=embedded_model, runs_dir=root / "runs", results_dir=root / "results",
                        quick=True, seed=seed)
    return config, run_demo(config)


def test_quick_demo_numbers_are_the_committed_ones(quick_demo):
    """Every metric of every run of the quick demo equals results/demo/quick/summary.json, which `make demo` writes
    beside the full demo. Kernels are pinned to AVX2 in every demo command (harness.runtime.cpu_kernels), so the numbers
    do not depend on the CPU: a difference is a change to the code (trainers, rollout, grading, the embedded model)
    that moves the committed demo too."""
    _, summary = quick_demo
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    base_weights = {run["name"]: run.get("weights_sha256") for run in committed["runs"]}.get("base")
    assert base_weights is None or base_weights == _weights(summary, "base"), (
        f"the embedded base model differs from the one results/demo was made with; {RERUN}")
    moved = {run["name"]: _moved(old["metrics"], run["metrics"])
             for old, run in zip(committed["runs"], summary["runs"]) if old["metrics"] != run["metrics"]}
    assert [run["name"] for run in summary["runs"]] == [run["name"] for run in committed["runs"]]
    assert not moved, f"the quick demo's numbers moved ({moved}); {RERUN}"


def test_quick_demo_training_logs_are_the_committed_ones(quick_demo):
    """The training logs too: a few steps at the laptop preset's learning rate leave the greedy answers of the
    evaluations much as they were, but every sampled token of every step shows in the logged rewards and token
    counts, and the optimiser's work in the losses and gradient norms. Counts and rewards (fractions of a batch)
    must be equal; a continuous statistic within 1e-5 of itself: the pinned kernels make them bit-equal on any
    CPU with AVX2, and the tolerance only spares a last-bit difference in a library's exp or log, far below
    what a change to a loss or a sample moves."""
    config, _ = quick_demo
    committed_logs = COMMITTED.parent / "training_logs"
    for trainer in ("score", "pair-sft", "star"):
        old = _rows(committed_logs / f"{trainer}.jsonl")
        new = _rows(config.results_dir / "training_logs" / f"{trainer}.jsonl")
        assert len(old) == len(new), f"{trainer}: {len(new)} log rows, {len(old)} committed; {RERUN}"
        for row_old, row_new in zip(old, new):
            moved = {key: (row_old.get(key), row_new.get(key)) for key in set(row_old) | set(row_new)
                     if not _same(row_old.get(key), row_new.get(key))}
            assert not moved, f"{trainer} step {row_new.get('step')} ({row_new.get('kind')}) moved: {moved}; {RERUN}"


def _rows(path: Path) -> list[dict]:
    """The log's rows without their timings."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [{key: value for key, value in row.items() if key not in ("seconds", "tokens_per_s")} for row in rows]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _weights(summary: dict, name: str) -> str | None:
    run = next(run for run in summary["runs"] if run["name"] == name)
    return run.get("weights_sha256")


def _moved(old: dict, new: dict) -> dict:
    """{metric: (committed value, value now)} for the metrics whose value or interval differs."""
    return {key: (old.get(key, {}).get("value"), new.get(key, {}).get("value"))
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)}


def test_quick_demo_writes_every_run_with_metrics_and_paired_tests(quick_demo):
    config, summary = quick_demo
    assert [run["name"] for run in summary["runs"]] == list(RUN_NAMES)
    for run in summary["runs"]:
        results = json.loads((Path(run["path"]) / "results.json").read_text())
        assert run["metrics"] == results["metrics"]
        assert results["counts"]["problems"] == 50
        assert set(run["metrics"]) >= {"acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i"}
    assert len(summary["pairs"]) == len(RUN_NAMES) * (len(RUN_NAMES) - 1) // 2
    assert {"acc_final", "delta"} <= set(summary["pairs"][0]["tests"])
    on_disk = json.loads((config.results_dir / "summary.json").read_text())
    assert on_disk["runs"] == summary["runs"] and on_disk["seed"] == config.seed and on_disk["git"]
    assert f"--set seed={config.seed}" in on_disk["commands"]["train score"]
    assert on_disk["seconds"]["base model"] == 0.0  # the embedded model was there: not built again
    assert "| score-stage1 |" in (config.results_dir / "comparison.md").read_text()


def test_quick_demo_trains_with_its_seed_and_keeps_curves_and_plots(quick_demo):
    config, summary = quick_demo
    written = json.loads((config.runs_dir / "score" / "trainer_config.json").read_text())["config"]
    assert written["seed"] == config.seed and written["stage2_attempt1_kl"] == 1.0  # the laptop preset underneath
    assert (config.runs_dir / "score" / "stage1" / "model.safetensors").is_file()
    for trainer in ("score", "pair-sft", "star"):
        rows = (config.results_dir / "training_logs" / f"{trainer}.jsonl").read_text().splitlines()
        assert any(json.loads(row).get("kind") == "eval" for row in rows), trainer
    for name in ("training_curves", "transitions"):
        assert Path(summary["plots"][name]).read_bytes()[:8] == PNG


def test_rerun_keeps_finished_trainings(quick_demo):
    config, first = quick_demo
    again = run_demo(config)
    assert all(again["seconds"][f"train {t}"] == 0.0 for t in ("score", "pair-sft", "star"))
    assert [run["metrics"] for run in again["runs"]] == [run["metrics"] for run in first["runs"]]


def test_a_finished_run_with_another_config_is_refused(quick_demo):
    config, _ = quick_demo
    other = DemoConfig(base_model=config.base_model, runs_dir=config.runs_dir, results_dir=config.results_dir,
                       quick=True, seed=config.seed + 1)
    with pytest.raises(InputError, match="different config"):
        run_demo(other)


def test_a_missing_base_model_is_built_first_by_the_documented_command(tmp_path):
    """The base model is a job like the others (pinned kernels, a log of its own), and every other job waits for it."""
    config = DemoConfig(base_model=tmp_path / "base", runs_dir=tmp_path / "runs", quick=True)
    jobs = {job.name: job for job in demo_jobs(config)}
    base = jobs["base model"]
    assert base.command == [sys.executable, "-m", "score_bench", "base-model", "--output", str(tmp_path / "base"),
                            "--seed", "0", "--steps", str(QUICK_BASE_STEPS), "--eval-problems",
                            str(QUICK_EVAL_PROBLEMS)]
    assert not base.finished()
    assert all(job.needs for name, job in jobs.items() if name != "base model")


def test_incomplete_base_model_is_refused(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    with pytest.raises(InputError, match="incomplete base model"):
        run_demo(DemoConfig(base_model=tmp_path / "base", runs_dir=tmp_path / "runs", quick=True))
    assert not (tmp_path / "runs").exists()


def test_a_failing_step_names_itself_and_its_log(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "card.json").write_text("{}")  # looks built, holds no model: every command on it fails
    with pytest.raises(ScoreBenchError, match=r"demo step '(train|eval) [a-z-]+' failed .*full log: "):
        run_demo(DemoConfig(base_model=base, runs_dir=tmp_path / "runs", results_dir=tmp_path / "results",
                            quick=True))
    assert not (tmp_path / "results" / "summary.json").exists()
