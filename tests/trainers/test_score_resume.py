"""Resume and periodic evaluation of the SCoRe trainer: a run killed with SIGKILL and started again ends with the
same weights and log as one that never stopped; a different config is refused; held-out evaluation rows do not
disturb training and end with the final model. The tiny model and the parity task (test_score_trainer.py) give
every batch both rewards, so the weights really move."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.contracts.generation import GenerationParams
from score_bench.harness.generation.rollout import RolloutConfig, rollout
from score_bench.harness.training.outputs import LOG_FILE
from score_bench.harness.training.resume import STATE_DIR
from score_bench.trainers.score import ScoreRun, ScoreTrainer

from test_score_trainer import ParityTask, smoke

HERE = Path(__file__).resolve().parent
TIMING_KEYS = ("seconds", "tokens_per_s")

SCRIPT = textwrap.dedent(f"""
    import json, sys

    if __name__ == "__main__":
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(HERE)!r})
        from test_score_trainer import ParityTask
        from score_bench.harness.training.config import build_config
        from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreTrainer
        config = build_config(ScoreConfig, PRESETS, "smoke", json.loads(sys.argv[1]))
        ScoreTrainer().train(config, task=ParityTask())
        # The script owns the process group accelerate started: destroyed before the interpreter exits, or gloo's
        # worker threads may outlive it ("terminate called without an active exception", a nonzero exit).
        from accelerate import PartialState
        PartialState().destroy_process_group()
""")


def write_script(tmp_path: Path) -> Path:
    script = tmp_path / "train_parity.py"
    script.write_text(SCRIPT)
    return script


def child_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def log_rows(out: Path) -> list[dict]:
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


def assert_same_weights(a: Path, b: Path) -> None:
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


def test_killed_run_resumes_to_the_same_weights_and_log(tiny_model, tmp_path):
    script = write_script(tmp_path)
    settings = {"model": str(tiny_model), "split": "train", "eval_split": "train", "stage1_steps": 6,
                "stage2_steps": 6, "save_every": 2, "eval_every": 3, "beta1": 0.5, "beta2": 0.5}

    def command(out: Path) -> list[str]:
        return [sys.executable, str(script), json.dumps({**settings, "output": str(out)})]

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    subprocess.run(command(whole), check=True, env=child_env(), capture_output=True, timeout=300)

    child = subprocess.Popen(command(resumed), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = resumed / STATE_DIR / "meta.json"
    deadline = time.monotonic() + 240
    while child.poll() is None and time.monotonic() < deadline:  # kill mid-stage, after a state and more rows
        if meta.is_file() and json.loads(meta.read_text())["step"] >= 4 and len(log_rows(resumed)) >= 8:
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert child.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = json.loads(meta.read_text())["step"]
    assert 4 <= killed_at < 12 and not (resumed / "model.safetensors").exists()

    subprocess.run(command(resumed), check=True, env=child_env(), capture_output=True, timeout=300)
    assert_same_weights(whole, resumed)
    assert_same_weights(whole / "stage1", resumed / "stage1")
    rows = log_rows(resumed)
    assert rows == log_rows(whole)
    assert [(r["kind"], r["step"]) for r in rows if r["kind"] == "eval"] == [("eval", s) for s in (0, 3, 6, 9, 12)]
    base = load_file(Path(tiny_model) / "model.safetensors")
    assert any(not torch.equal(base[k], v) for k, v in load_file(whole / "model.safetensors").items())


def test_a_different_config_into_the_same_output_is_refused(tiny_model, tmp_path):
    config = smoke(tiny_model, tmp_path, save_every=1, stage1_steps=1, stage2_steps=0)
    ScoreTrainer().train(config, task=ParityTask())
    with pytest.raises(InputError, match=r"different config \(learning_rate: 0.001 -> 0.002\)") as caught:
        ScoreRun(with_values(config, learning_rate=0.002), task=ParityTask())
    assert "\n" not in str(caught.value)
    ScoreRun(config, task=ParityTask())  # the same config resumes


def test_a_moved_checkout_resumes_and_other_weights_are_refused(tiny_model, model_builder, tmp_path):
    """The saved state names the base model by its weights, not the machine's path: the same run, its checkout
    (model and output) moved to another directory, resumes; another model under the moved name is refused."""
    import shutil

    before = tmp_path / "checkout"
    shutil.copytree(tiny_model, before / "models" / "base")
    config = with_values(smoke(before / "models" / "base", before, save_every=1, stage1_steps=1, stage2_steps=0),
                     output=str(before / "run"))
    ScoreTrainer().train(config, task=ParityTask())
    meta = (before / "run" / STATE_DIR / "meta.json").read_text()
    assert str(tmp_path) not in meta and "weights sha256 " in meta
    after = tmp_path / "moved"
    before.rename(after)
    moved = with_values(config, model=str(after / "models" / "base"), output=str(after / "run"))
    assert ScoreRun(moved, task=ParityTask()).run.step == 1  # resumed where the state was saved
    shutil.rmtree(after / "models" / "base")
    model_builder(after / "models" / "base", seed=1)
    with pytest.raises(InputError, match=r"different config \(model: 'weights sha256 [0-9a-f]{64}' -> "):
        ScoreRun(moved, task=ParityTask())


def test_resume_truncates_the_log_to_the_saved_state(tiny_model, tmp_path):
    config = smoke(tiny_model, tmp_path, save_every=2, stage1_steps=3, stage2_steps=0)
    ScoreRun(config, task=ParityTask()).stage(1)  # steps 1-3, state saved after step 2
    assert len(log_rows(Path(config.output))) == 3
    again = ScoreRun(config, task=ParityTask()).run
    assert again.step == 2 and [r["step"] for r in log_rows(Path(config.output))] == [1, 2]
    assert again.order == run_order_after(tiny_model, tmp_path, steps=2)


def run_order_after(tiny_model, tmp_path, steps: int) -> list:
    """The problem stream of a fresh run after `steps` batches: what a resumed run must continue from."""
    run = ScoreRun(smoke(tiny_model, tmp_path / "fresh"), task=ParityTask()).run
    for _ in range(steps):
        run.next_problems()
    return run.order


def test_periodic_evaluation_logs_greedy_metrics_without_changing_training(tiny_model, tmp_path, tiny_backend):
    quiet = ScoreTrainer().train(smoke(tiny_model, tmp_path / "a", beta1=0.5, save_every=0), task=ParityTask())
    config = smoke(tiny_model, tmp_path / "b", beta1=0.5, save_every=0, eval_every=2, eval_split="train",
                   eval_problems=5)
    evaluated = ScoreTrainer().train(config, task=ParityTask())
    assert_same_weights(quiet, evaluated)
    rows = log_rows(evaluated)
    assert [r for r in rows if r["kind"] == "train"] == log_rows(quiet)
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [(r["step"], r["stage"]) for r in evals] == [(0, 1), (2, 1), (4, 2)]
    # step 0 is the base model: the same numbers as a greedy two-attempt rollout of it, done here
    params = GenerationParams(max_new_tokens=config.generation.max_new_tokens, temperature=0.0)
    traces = rollout(ParityTask(), ParityTask().problems("train")[:5], tiny_backend,
                     RolloutConfig(turns=2, params=params))
    acc = [sum(t.attempts[i].correct for t in traces) / 5 for i in (0, 1)]
    first = evals[0]
    assert first["problems"] == 5 and (first["accuracy_t1"], first["accuracy_t2"]) == pytest.approx(acc)
    assert first["delta"] == pytest.approx(acc[1] - acc[0])
    assert 0 < acc[0] < 1 or 0 < acc[1] < 1  # the comparison above is not between two trivial zeros


def test_the_final_model_is_evaluated_when_its_step_is_off_the_schedule(tiny_model, tmp_path):
    out = ScoreTrainer().train(smoke(tiny_model, tmp_path, save_every=0, eval_every=3, eval_split="train"),
                               task=ParityTask())
    rows = log_rows(out)
    assert [(r["kind"], r["step"], r["stage"]) for r in rows] == [
        ("eval", 0, 1), ("train", 1, 1), ("train", 2, 1), ("train", 3, 2), ("eval", 3, 2), ("train", 4, 2),
        ("eval", 4, 2)]
