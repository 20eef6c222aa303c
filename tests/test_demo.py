"""The demo end to end in its --quick form (the CI variant): base model built, three trainers run as the CLI
commands they are, five evaluations, summary.json, comparison.md and plots; then a rerun that keeps the
finished trainings, and the ways a demo refuses to go on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from score_bench.demo import RUN_NAMES, DemoConfig, run_demo
from score_bench.harness.errors import InputError, ScoreBenchError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory) -> tuple[DemoConfig, dict]:
    root = tmp_path_factory.mktemp("demo")
    config = DemoConfig(base_model=root / "base", runs_dir=root / "runs", results_dir=root / "results",
                        quick=True, seed=3)
    return config, run_demo(config)


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
    assert on_disk["runs"] == summary["runs"] and on_disk["seed"] == 3 and on_disk["git"]
    assert "--set seed=3" in on_disk["commands"]["train score"]
    assert "| score-stage1 |" in (config.results_dir / "comparison.md").read_text()


def test_quick_demo_trains_with_its_seed_and_keeps_curves_and_plots(quick_demo):
    config, summary = quick_demo
    written = json.loads((config.runs_dir / "score" / "trainer_config.json").read_text())["config"]
    assert written["seed"] == 3 and written["stage2_attempt1_kl"] == 1.0  # the laptop preset underneath
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
                       quick=True, seed=4)
    with pytest.raises(InputError, match="different config"):
        run_demo(other)


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
