"""A trainer's config: the Trainer protocol every trainer plugin implements, RunConfig (the fields every trainer
config starts with) and building a config from its defaults, a named preset and `--set key=value` overrides."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import (AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, SEED, build, coerce,
                                                  flat_fields)
from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.contracts.progress import Progress
from score_bench.harness.training.memory_options import MemoryOptions

__all__ = ["Trainer", "RunConfig", "build_config"]


class Trainer:
    """The base of every trainer plugin (entry-point group `score_bench.trainers`): a config class, named presets,
    and `train(config) -> checkpoint directory`."""

    name: str
    config_class: type
    presets: Mapping[str, Mapping[str, Any]]
    """Preset name -> field values over the config class's defaults."""
    keeps_reference: bool = False
    """Whether the run holds a frozen copy of the base model beside the policy (e.g. a KL anchor): the memory
    estimate counts it, and the run skeleton loads it (harness.training.run.TrainingMethod)."""

    def train(self, config: Any, progress: Progress | None = None) -> Path:
        raise NotImplementedError


@dataclass(frozen=True)
class RunConfig(MemoryOptions):
    """The fields every trainer's config starts with: where a run starts, on what, where it writes, its seed, the
    rollout batches and how they are sampled, the optimiser, held-out evaluation, saves, and the memory options
    (harness.training.memory_options). Defaults are SCoRe's for the paper's MATH setting, so the SFT baselines
    start from the same budget. Trainer configs subclass it and add their own knobs."""

    model: str = ""
    """Base checkpoint (directory or Hub id) the run starts from; for SCoRe also the frozen reference."""
    task: str = "arith"
    """Registered task name (`score-bench tasks`)."""
    output: str = "checkpoint"
    """Directory for the final checkpoint, trainer_config.json and training_log.jsonl."""
    task_options: dict = field(default_factory=dict)
    """Keyword arguments for the task's constructor (e.g. {"digits": 2}); JSON on the command line."""
    split: str = "train"
    """Task split the training problems are drawn from (never the evaluation split)."""
    seed: Annotated[int, SEED] = 0
    """Seeds problem order and sampling (and, for the SFT baselines, pair drawing and minibatch order)."""
    batch_size: Annotated[int, AT_LEAST_ONE] = 512
    """Problems per rollout batch; SCoRe samples one rollout batch per optimiser step (the paper: 512 for MATH,
    128 for MBPP)."""
    samples_per_problem: Annotated[int, AT_LEAST_ONE] = 1
    """Two-attempt traces sampled per problem of a rollout batch. With more than one, SCoRe's baselines are
    computed per problem, and Pair-SFT draws its y2 from them."""
    learning_rate: Annotated[float, POSITIVE] = 5e-6
    """Adam; the paper: 5e-6 (MATH), 1e-5 (MBPP)."""
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.0
    grad_clip: Annotated[float, NON_NEGATIVE] = 1.0
    """Max global gradient norm; 0 disables clipping."""
    generation: GenerationSettings = GenerationSettings(max_new_tokens=1024, temperature=1.0)
    """How the training rollouts are sampled: max_new_tokens per attempt (a number), temperature above 0 (the
    paper: 1.0, on-policy), top_p; no stop strings."""
    generation_batch_size: Annotated[int, AT_LEAST_ONE] = 64
    """Conversations the sampler decodes together, and (backend transformers) the rollout's chunk: a step samples
    its batch in chunks of this many and frees the sampler's KV after each, so its memory does not grow with
    batch_size."""
    device: str = "auto"
    """cpu, cuda, cuda:N or auto. Under `accelerate launch` each process uses the device accelerate gives it."""
    eval_every: Annotated[int, NON_NEGATIVE] = 0
    """Optimiser steps between held-out evaluations (greedy, two attempts, logged as rows with kind "eval");
    the base model is evaluated at step 0 and the final model at the end of training too. 0 turns evaluation
    off."""
    eval_split: str = "test"
    eval_task: str = ""
    """Task of the held-out evaluation when it differs from the training task (e.g. train on mbpp, evaluate on
    humaneval: the paper's transfer); "" evaluates on the training task."""
    eval_task_options: dict = field(default_factory=dict)
    """Keyword arguments for eval_task's constructor; JSON on the command line."""
    eval_problems: Annotated[int, AT_LEAST_ONE] = 100
    """The first N problems of eval_split: the same fixed subset at every evaluation, so curves compare (at least
    one; eval_every 0 turns evaluation off)."""
    save_every: Annotated[int, NON_NEGATIVE] = 10
    """Optimiser steps between resumable states in OUTPUT/state/ (0: never; a killed run then starts over)."""
    reward: Literal["strict", "flexible"] = "strict"
    """Which verdict is the training reward: "strict" (the task's stated answer format, the paper's and the
    headline metric) or "flexible" (the task's flexible extraction, e.g. arith's last number): for a model that
    solves problems but ignores the format, where strict rewards are all 0 and nothing is learned."""
    micro_batch_size: Annotated[int | None, AT_LEAST_ONE] = None
    """Traces (SFT: examples) scored per forward/backward pass; gradients accumulate over a step's micro-batches,
    so the step is exactly the one-pass step (harness.training.accumulation). None: the whole batch in one pass."""
    micro_batch_tokens: Annotated[int | None, AT_LEAST_ONE] = None
    """Optionally also cap each micro-batch at this many padded tokens (rows x longest row)."""
    backend: Literal["transformers", "vllm"] = "transformers"
    """The sampler of the training rollouts (harness.training.sampler). transformers generates with the policy
    module itself; vllm runs a colocated vLLM engine (score-bench[vllm], one process only) whose weights are
    loaded in place from the policy after every optimiser step, and logs sampler_logprob_gap, the largest
    difference between vLLM's and the policy's log-probabilities of a few sampled tokens after the load.
    Held-out evaluation stays on transformers."""

    def __post_init__(self) -> None:
        super().__post_init__()
        generation, who = self.generation, self.label or type(self).__name__
        if generation.max_new_tokens is None:
            raise InputError(f"{who} setting 'max_new_tokens' needs a value: a trainer's attempts need a length")
        if generation.temperature <= 0:
            raise InputError(f"{who} setting 'temperature' must be > 0, got {generation.temperature!r}: a trainer "
                             "samples its training data")
        if generation.stop:
            raise InputError(f"{who} setting 'stop' must be empty: a trainer trains an attempt's end-of-turn token "
                             "only where it was sampled, and an attempt a stop string cut has none")


def build_config(config_class: type, presets: Mapping[str, Mapping[str, Any]], preset: str | None = None,
                 overrides: Mapping[str, Any] | None = None):
    """`config_class` from its defaults, then the named preset, then `overrides` (from `--set key=value` or a
    YAML file; strings are converted to the field's type). Keys are flat field names: a nested setting is named by
    its own name (max_new_tokens, not generation.max_new_tokens), as trainer_config.json records it, so a recorded
    config can be given back as YAML. Unknown keys and bad values fail by name (the config checks its fields as it
    is built)."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in presets:
            near = difflib.get_close_matches(preset, list(presets), n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise InputError(f"unknown preset '{preset}'. Available: {', '.join(presets)}.{hint}")
        values.update(presets[preset])
    fields = flat_fields(config_class)
    for key, value in (overrides or {}).items():
        if key not in fields:
            near = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise InputError(f"unknown setting '{key}' for {config_class.__name__}.{hint}")
        values[key] = coerce(key, value, fields[key].type)
    return build(config_class, values)
