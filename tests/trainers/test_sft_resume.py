"""Resume and held-out evaluation of the SFT baselines (star, pair-sft): a run interrupted mid-fit and started
again ends with the same weights, log and budget as one that never stopped, without sampling again what it had
sampled; evaluation rows land on the schedule (step 0, every eval_every steps, the end) and do not change
training. The tiny model and the parity task (test_score_trainer.py) keep examples in every iteration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.training.config import build_config
from score_bench.harness.training.outputs import CONFIG_FILE
from score_bench.harness.training.resume import STATE_DIR
from score_bench.trainers._sft import SftRun
from score_bench.trainers.pair_sft import PRESETS as PAIR_PRESETS, PairSftConfig, PairSftTrainer
from score_bench.trainers.star import PRESETS as STAR_PRESETS, StarConfig, StarTrainer

from test_score_resume import assert_same_weights, log_rows
from test_score_trainer import ParityTask

EVAL_KEYS = {"kind", "step", "stage", "iteration", "task", "split", "problems", "accuracy_t1", "accuracy_t2",
             "accuracy_t1_flexible", "accuracy_t2_flexible", "delta", "delta_i2c", "delta_c2i", "ci95",
             "grading_errors"}


class Interrupted(Exception):
    """Stands for the kill: raised instead of taking an optimiser step."""


def interrupt_at(monkeypatch, step: int) -> None:
    """Make the run stop when it is about to take optimiser step `step` + 1."""
    update = SftRun._update

    def stopping(sft, examples):
        if sft.run.step == step:
            raise Interrupted
        return update(sft, examples)

    monkeypatch.setattr(SftRun, "_update", stopping)


def count_sampling(monkeypatch) -> list[int]:
    calls: list[int] = []
    sample = SftRun.sample
    monkeypatch.setattr(SftRun, "sample", lambda sft, *a, **k: calls.append(1) or sample(sft, *a, **k))
    return calls


def budget(out: Path) -> dict:
    return json.loads((out / CONFIG_FILE).read_text())["budget"]


def meta(out: Path) -> dict:
    return json.loads((out / STATE_DIR / "meta.json").read_text())


def star_config(tiny_model, out: Path, **changes) -> StarConfig:
    # d_plus keeps several examples per iteration; batches of 2 leave part of an epoch in a state saved mid-fit.
    values = {"model": str(tiny_model), "output": str(out), "variant": "d_plus", "updates": 6, "sft_batch_size": 2,
              "eval_every": 4, "eval_split": "train", "save_every": 4, **changes}
    return with_values(build_config(StarConfig, STAR_PRESETS, "smoke"), **values)


def test_star_interrupted_in_its_second_iteration_resumes_to_the_same_run(tiny_model, tmp_path, monkeypatch):
    config = star_config(tiny_model, tmp_path / "resumed")
    whole = StarTrainer().train(with_values(config, output=str(tmp_path / "whole")), task=ParityTask())
    rows = log_rows(whole)
    evals = [r for r in rows if r["kind"] == "eval"]
    # steps 1-3 are iteration 1, 4-6 iteration 2; 6 is off the schedule and evaluated as the final model
    assert [(r["step"], r["stage"], r["iteration"]) for r in evals] == [(0, 1, 1), (4, 2, 2), (6, 2, 2)]
    assert all(set(r) == EVAL_KEYS and r["problems"] == 4 and r["split"] == "train" for r in evals)
    train = [r for r in rows if r["kind"] == "train"]
    assert [(r["step"], r["iteration"]) for r in train] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    assert train[3]["examples"] >= 2 * config.sft_batch_size  # the state after step 4 holds part of an epoch

    out = Path(config.output)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 5)
        with pytest.raises(Interrupted):
            StarTrainer().train(config, task=ParityTask())
    assert (meta(out)["step"], meta(out)["stage"]) == (4, 2)  # saved mid-fit in iteration 2
    assert [r["step"] for r in log_rows(out)][-1] == 5  # a row past the state, which resuming must drop
    assert not (out / "model.safetensors").exists()
    with pytest.raises(InputError, match="different config"):
        StarTrainer().train(with_values(config, sft_batch_size=3), task=ParityTask())

    sampled = count_sampling(monkeypatch)
    StarTrainer().train(config, task=ParityTask())
    assert sampled == []  # iteration 2's examples came from the state
    assert_same_weights(whole, out)
    assert log_rows(out) == rows
    assert budget(out) == budget(whole)
    base = load_file(Path(tiny_model) / "model.safetensors")
    assert any(not torch.equal(base[k], v) for k, v in load_file(whole / "model.safetensors").items())


def pair_config(tiny_model, out: Path, **changes) -> PairSftConfig:
    values = {"model": str(tiny_model), "output": str(out), "sft_batch_size": 2, "eval_every": 3,
              "eval_split": "train", "save_every": 2, **changes}
    return with_values(build_config(PairSftConfig, PAIR_PRESETS, "smoke"), **values)


def test_pair_sft_interrupted_mid_fit_resumes_to_the_same_run(tiny_model, tmp_path, monkeypatch):
    whole = PairSftTrainer().train(pair_config(tiny_model, tmp_path / "whole"), task=ParityTask())
    rows = log_rows(whole)
    assert [(r["kind"], r["step"]) for r in rows] == [("eval", 0), ("train", 1), ("train", 2), ("train", 3),
                                                     ("eval", 3), ("train", 4), ("eval", 4)]
    assert all(r["stage"] == r["iteration"] == 1 for r in rows if r["kind"] == "eval")

    config = pair_config(tiny_model, tmp_path / "resumed")
    out = Path(config.output)
    with monkeypatch.context() as patch:
        interrupt_at(patch, 3)
        with pytest.raises(Interrupted):
            PairSftTrainer().train(config, task=ParityTask())
    assert meta(out)["step"] == 2 and [r["step"] for r in log_rows(out)][-1] == 3

    sampled = count_sampling(monkeypatch)
    PairSftTrainer().train(config, task=ParityTask())
    assert sampled == []
    assert_same_weights(whole, out)
    assert log_rows(out) == rows
    assert budget(out) == budget(whole)


def test_evaluation_and_saving_do_not_change_sft_training(tiny_model, tmp_path):
    quiet = PairSftTrainer().train(pair_config(tiny_model, tmp_path / "a", eval_every=0, save_every=0),
                                   task=ParityTask())
    busy = PairSftTrainer().train(pair_config(tiny_model, tmp_path / "b", eval_every=1, save_every=1),
                                  task=ParityTask())
    assert not (quiet / STATE_DIR).exists() and (busy / STATE_DIR).exists()
    assert_same_weights(quiet, busy)
    assert [r for r in log_rows(busy) if r["kind"] == "train"] == log_rows(quiet)
    assert [r["step"] for r in log_rows(busy) if r["kind"] == "eval"] == [0, 1, 2, 3, 4]
