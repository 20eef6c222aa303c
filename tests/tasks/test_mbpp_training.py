"""Training on code: every registered trainer runs on mbpp's train split, with held-out evaluation on another
task (eval_task=humaneval, the paper's transfer) in its log. The tiny random model writes no working code;
these check the plumbing (problems drawn from mbpp train, programs graded in the sandbox, eval rows from
HumanEval), not skill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from score_bench.harness.contracts import registry
from score_bench.harness.grading import sandbox
from score_bench.harness.runtime import settings
from score_bench.harness.training.config import build_config
from score_bench.harness.training.outputs import LOG_FILE

DATA = settings.data_dir() or Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "mbpp" / "mbpp.jsonl").exists(), reason=f"no MBPP data under {DATA}")

needs_sandbox = pytest.mark.skipif(sandbox.probe() is not None, reason=f"no working sandbox: {sandbox.probe()}")


@needs_data
@needs_sandbox
@pytest.mark.parametrize("trainer", registry.available(registry.TRAINERS))
def test_any_trainer_trains_on_mbpp_with_humaneval_curves(tiny_model, tmp_path, trainer):
    trainer_cls = registry.load(registry.TRAINERS, trainer)
    config = build_config(trainer_cls.config_class, trainer_cls.presets, "smoke", {
        "task": "mbpp", "model": str(tiny_model), "output": str(tmp_path / "run"),
        "task_options": json.dumps({"data_dir": str(DATA), "timeout": 5}),
        "eval_task": "humaneval", "eval_task_options": json.dumps({"timeout": 5}),
        "eval_every": "2", "eval_problems": "2", "save_every": "0"})
    trainer_cls().train(config)
    rows = [json.loads(line) for line in (tmp_path / "run" / LOG_FILE).read_text().splitlines()]
    evals = [row for row in rows if row["kind"] == "eval"]
    assert evals and all(row["task"] == "humaneval" and row["problems"] == 2 for row in evals)
    assert evals[0]["step"] == 0
    assert all(row["grading_errors"] == 0 for row in evals)
    if trainer == "score":  # the SFT baselines keep no pair from a random model's programs, so take no step
        assert evals[-1]["step"] == 4 and sum(row["kind"] == "train" for row in rows) == 4
