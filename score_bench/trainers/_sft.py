"""What the SFT baselines (`star`, `pair-sft`; Kumar et al. 2024, section 4) share: their config, sampling
two-attempt traces from the current model with the shared rollout, choosing the examples, and supervised steps
on the attempt-2 tokens only.

An example is a TwoAttempts (x, y1, instruction, y2): the prompt, y1 and the instruction are context; only y2
(its content and, when it was sampled, its end-of-turn token) is trained, through encode_two_attempts'
attempt-2 mask. Budget: by default the same as `score` with the matching preset, so comparisons are fair —
`sampling_batches` rollout batches of `batch_size` problems x `samples_per_problem` traces (score samples one
such batch per optimiser step) and `updates` optimiser steps (score's stage1_steps + stage2_steps) of
`sft_batch_size` examples (score's traces per step), with the same learning rate, Adam and clipping.

When selection keeps no example (a model that never corrects itself), the iteration makes no update: its log
row says so (`warning`, `updates_skipped`), a Python warning is raised, and the checkpoint is the model as it
is. The budget actually used is in the log and in trainer_config.json.
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import torch

from score_bench.harness.errors import InputError
from score_bench.harness.generation import GenerationParams
from score_bench.harness.progress import Progress, phase
from score_bench.harness.protocols import Task
from score_bench.harness.rollout import Attempt, RolloutConfig, Trace, rollout
from score_bench.harness.training import (LOG_FILE, EncodedBatch, RunConfig, TrainingLog, TwoAttempts, build_config,
                                          draw_problems, encode_two_attempts, masked_sum, token_logprobs,
                                          two_attempts_of)
from score_bench.harness.types import Problem, Status
from score_bench.trainers.score import PRESETS as SCORE_PRESETS, ScoreConfig

__all__ = ["SftConfig", "sft_presets", "star_examples", "pair_examples", "sft_loss", "SftRun"]

_SCORE = ScoreConfig()


@dataclass(frozen=True)
class SftConfig(RunConfig):
    """Every knob of an SFT baseline run. Budget defaults are score's defaults (the paper's MATH setting)."""

    variant: Literal["d", "d_plus"] = "d"
    """'d': only incorrect-y1 examples (D_STaR / Pair-SFT). 'd_plus': also correct->correct examples (D+)."""
    sampling_batches: int = _SCORE.stage1_steps + _SCORE.stage2_steps
    """Rollout batches in total (score samples one per optimiser step): the budget of sampled traces is
    sampling_batches x batch_size x samples_per_problem."""
    batch_size: int = _SCORE.batch_size
    """Problems per rollout batch, as in score."""
    samples_per_problem: int = _SCORE.samples_per_problem
    """Two-attempt traces per problem per rollout batch. Pair-SFT draws its y2 from these samples."""
    updates: int = _SCORE.stage1_steps + _SCORE.stage2_steps
    """Optimiser steps in total (score: stage1_steps + stage2_steps)."""
    sft_batch_size: int = _SCORE.batch_size * _SCORE.samples_per_problem
    """Examples per optimiser step (score: the traces of one step); all kept examples when fewer."""
    learning_rate: float = _SCORE.learning_rate
    """Adam, as score."""
    weight_decay: float = 0.0
    grad_clip: float = _SCORE.grad_clip
    """Max global gradient norm; 0 disables clipping."""
    temperature: float = 1.0
    """Sampling temperature of the data rollouts (the paper: 1.0)."""
    top_p: float = 1.0
    max_new_tokens: int = _SCORE.max_new_tokens
    """Per attempt. An attempt cut here keeps its tokens but its end-of-turn token is not trained."""
    generation_batch_size: int = _SCORE.generation_batch_size
    device: str = "auto"
    """cpu, cuda, cuda:N or auto."""


_MIRRORED = ("learning_rate", "batch_size", "samples_per_problem", "grad_clip", "weight_decay", "temperature",
             "top_p", "max_new_tokens", "generation_batch_size", "device")


def sft_presets(samples_per_problem: int | None = None, **extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """score's presets (paper, laptop, smoke) turned into SFT budgets: the same sampled traces, updates, lr and
    batch size. `samples_per_problem` re-divides each rollout batch's traces into fewer problems with more
    samples each (the trace budget stays score's); `extra` maps a preset name to further values."""
    presets = {}
    for name in SCORE_PRESETS:
        score = build_config(ScoreConfig, SCORE_PRESETS, name)
        steps = score.stage1_steps + score.stage2_steps
        traces = score.batch_size * score.samples_per_problem
        values = {key: getattr(score, key) for key in _MIRRORED}
        if samples_per_problem is not None and traces % samples_per_problem == 0:
            values.update(batch_size=traces // samples_per_problem, samples_per_problem=samples_per_problem)
        values.update(sampling_batches=steps, updates=steps, sft_batch_size=traces, **extra.get(name, {}))
        presets[name] = values
    return presets


def validate(config: SftConfig, trainer: str) -> None:
    if not config.model:
        raise InputError(f"{trainer} trainer needs a model (the base checkpoint to start from)")
    for name in ("sampling_batches", "updates"):
        if getattr(config, name) < 0:
            raise InputError(f"{name} must be >= 0, got {getattr(config, name)}")
    for name in ("batch_size", "samples_per_problem", "sft_batch_size", "max_new_tokens", "generation_batch_size"):
        if getattr(config, name) < 1:
            raise InputError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.temperature <= 0:
        raise InputError(f"{trainer} samples its data: temperature must be > 0, got {config.temperature}")


# -- example selection -----------------------------------------------------------------------------------------

def star_examples(traces: Sequence[Trace], plus: bool, max_new_tokens: int) -> list[TwoAttempts]:
    """D_STaR: the traces whose incorrect y1 was revised to a correct y2; with `plus` (D+) also correct->correct.
    A grading error is neither correct nor incorrect, so such a trace is never kept."""
    kept = []
    for trace in traces:
        first, second = trace.attempts[:2]
        if second.verdict.status is Status.CORRECT and (
                first.verdict.status is Status.INCORRECT or (plus and first.verdict.status is Status.CORRECT)):
            kept.append(two_attempts_of(trace, first, second, max_new_tokens))
    return kept


def pair_examples(traces: Sequence[Trace], plus: bool, max_new_tokens: int, rng: random.Random) -> list[TwoAttempts]:
    """Pair-SFT: for each incorrect first attempt y1, a y2 drawn at random from the correct responses to the same
    problem among all first and second attempts sampled; with `plus` (D+) correct first attempts are paired the
    same way. Problems with no correct response give no pair."""
    correct: dict[str, list[Attempt]] = {}
    for trace in traces:
        for attempt in trace.attempts[:2]:
            if attempt.verdict.status is Status.CORRECT:
                correct.setdefault(trace.problem.id, []).append(attempt)
    kept = []
    for trace in traces:
        first = trace.attempts[0]
        pool = correct.get(trace.problem.id)
        wanted = first.verdict.status is Status.INCORRECT or (plus and first.verdict.status is Status.CORRECT)
        if pool and wanted:
            kept.append(two_attempts_of(trace, first, rng.choice(pool), max_new_tokens))
    return kept


# -- the supervised step ---------------------------------------------------------------------------------------

def sft_loss(model, batch: EncodedBatch) -> tuple[torch.Tensor, int]:
    """Mean negative log-likelihood over the attempt-2 tokens of the batch (token-weighted, as in standard SFT),
    and that token count. Prompt, y1, instruction and padding contribute nothing."""
    mask = batch.attempt_masks[1]
    tokens = int(mask.sum())
    logp = token_logprobs(model, batch.input_ids, batch.attention_mask)
    return -masked_sum(logp, mask).sum() / max(tokens, 1), tokens


def trace_stats(traces: Sequence[Trace]) -> dict[str, Any]:
    n = max(len(traces), 1)
    r1 = [t.attempts[0].correct for t in traces]
    r2 = [t.attempts[1].correct for t in traces]
    return {"traces": len(traces), "accuracy_t1": sum(r1) / n, "accuracy_t2": sum(r2) / n,
            "i_to_c": sum((not a) and b for a, b in zip(r1, r2)) / n,
            "c_to_i": sum(a and not b for a, b in zip(r1, r2)) / n,
            "grading_errors": sum(a.verdict.status is Status.ERROR for t in traces for a in t.attempts)}


class SftRun:
    """The state of one SFT run: model, optimiser, problem stream, log, and the budget used so far."""

    def __init__(self, config: SftConfig, trainer: str, task: Task | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from score_bench.harness.backends.transformers import TransformersBackend, resolve_device, resolve_model_source
        from score_bench.harness.registry import load_task

        validate(config, trainer)
        self.config = config
        self.task = task if task is not None else load_task(config.task, **config.task_options)
        self.problems: list[Problem] = self.task.problems(config.split)
        if not self.problems:
            raise InputError(f"task '{self.task.name}' has no problems in split '{config.split}'")
        device = resolve_device(config.device)
        source = resolve_model_source(config.model)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        if not self.tokenizer.chat_template:
            raise InputError(f"model '{config.model}' has no chat template; {trainer} needs one to pose two attempts")
        torch.manual_seed(config.seed)
        self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).to(device)
        # Eval mode throughout, as score: the methods differ in their loss only, not in dropout.
        self.model.eval()
        self.backend = TransformersBackend(self.model, self.tokenizer, batch_size=config.generation_batch_size,
                                           source=source)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate,
                                          weight_decay=config.weight_decay)
        self.device = torch.device(device)
        self.rng = random.Random(config.seed)
        self.order: list[Problem] = []
        self.step = 0
        self.batches_sampled = 0
        self.traces_sampled = 0
        self.examples_kept = 0
        self.updates_skipped = 0
        self.log = TrainingLog(Path(config.output) / LOG_FILE)

    def sample(self, batches: int, progress: Progress | None = None) -> list[Trace]:
        """`batches` rollout batches from the current model at the configured temperature, graded."""
        traces: list[Trace] = []
        k = self.config.samples_per_problem
        with phase(progress, "sampling traces", batches) as advance:
            for _ in range(batches):
                params = GenerationParams(max_new_tokens=self.config.max_new_tokens,
                                          temperature=self.config.temperature, top_p=self.config.top_p,
                                          seed=self.config.seed * 1_000_003 + self.batches_sampled)
                problems = draw_problems(self.problems, self.order, self.rng, self.config.batch_size)
                traces.extend(rollout(self.task, problems, self.backend,
                                      RolloutConfig(turns=2, samples=k, params=params,
                                                    chunk_size=len(problems) * k)))
                self.batches_sampled += 1
                advance(1)
        self.traces_sampled += len(traces)
        return traces

    def fit(self, examples: list[TwoAttempts], updates: int, iteration: int, stats: dict[str, Any],
            progress: Progress | None = None) -> None:
        """`updates` optimiser steps on minibatches drawn epoch by epoch from `examples`, one log row each.
        With no examples: no step, one row and a warning saying so."""
        self.examples_kept += len(examples)
        common = {"iteration": iteration, "examples": len(examples), "traces_sampled": self.traces_sampled, **stats}
        if not examples:
            if updates > 0:
                message = (f"iteration {iteration}: no training example kept from {stats['traces']} traces; "
                           f"{updates} updates skipped")
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                self.updates_skipped += updates
                self.log.append({"step": self.step, **common, "loss": None, "updates_skipped": updates,
                                 "warning": message})
            return
        order: list[int] = []
        size = min(self.config.sft_batch_size, len(examples))
        with phase(progress, f"SFT iteration {iteration}", updates) as advance:
            for _ in range(updates):
                if len(order) < size:  # a new epoch; a short tail is dropped so no batch repeats an example
                    order = list(range(len(examples)))
                    self.rng.shuffle(order)
                picked, order = order[:size], order[size:]
                row = self._update([examples[i] for i in picked])
                self.log.append({"step": self.step, **common, **row})
                advance(1, f"loss {row['loss']:.3f}")

    def _update(self, examples: list[TwoAttempts]) -> dict[str, Any]:
        started = time.perf_counter()
        batch = encode_two_attempts(self.tokenizer, examples).to(self.device)
        loss, tokens = sft_loss(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = (torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
                     if self.config.grad_clip > 0 else None)
        self.optimizer.step()
        self.step += 1
        seconds = time.perf_counter() - started
        return {"loss": loss.item(), "batch_examples": len(examples), "attempt2_tokens": tokens,
                "grad_norm": None if grad_norm is None else float(grad_norm), "seconds": round(seconds, 3),
                "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None}

    def budget(self) -> dict[str, int]:
        """The budget actually used, for trainer_config.json."""
        return {"traces_sampled": self.traces_sampled, "examples_kept": self.examples_kept,
                "updates": self.step, "updates_skipped": self.updates_skipped,
                "updates_planned": self.config.updates, "sampling_batches": self.batches_sampled}


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal counts, the larger ones first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
