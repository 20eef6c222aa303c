"""One training run: the skeleton every trainer runs on (STYLE 17), so what is added here reaches every trainer and
the baselines are never handicapped against SCoRe.

A TrainingRun owns everything that is not a trainer's own idea: the start and its guards (harness.runtime.guards), the
policy with the memory options applied (harness.training.memory_options), FSDP sharding on CPU (harness.training.fsdp),
the frozen reference when the trainer keeps one, the optimiser, the problem stream (seeded, epoch by epoch), the
training sampler (harness.training.sampler: in-process transformers in chunks, or colocated vLLM loaded after every
optimiser step with the sampler/policy gap logged), micro-batch accumulation (harness.training.accumulation), held-out
evaluation rows, resumable states and exact resume (harness.training.resume), checkpoints, the training log and the
learning-signal warning (harness.training.learning_signal).

A trainer supplies a TrainingMethod: its name, whether it keeps a reference, and the counters of its own that a
resumable state must hold. Its loop (what to sample per step, which examples or advantages, the loss, the
schedule) calls the run: next_problems and sample, micro_batches and accumulate for the gradient of its loss,
update for the optimiser step, evaluate, save_state, and finish for the checkpoint.

Under `accelerate launch` (DDP, or FSDP on CPU) every process draws the same problems and samples its shard
(problems[rank::world]); a trainer that selects from a whole batch asks for every process's traces, gathered in
one process's order. Only the main process evaluates and writes. See docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import GenerationParams
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem
from score_bench.harness.generation.rollout import Trace
from score_bench.harness.runtime.guards import (check_context, check_finite_loss, check_finite_weights,
                                                check_model_saveable, check_output_not_model, model_context)
from score_bench.harness.runtime.provenance import provenance
from score_bench.harness.training import fsdp
from score_bench.harness.training.accumulation import accumulate, micro_batches
from score_bench.harness.training.encoding import EncodedBatch
from score_bench.harness.training.held_out import HeldOutEval
from score_bench.harness.training.learning_signal import SignalTracker
from score_bench.harness.training.memory_options import (apply_memory_options, build_optimizer, check_sharding,
                                                         checkpoint_weights, frozen_reference, validate_memory_options)
from score_bench.harness.training.outputs import CONFIG_FILE, LOG_FILE, TrainingLog, save_checkpoint
from score_bench.harness.training.resume import (SavedState, check_output_identity, load_state, rng_states, save_state,
                                                 set_rng_states)
from score_bench.harness.training.sampler import training_sampler

__all__ = ["TrainingMethod", "TrainingRun", "StepTaken", "whole_batch", "rewarded_as", "draw_problems"]


class TrainingMethod:
    """What a trainer brings to its TrainingRun besides the config. Trainers subclass it; the optional parts have
    defaults that do nothing."""

    name: str
    """The trainer's plugin name: saved states record it, and a state of another trainer is refused."""
    keeps_reference: bool = False
    """Load a frozen copy of the base model (TrainingRun.reference), e.g. for a KL anchor."""
    signal_unit: str = "training steps"
    """What the learning-signal warning counts (SignalTracker.observe is called once per such unit)."""

    def state(self) -> dict[str, Any]:
        """The trainer's own counters for a resumable state, as plain values (torch.load(weights_only=True))."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved state: `state` holds what state() returned (and the run's own keys)."""


@dataclass(frozen=True)
class StepTaken:
    """What an optimiser step reports for the log row."""

    grad_norm: float | None
    """The global gradient norm before clipping; None when clipping is off."""
    sampler: dict[str, float]
    """The sampler's check after loading the new weights ({"sampler_logprob_gap": ...}), or {} when the sampler
    is the policy itself."""


class TrainingRun:
    """The state of one run: policy (and reference), optimiser, sampler, problem stream, log. A saved state in
    OUTPUT/state/ is loaded here (weights, optimiser, RNGs, step, problem stream, log position, and the method's
    own counters through method.restore)."""

    def __init__(self, config: Any, method: TrainingMethod, task: Task | None = None):
        """`config`: a trainer's config (a RunConfig). `task` overrides loading config.task."""
        from score_bench.harness.generation.backends.transformers import TransformersBackend

        self.config = config
        self.method = method
        self.started_from = provenance()
        self.output = Path(config.output)
        start = start_run(config, method.name, task)
        self.accelerator, self.task, self.problems = start.accelerator, start.task, start.problems
        self.world = self.accelerator.num_processes
        self.rank = self.accelerator.process_index
        device, source, self.tokenizer = start.device, start.source, start.tokenizer
        self.model = start.model
        """The bare policy: generation and checkpoints. `policy` is the same module as prepared (DDP-wrapped)."""
        # Eval mode throughout: log-probabilities are scored without dropout, like the samples were.
        self.model.eval()
        self.sharded_here = fsdp.is_sharded(self.model)
        """Sharded by start_run (FSDP on CPU, harness.training.fsdp), not by accelerate: weights and optimiser state are
        gathered and loaded here."""
        optimizer = build_optimizer(self.model, config)
        self.device = torch.device(device)
        self.rng = random.Random(config.seed)
        """The problem stream (and any other draw of the method's that must follow it, e.g. minibatch order)."""
        self.order: list[Problem] = []
        self.step = 0
        """Optimiser steps taken."""
        saved = load_state(self.output, trainer=method.name, config=config, world_size=self.world)
        if saved is not None:
            self._restore(saved, optimizer)
        if self.sharded_here:  # accelerate would wrap it in DDP
            self.policy, self.optimizer = self.model, self.accelerator.prepare(optimizer)
        else:
            self.policy, self.optimizer = self.accelerator.prepare(self.model, optimizer)
        self.reference = (frozen_reference(config, self.accelerator, self.policy, self.model, source, device)
                          if method.keeps_reference else None)
        """Called like a model: a frozen copy of the base, or with LoRA the policy with its adapters disabled."""
        if config.backend == "vllm" and self.world > 1:
            raise InputError("backend vllm samples in one process; run without `accelerate launch`, or use "
                             "backend transformers")
        self.sampler = training_sampler(config, self.model, self.tokenizer, source)
        # A backend of its own, so evaluation never leaves KV in the training sampler's prefix store.
        self.evaluator = HeldOutEval(self.task, config, TransformersBackend(
            self.model, self.tokenizer, batch_size=config.generation_batch_size, source=source),
            config.generation.max_new_tokens)
        self.log = TrainingLog(self.output / LOG_FILE, keep_rows=saved.log_rows if saved else None,
                               active=self.main)
        self._saved_at = (saved.stage, saved.step, saved.log_rows) if saved else None
        self.signal = SignalTracker(config.generation.max_new_tokens, method.signal_unit)
        """Units with no learning signal, since this process started (a resumed run counts from the resume)."""

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    def _restore(self, saved: SavedState, optimizer: torch.optim.Optimizer) -> None:
        if self.sharded_here:
            fsdp.load_full_state(self.model, optimizer, saved.model, saved.optimizer)
        else:
            self.model.load_state_dict(saved.model)
            optimizer.load_state_dict(saved.optimizer)
        set_rng_states(saved.rng)
        version, internal, gauss = saved.extra["problem_rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        by_id = {p.id: p for p in self.problems}
        self.order = [by_id[i] for i in saved.extra["order"]]
        self.step = saved.step
        self.method.restore(saved.extra)

    # -- sampling ------------------------------------------------------------------------------------------

    def next_problems(self) -> list[Problem]:
        """batch_size problems, epoch by epoch in a seeded order (the same on every process)."""
        return draw_problems(self.problems, self.order, self.rng, self.config.batch_size)

    def sample(self, problems: Sequence[Problem], index: int, *, whole: bool = False) -> list[Trace]:
        """samples_per_problem graded two-attempt traces per problem of this process's shard
        (problems[rank::world]) from the current policy, in rollout order (sample-major), each attempt's verdict
        the one config.reward names (strict or flexible). `index` numbers the rollout batch in the run: it seeds
        the samples. `whole`: every process's traces, gathered, in the order one process samples the whole
        `problems` (whole_batch)."""
        config = self.config
        params = GenerationParams.of(config.generation, seed=config.seed * 1_000_003 + index)
        with fsdp.gathered(self.model):  # every process: sharded weights are gathered for generation
            mine = self.sampler.sample(self.task, problems[self.rank::self.world], config.samples_per_problem,
                                       params)
        mine = rewarded_as(mine, config.reward)
        if not whole or self.world == 1:
            return mine
        from accelerate.utils import gather_object

        everything = gather_object(mine)  # equal shards, concatenated by rank
        size = len(mine)
        return whole_batch([everything[r * size:(r + 1) * size] for r in range(self.world)],
                           config.samples_per_problem)

    # -- the optimiser step ------------------------------------------------------------------------------------

    def micro_batches(self, batch: EncodedBatch) -> list[slice]:
        """The rows of `batch` as micro-batches of config.micro_batch_size / micro_batch_tokens."""
        return micro_batches(batch.lengths(), self.config.micro_batch_size, self.config.micro_batch_tokens)

    def accumulate(self, parts: Sequence, loss_of: Callable[[Any], torch.Tensor]) -> torch.Tensor:
        """Backward of loss_of(part) for each part into the policy's `.grad`, gradients synchronised across
        processes once, at the last part (harness.training.accumulation); the parts' summed loss, detached."""
        return accumulate(self.accelerator, self.policy, parts, loss_of)

    def update(self, loss: torch.Tensor, prompts: Sequence[list[Message]]) -> StepTaken:
        """The optimiser step on the gradients in `.grad` (whose loss is `loss`): refused before the step when
        the loss is not finite, gradients clipped to config.grad_clip, then cleared (a step's backward starts
        from none), the sampler loaded with the new weights and checked on `prompts` (a few attempt-1
        conversations of the step)."""
        check_finite_loss(loss, self.step + 1, self.output)  # before the step can write NaN into the weights
        grad_norm = (self.accelerator.clip_grad_norm_(self.policy.parameters(), self.config.grad_clip)
                     if self.config.grad_clip > 0 else None)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.sampler.load_weights(self.model)
        self.step += 1
        gap = self.sampler.logprob_gap(self.model, prompts, seed=self.step)
        return StepTaken(None if grad_norm is None else float(grad_norm),
                         {} if gap is None else {"sampler_logprob_gap": gap})

    # -- evaluation, states, checkpoints ---------------------------------------------------------------------

    def evaluate(self, stage: int, **labels: Any) -> None:
        """The held-out "eval" row of the current policy (HeldOutEval), with `labels` (e.g. the SFT iteration).
        Only the main process evaluates; the others count an empty row (their log writes nothing), so every
        process agrees on the log's length and so on when a state is due."""
        with fsdp.gathered(self.model):  # every process: sharded weights are gathered for generation
            row = self.evaluator.row(self.step, stage, **labels) if self.main else {}
        self.log.append(row)

    def save_state(self, stage: int) -> None:
        """OUTPUT/state/ (harness.training.resume), unless save_every is 0 or nothing was done since the last save.
        Written by the main process; every process takes part (FSDP/DeepSpeed gather weights) and decides alike, as
        they agree on the log's length."""
        mark = (stage, self.step, self.log.rows)
        if not self.config.save_every or mark == self._saved_at:
            return
        weights = fsdp.state_dict(self.accelerator, self.policy)
        optimizer = (fsdp.full_optimizer_state(self.model, self.optimizer.optimizer) if self.sharded_here
                     else self.optimizer.state_dict())
        if self.main:
            extra = {"problem_rng": self.rng.getstate(), "order": [p.id for p in self.order], **self.method.state()}
            state = SavedState(self.step, stage, self.log.rows, weights, optimizer, rng_states(), extra)
            save_state(self.output, trainer=self.method.name, config=self.config, world_size=self.world,
                       state=state)
        self.accelerator.wait_for_everyone()
        self._saved_at = mark

    def save(self, directory: Path, extra: Mapping[str, Any]) -> Path:
        """A loadable checkpoint of the current policy (save_checkpoint): every process takes part in gathering
        the weights (FSDP/DeepSpeed shards; with LoRA merging them, or keeping the adapter:
        harness.training.memory_options), the main process writes, all wait."""
        with checkpoint_weights(self.accelerator, self.policy, self.model, self.config) as (model, weights):
            if self.main:
                save_checkpoint(directory, model, self.tokenizer, self.config, extra, state_dict=weights,
                                started_from=self.started_from)
        self.accelerator.wait_for_everyone()
        return Path(directory)

    def finish(self, extra: Mapping[str, Any]) -> Path:
        """The final checkpoint in OUTPUT, recording `extra`, the log's name and, when no unit of the run had a
        learning signal, the warning (also raised as a RuntimeWarning)."""
        warning = self.signal.warning()
        if warning and self.main:
            warnings.warn(warning, RuntimeWarning, stacklevel=3)
        return self.save(self.output, {**extra, "log": LOG_FILE, **({"warning": warning} if warning else {})})


def whole_batch(shards: Sequence[Sequence[Trace]], samples: int) -> list[Trace]:
    """One rollout batch's traces in the order one process samples them, from the processes' shards: the rollout
    is sample-major (sample s of problem i at s * n + i), and process r sampled problems r, r + world, ... of
    the batch, sample-major over its shard."""
    world, per = len(shards), len(shards[0]) // samples
    return [shards[i % world][s * per + i // world] for s in range(samples) for i in range(per * world)]


def rewarded_as(traces: Sequence[Trace], reward: str) -> list[Trace]:
    """`traces` with each attempt's verdict the one the run is rewarded by: as graded for "strict", the flexible
    verdict (and its extraction) for "flexible". Everything after sampling (rewards, SFT selection, statistics)
    then reads `attempt.verdict` alike."""
    if reward == "strict":
        return list(traces)
    if reward != "flexible":
        raise InputError(f"reward must be strict or flexible, got '{reward}'")
    out = []
    for trace in traces:
        attempts = tuple(a if a.flexible_verdict is None else
                         dataclasses.replace(a, verdict=a.flexible_verdict, extracted=a.flexible_verdict.extracted)
                         for a in trace.attempts)
        out.append(dataclasses.replace(trace, attempts=attempts))
    return out


def draw_problems(problems: Sequence[Problem], order: list[Problem], rng: random.Random, size: int) -> list[Problem]:
    """`size` problems, epoch by epoch: `order` holds what is left of the current epoch (refilled from `problems`
    and shuffled by `rng` when empty), so saving `order` and the rng state is enough to resume the stream."""
    batch = []
    while len(batch) < size:
        if not order:
            order.extend(problems)
            rng.shuffle(order)
        batch.append(order.pop())
    return batch


# -- the start ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunStart:
    """What every run opens with, in the same order for all (the seed is set just before the weights load, so
    runs are reproducible whatever the trainer)."""

    accelerator: Any
    device: str
    """Where this process's model lives: the configured device in one process, accelerate's under a launcher."""
    task: Task
    problems: list[Problem]
    """The training split's problems."""
    source: str
    """The resolved model source (local directory or hub id)."""
    tokenizer: Any
    model: Any
    """The bare policy, float32, on `device`, with the config's memory options applied (with LoRA a peft model),
    sharded with FSDP2 when the launch asked for FSDP on CPU."""


def start_run(config: Any, who: str, task: Task | None = None) -> RunStart:
    """Accelerator, task, training problems, tokenizer and seeded model for a trainer config. Refuses, naming
    `who`, a config without a model, a batch that does not split over the processes, an empty split and a model
    without a chat template.
    An FSDP launch on CPU shards the model here with FSDP2 (harness.training.fsdp): accelerate would run it as plain
    DDP."""
    from accelerate import Accelerator

    from score_bench.harness.contracts.registry import load_task
    from score_bench.harness.generation.backends.transformers import load_model, load_tokenizer, resolve_device

    if not config.model:
        raise InputError(f"{who} trainer needs a model (the base checkpoint to start from)")
    check_output_not_model(Path(config.output), config.model)
    check_model_saveable(config.model)
    check_output_identity(Path(config.output), config, CONFIG_FILE)
    device = resolve_device(config.device)
    validate_memory_options(config, device)
    # Placement stays ours in one process (so cuda:N is honoured); under a launcher each process takes its own.
    # Mixed precision is the trainer config's field, whatever an accelerate config file says.
    accelerator = Accelerator(cpu=device == "cpu", device_placement=False, mixed_precision=config.mixed_precision)
    sharded = fsdp.wants_cpu_fsdp(accelerator)
    if sharded:
        fsdp.check_cpu_fsdp(config)
    else:
        check_sharding(accelerator)
    world = accelerator.num_processes
    if world > 1:
        device = str(accelerator.device)
    if config.batch_size % world:
        raise InputError(f"batch_size {config.batch_size} does not split over {world} processes")
    if task is None:
        try:
            task = load_task(config.task, **config.task_options)
        except TypeError as err:
            raise InputError(f"bad task_options for task '{config.task}': {err}") from None
    held_out = {config.eval_split, "test"} if config.eval_every else {"test"}
    if config.split in held_out and set(task.splits) - held_out:
        raise InputError(f"split '{config.split}' is held out for evaluation; train on "
                         f"{', '.join(sorted(set(task.splits) - held_out))}")
    problems = task.problems(config.split)
    if not problems:
        raise InputError(f"task '{task.name}' has no problems in split '{config.split}'")
    source, tokenizer = load_tokenizer(config.model, None, f"{who} needs one to pose two attempts")
    torch.manual_seed(config.seed)
    model = load_model(source, config.model, torch.float32).to(device)
    check_finite_weights(model, config.model)
    check_context(tokenizer, model_context(model), [task.first_prompt(p) for p in problems],
                  [{"role": "user", "content": task.correction_instruction}], config.generation.max_new_tokens, 2,
                  config.model)
    model = apply_memory_options(model, config)
    if sharded:
        model = fsdp.shard(model, world)
        accelerator.print(f"{who}: FSDP on CPU, the policy is sharded with torch's FSDP2 over {world} processes "
                          "(accelerate selects FSDP on GPUs only)")
    return RunStart(accelerator, device, task, problems, source, tokenizer, model)
