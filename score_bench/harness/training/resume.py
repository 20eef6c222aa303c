"""Resumable training state: what a trainer needs to continue a killed run exactly where its last save left it.

OUTPUT/state/ holds state.pt (weights, optimiser state, the python/numpy/torch RNG states and the trainer's own
counters, loaded with torch.load(weights_only=True), so no pickled code runs) and meta.json (the resolved config,
trainer, process count, step, stage and the number of training-log rows at the save, readable by people).

A save is written to a temporary directory and renamed into place; the previous state is moved aside first and
deleted last, so a kill at any moment leaves either the new state or the previous one (found as .state.old).
Resuming with a config that differs from the saved one is refused: the result would be neither run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import flat_fields, plain_values
from score_bench.harness.runtime.guards import resolved_model
from score_bench.harness.runtime.input_files import read_json
from score_bench.harness.runtime.saving import saving

__all__ = ["STATE_DIR", "SavedState", "rng_states", "set_rng_states", "preserved_rng", "save_state", "load_state",
           "config_changes", "check_output_identity"]

STATE_DIR = "state"
_OLD_DIR = ".state.old"
_META = {"trainer": str, "config": dict, "world_size": int}
"""meta.json's entries that load_state compares, with their types."""
_PAYLOAD = ("step", "stage", "log_rows", "model", "optimizer", "rng", "extra")
"""state.pt's entries, in SavedState's order."""
MODEL_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
               "adapter_config.json")
"""Files that make a directory a model checkpoint (Hugging Face's names)."""
_IGNORED_FIELDS = frozenset({"output"})
"""Config fields that may differ on resume: the output directory is the same one however it is spelled."""


@dataclass
class SavedState:
    step: int
    stage: int
    log_rows: int
    """Rows of the training log written when the state was saved; later rows are dropped on resume."""
    model: Mapping[str, torch.Tensor]
    optimizer: Mapping[str, Any]
    rng: Mapping[str, Any]
    extra: Mapping[str, Any]
    """The trainer's own counters (e.g. the problem stream's RNG state and the problems left in the epoch)."""


def rng_states() -> dict[str, Any]:
    """The global RNG states of python, numpy and torch (CPU and every CUDA device)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(states: Mapping[str, Any]) -> None:
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a side computation (a held-out evaluation) without moving the training RNG streams."""
    saved = rng_states()
    try:
        yield
    finally:
        set_rng_states(saved)


def _plain(config: Any) -> dict[str, Any]:
    """The config as JSON values (what meta.json stores; nested settings flat), minus fields allowed to differ. A
    local model is stored and compared by its weights, never by the machine's path to it: a checkout moved
    elsewhere resumes, and other weights under the same name are refused."""
    values = plain_values(config) if dataclasses.is_dataclass(config) else dict(config)
    model = values.get("model")
    if isinstance(model, str) and Path(model).expanduser().is_dir():  # a directory without weights: its path
        resolved = resolved_model(model)
        values["model"] = _weights_identity(resolved, _file_stamps(resolved)) or resolved
    return {k: v for k, v in _json(values).items() if k not in _IGNORED_FIELDS}


def _file_stamps(directory: str) -> tuple[tuple[str, int, int], ...]:
    """(name, size, mtime) of the directory's files: the weights are hashed again only when these change."""
    return tuple(sorted((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
                        for entry in os.scandir(directory) if entry.is_file()))


@functools.lru_cache(maxsize=8)
def _weights_identity(directory: str, stamps: tuple) -> str | None:
    """"weights sha256 <hash>" of a checkpoint directory, hashed once per process while its files stay as they
    are (a run saves its state often; a 7B checkpoint takes half a minute to hash)."""
    from score_bench.harness.generation.backends.transformers import weights_sha256

    digest = weights_sha256(directory)
    return f"weights sha256 {digest}" if digest else None


def _json(values: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, default=str))


def config_changes(recorded: Mapping[str, Any], config: Any) -> list[str]:
    """"field: recorded -> current" for every field of `config` that differs from a recorded config (a saved
    state's, or trainer_config.json's): the model compared by its weights, the output not compared. A field the
    record lacks was added since it was written (e.g. stop, when the trainers' generation settings became one
    with eval's): at its default value it changes nothing, so the run is the same."""
    saved, current = _plain(recorded), _plain(config)
    defaults = _json({name: entry.default for name, entry in flat_fields(type(config)).items()
                      if entry.default is not dataclasses.MISSING}) if dataclasses.is_dataclass(config) else {}
    return [f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in sorted(set(saved) | set(current))
            if saved.get(k, defaults.get(k)) != current.get(k)]


def save_state(output: Path, *, trainer: str, config: Any, world_size: int, state: SavedState) -> Path:
    """Write OUTPUT/state/ atomically (see the module docstring). Call on the main process only."""
    output = Path(output)
    current, old = output / STATE_DIR, output / _OLD_DIR
    payload = {"step": state.step, "stage": state.stage, "log_rows": state.log_rows, "model": dict(state.model),
               "optimizer": state.optimizer, "rng": dict(state.rng), "extra": dict(state.extra)}
    with saving(current, f"the training state of step {state.step}", "the state saved before it is kept"):
        output.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=output, prefix=".state.tmp-"))
        try:
            with (tmp / "state.pt").open("wb") as handle:
                torch.save(payload, handle)
                handle.flush()
                os.fsync(handle.fileno())
            meta = {"trainer": trainer, "world_size": world_size, "step": state.step, "stage": state.stage,
                    "log_rows": state.log_rows, "config": _plain(config)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            os.chmod(tmp, 0o755)
        except BaseException:  # a full disk or a kill: no half-written state left beside the last good one
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        os.replace(current, old)
    os.replace(tmp, current)
    shutil.rmtree(old, ignore_errors=True)
    return current


def load_state(output: Path, *, trainer: str, config: Any, world_size: int) -> SavedState | None:
    """The last saved state under `output`, or None when there is none. Raises InputError when it belongs to
    another trainer, another config or another number of processes."""
    output = Path(output)
    for name in (STATE_DIR, _OLD_DIR):
        directory = output / name
        if (directory / "meta.json").is_file() and (directory / "state.pt").is_file():
            break
    else:
        return None
    meta = read_json(directory / "meta.json", "saved state file")
    if not isinstance(meta, dict) or any(type(meta.get(name)) is not kind for name, kind in _META.items()):
        raise InputError(f"saved state file {directory / 'meta.json'} lacks a string trainer, an object config or "
                         "an integer world_size; the output directory is damaged: use another one")
    where = f"output directory {output} holds a {meta['trainer']} run"
    if meta["trainer"] != trainer:
        raise InputError(f"{where}, not {trainer}; use another output directory")
    changed = config_changes(meta["config"], config)
    if changed:
        raise InputError(f"{where} with a different config ({'; '.join(changed)}); resume it with the same "
                         "settings or use another output directory")
    if meta["world_size"] != world_size:
        raise InputError(f"{where} on {meta['world_size']} process(es), not {world_size}; resume it with the "
                         "same number of processes or use another output directory")
    try:
        payload = torch.load(directory / "state.pt", map_location="cpu", weights_only=True)
        return SavedState(*(payload[name] for name in _PAYLOAD))
    except Exception as err:  # torch's unpickler and zip reader raise several kinds for a damaged file
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read the saved state {directory / 'state.pt'} ({text}); the output directory "
                         "is damaged: use another one") from None


def check_output_identity(output: Path, config: Any, checkpoint_config: str = "trainer_config.json") -> None:
    """Refuse a training output directory that holds another run: an evaluation, or a finished checkpoint whose
    recorded config differs from `config` (the model compared by its weights). Rerunning the same config
    (to resume, or to redo a finished run) is allowed."""
    output = Path(output)
    if not output.is_dir():
        return
    other = next((name for name in ("samples.jsonl", "eval_config.json", "grades.jsonl") if (output / name).exists()),
                 None)
    if other:
        raise InputError(f"output directory {output} holds an evaluation ({other}); use another output directory")
    recorded = output / checkpoint_config
    saved_state = any((output / name / "meta.json").is_file() for name in (STATE_DIR, _OLD_DIR))
    model = next((name for name in MODEL_FILES if (output / name).exists()), None)
    if model and not recorded.is_file() and not saved_state:
        raise InputError(f"output directory {output} holds a model checkpoint ({model}) that no run of score-bench "
                         f"trained there (no {checkpoint_config}); training would replace it: use another output "
                         "directory")
    if not recorded.is_file() or saved_state:
        return  # nothing recorded, or a saved state: load_state compares it
    saved = read_json(recorded, "checkpoint config file")
    try:
        changed = config_changes(saved["config"], config)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"output directory {output} holds an unreadable {checkpoint_config}; use another "
                         "output directory") from None
    if changed:
        raise InputError(f"output directory {output} holds a checkpoint trained with a different config "
                         f"({'; '.join(changed)}); use another output directory")
