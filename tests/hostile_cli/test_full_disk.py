"""A disk that fills while training saves (issue #20 item 6): the state, a checkpoint or a log row that does not
fit is one line naming the path and "no space left", and what was saved before is intact (saves are written
whole, then renamed into place), so the run resumes once there is room.

The disk is real: a tmpfs of a few hundred KiB mounted for the test, which needs root (mount). Where it cannot
be mounted these tests skip; test_guards.py's monkeypatched torch.save stands in for the state's case there."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from score_bench.harness.contracts.errors import ScoreBenchError
from score_bench.harness.training import resume
from score_bench.harness.training.outputs import TrainingLog, save_checkpoint


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(bytes) -> an empty directory on a new tmpfs of that size; resize(directory, bytes) regrows it."""
    mounted = []

    def mount(size: int, options: str = ""):
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=True)


def _resize(where, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def _state(step: int, values: int) -> resume.SavedState:
    return resume.SavedState(step, 1, 0, {"w": torch.arange(values, dtype=torch.float32)}, {}, resume.rng_states(),
                             {})


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_state_that_does_not_fit_keeps_the_one_saved_before(small_disk):
    disk = small_disk(256 * 1024)
    config = {"model": "hub/model", "seed": 0}
    resume.save_state(disk, trainer="score", config=config, world_size=1, state=_state(1, 1_000))
    with pytest.raises(ScoreBenchError) as caught:  # 800 KB of weights on a 256 KiB disk
        resume.save_state(disk, trainer="score", config=config, world_size=1, state=_state(2, 200_000))
    message = str(caught.value)
    assert message == (f"no space left on device while saving the training state of step 2 to {disk / 'state'}; "
                       "the state saved before it is kept")
    assert _files(disk) == ["state", "state/meta.json", "state/state.pt"]
    kept = resume.load_state(disk, trainer="score", config=config, world_size=1)
    assert kept.step == 1 and torch.equal(kept.model["w"], torch.arange(1_000, dtype=torch.float32))


def test_a_checkpoint_that_does_not_fit_leaves_the_one_there_as_it_was(small_disk, tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)
    disk = small_disk(800 * 1024)  # one checkpoint of the tiny model (about 510 KB), not two
    save_checkpoint(disk / "ckpt", model, tokenizer, {"seed": 0}, {"steps": 1})
    before = {name: (disk / "ckpt" / name).read_bytes() for name in _files(disk / "ckpt")}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    with pytest.raises(ScoreBenchError, match=f"no space left on device while saving the checkpoint to "
                                              f"{disk / 'ckpt'}; the files in {disk / 'ckpt'} are as they were"):
        save_checkpoint(disk / "ckpt", model, tokenizer, {"seed": 0}, {"steps": 2})
    assert {name: (disk / "ckpt" / name).read_bytes() for name in _files(disk / "ckpt")} == before
    assert json.loads((disk / "ckpt" / "trainer_config.json").read_text())["steps"] == 1


def test_a_log_row_that_does_not_fit_is_not_written_in_part(small_disk):
    disk = small_disk(64 * 1024)
    log = TrainingLog(disk / "training_log.jsonl")
    log.append({"kind": "train", "step": 1})
    kept = (disk / "training_log.jsonl").read_bytes()
    with pytest.raises(ScoreBenchError, match="no space left on device while saving a training-log row to .*; the "
                                              "log keeps the rows before it"):
        log.append({"kind": "train", "step": 2, "note": "x" * 200_000})
    assert (disk / "training_log.jsonl").read_bytes() == kept


SAVE_EVERY_STEP = ("stage1_steps=2", "stage2_steps=0", "save_every=1")


def test_train_stops_in_one_line_when_the_disk_fills_and_resumes_once_there_is_room(cli, expect_refused, train_args,
                                                                                     small_disk, tiny_model):

    roomy = small_disk(64 * 1024 * 1024)
    # the same run where there is room: how big its state and log are
    assert cli(*train_args(str(tiny_model), roomy / "out", *SAVE_EVERY_STEP)).code == 0
    state_size = sum(p.stat().st_size for p in (roomy / "out" / "state").iterdir())
    log_size = (roomy / "out" / "training_log.jsonl").stat().st_size

    disk = small_disk(state_size * 3 // 2 + log_size + 64 * 1024)  # one state and the log fit, two states do not
    out = disk / "out"
    done = cli(*train_args(str(tiny_model), out, *SAVE_EVERY_STEP))
    expect_refused(done, f"no space left on device while saving the training state of step 2 to {out / 'state'}",
                   "the state saved before it is kept")
    assert json.loads((out / "state" / "meta.json").read_text())["step"] == 1
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no half-written state, no lock
    rows = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if row["kind"] == "train"] == [1, 2]

    _resize(disk, 64 * 1024 * 1024)
    resumed = cli(*train_args(str(tiny_model), out, *SAVE_EVERY_STEP))
    assert resumed.code == 0, resumed.stderr
    rows = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if row["kind"] == "train"] == [1, 2]  # step 2 again, once
    assert json.loads((out / "trainer_config.json").read_text())["steps"] == 2
