"""What a training run writes: the training log, and the checkpoint with trainer_config.json (the resolved config
and provenance)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import plain_values
from score_bench.harness.runtime.input_files import read_text
from score_bench.harness.runtime.provenance import provenance, write_json_atomic, write_text_atomic
from score_bench.harness.runtime.saving import append_whole, saving

__all__ = ["CONFIG_FILE", "LOG_FILE", "TrainingLog", "save_checkpoint"]

CONFIG_FILE = "trainer_config.json"
LOG_FILE = "training_log.jsonl"

class TrainingLog:
    """The JSONL training log, one row per optimiser step (and per held-out evaluation), appended and flushed as
    the run goes so a curve can be read while it trains (and after a crash).

    A new log starts empty; a resumed one keeps its first `keep_rows` rows (those written before the saved
    state) and drops the rest, so no step appears twice. `active=False` (a non-main process of a multi-process
    run) counts rows without writing, so every process agrees on `rows`."""

    def __init__(self, path: Path, keep_rows: int | None = None, active: bool = True):
        self.path = Path(path)
        self.active = active
        self.rows = keep_rows or 0
        if not active:
            return
        kept: list[str] = []
        if keep_rows:
            lines = read_text(self.path, "training log").splitlines(keepends=True) if self.path.exists() else []
            if len(lines) < keep_rows:
                raise InputError(f"training log {self.path} has {len(lines)} rows but the saved state was taken "
                                 f"after {keep_rows}; it was edited or truncated, so the run cannot resume")
            kept = lines[:keep_rows]
        with saving(self.path, "the training log", "the log is as it was"):
            write_text_atomic(self.path, "".join(kept))

    def append(self, row: dict) -> None:
        """One row, whole or not at all: a write that fails (a full disk) leaves the log as it was."""
        self.rows += 1
        if not self.active:
            return
        with saving(self.path, "a training-log row", "the log keeps the rows before it"):
            append_whole(self.path, (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8"))


def save_checkpoint(directory: Path, model, tokenizer, config: Any, extra: Mapping[str, Any] | None = None,
                    state_dict: Mapping[str, torch.Tensor] | None = None,
                    started_from: Mapping[str, Any] | None = None) -> Path:
    """A Hugging Face checkpoint (weights, config, generation config, tokenizer with its chat template) plus
    trainer_config.json: the resolved trainer config, provenance and `extra` (e.g. steps run). `state_dict`
    replaces the model's own (accelerate's get_state_dict gathers one from FSDP/DeepSpeed shards).
    `started_from` is the provenance taken when the run started: the code that trained is what was checked out
    then, not at the save (a commit during a long run would otherwise be recorded). The files are written whole
    to a hidden staging directory, then renamed into place, so a save that fails (a full disk) leaves the files
    that were there as they were."""
    directory = Path(directory)
    resolved = plain_values(config) if dataclasses.is_dataclass(config) else dict(config)
    with saving(directory, "the checkpoint", f"the files in {directory} are as they were"):
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory, prefix=".checkpoint.tmp-"))
        try:
            model.save_pretrained(staging, state_dict=dict(state_dict) if state_dict is not None else None)
            tokenizer.save_pretrained(staging)
            write_json_atomic(staging / CONFIG_FILE, {"config": resolved, **dict(extra or {}),
                                                     **(started_from or provenance())})
            # Written whole, then renamed into place: the run's record first, so a kill between renames leaves
            # a directory that a rerun of the same config recognises as its own (and rewrites).
            for name in sorted(os.listdir(staging), key=lambda name: name != CONFIG_FILE):
                if (directory / name).is_dir():
                    shutil.rmtree(directory / name)
                os.replace(staging / name, directory / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return directory
