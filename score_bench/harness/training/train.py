"""`score-bench train` as a Python API: a trainer plugin by name, its config from a preset and fields, the checks
that keep a run from overwriting its base model or another run, then the trainer's own loop.

    from score_bench import train
    checkpoint = train("score", preset="laptop", task="arith", model="models/base-seed0", output="runs/score")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from score_bench.harness.contracts import registry
from score_bench.harness.contracts.progress import Progress
from score_bench.harness.runtime.guards import (check_model_saveable, check_output_dir, check_output_not_model,
                                                output_lock)
from score_bench.harness.training.config import build_config
from score_bench.harness.training.memory_estimate import MemoryEstimate, check_fits, for_config

__all__ = ["prepare_training", "training_memory", "check_training_memory", "train"]


def prepare_training(trainer: str, preset: str | None, fields: Mapping[str, Any]) -> tuple[type, Any]:
    """(trainer class, resolved config): the config from the trainer's defaults, the preset, then `fields`
    (strings converted to each field's type), checked before anything is loaded or written."""
    trainer_cls = registry.load(registry.TRAINERS, trainer)
    config = build_config(trainer_cls.config_class, trainer_cls.presets, preset, fields)
    check_output_not_model(Path(config.output), config.model)
    check_model_saveable(config.model)
    check_output_dir(Path(config.output))
    return trainer_cls, config


def training_memory(trainer_cls: type, config: Any) -> MemoryEstimate:
    """The run's memory estimate per process (harness.training.memory_estimate, what `train --dry-run` prints), from the
    model's config, the tokenizer and the task's prompts: no weights loaded, nothing written."""
    from score_bench.harness.generation.backends.transformers import load_tokenizer

    source, tokenizer = load_tokenizer(config.model, None, "training needs one to pose two attempts")
    task = registry.load_task(config.task, **config.task_options)
    return for_config(config, reference=trainer_cls.keeps_reference, task=task,
                      tokenizer=tokenizer, source=source)


def check_training_memory(trainer_cls: type, config: Any) -> None:
    """Refuse, before any weights load, a run whose estimate exceeds all the memory of its device."""
    from score_bench.harness.generation.backends.transformers import resolve_device

    check_fits(training_memory(trainer_cls, config), resolve_device(config.device))


def train(trainer: str, preset: str | None = None, progress: Progress | None = None, **fields: Any) -> Path:
    """Train with the trainer registered as `trainer` (score, pair-sft, star); `fields` are its config's fields
    (task, model, output, any other). Returns the checkpoint directory; rerunning the same call resumes."""
    trainer_cls, config = prepare_training(trainer, preset, {k: str(v) if isinstance(v, Path) else v
                                                             for k, v in fields.items()})
    check_training_memory(trainer_cls, config)
    with output_lock(Path(config.output), "train"):
        return trainer_cls().train(config, progress=progress)
