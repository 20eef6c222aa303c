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

Held-out evaluation, resume, the sampler (`backend`), micro-batching and multi-process runs are the run
skeleton's (harness.training.run), as for `score`: "eval" rows at step 0, every `eval_every` optimiser steps and at
the end; a resumable state in OUTPUT/state/ every `save_every` steps and at each iteration's boundaries (after its
examples are chosen, so a resumed run never samples an iteration again, and after its last step). Starting the
same command again continues from it, mid-fit included, with the same result as a run that never stopped.

Multi-process (accelerate, DDP or FSDP on CPU, as `score`; docs/distributed.md): every process draws the same
problems, minibatch orders and Pair-SFT draws (the same seeded streams) and samples only its shard of each rollout
batch; the shards' traces are gathered to every process in the order one process samples them, so selection,
statistics and the example list are exactly those of one process on the whole batch. Gathering traces rather
than kept examples keeps selection whole: Pair-SFT's y2 draws come from one stream in one order on every process,
as in one process. Each process then trains on its slice of each minibatch, with a loss weighted so that the
processes' averaged gradient is the whole minibatch's gradient (SftRun.backward).
"""

from __future__ import annotations

import dataclasses
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Mapping, Sequence

import torch

from score_bench.harness.contracts.fields import AT_LEAST_ONE, NON_NEGATIVE, flat_fields
from score_bench.harness.contracts.progress import Progress, phase
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Status
from score_bench.harness.generation.rollout import Attempt, Trace
from score_bench.harness.training.config import RunConfig, build_config
from score_bench.harness.training.encoding import (EncodedBatch, TwoAttempts, encode_two_attempts, masked_sum,
                                                   token_logprobs, two_attempts_of)
from score_bench.harness.training.learning_signal import count_attempts, no_signal
from score_bench.harness.training.run import TrainingMethod, TrainingRun
from score_bench.trainers.score import PRESETS as SCORE_PRESETS, ScoreConfig

__all__ = ["SftConfig", "sft_presets", "star_examples", "pair_examples", "attempt2_nll", "sft_loss", "SftRun"]

_SCORE = ScoreConfig()


@dataclass(frozen=True)
class SftConfig(RunConfig):
    """Every knob of an SFT baseline run. Budget defaults are score's defaults (the paper's MATH setting): its
    rollout batches (RunConfig), traces and optimiser steps."""

    variant: Literal["d", "d_plus"] = "d"
    """'d': only incorrect-y1 examples (D_STaR / Pair-SFT). 'd_plus': also correct->correct examples (D+)."""
    sampling_batches: Annotated[int, NON_NEGATIVE] = _SCORE.stage1_steps + _SCORE.stage2_steps
    """Rollout batches in total (score samples one per optimiser step): the budget of sampled traces is
    sampling_batches x batch_size x samples_per_problem."""
    updates: Annotated[int, NON_NEGATIVE] = _SCORE.stage1_steps + _SCORE.stage2_steps
    """Optimiser steps in total (score: stage1_steps + stage2_steps)."""
    sft_batch_size: Annotated[int, AT_LEAST_ONE] = _SCORE.batch_size * _SCORE.samples_per_problem
    """Examples per optimiser step (score: the traces of one step); all kept examples when fewer."""
    # The rollout batches and their sampling, the optimiser, evaluation and saves (counted in optimiser steps as in
    # score), micro-batching and backend: RunConfig.

    def traces_per_step(self) -> int:
        """Examples scored per optimiser step (harness.training.memory_estimate)."""
        return self.sft_batch_size


_SHARED = frozenset(flat_fields(RunConfig))
"""What a score preset sets that the SFT baselines share with it: RunConfig's fields."""


def sft_presets(samples_per_problem: int | None = None, **extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """score's presets (paper, laptop, smoke) turned into SFT budgets: the same sampled traces, updates, lr and
    batch size. `samples_per_problem` re-divides each rollout batch's traces into fewer problems with more
    samples each (the trace budget stays score's); `extra` maps a preset name to further values."""
    presets = {}
    for name in SCORE_PRESETS:
        score = build_config(ScoreConfig, SCORE_PRESETS, name)
        steps = score.stage1_steps + score.stage2_steps
        traces = score.batch_size * score.samples_per_problem
        values = {key: value for key, value in SCORE_PRESETS[name].items() if key in _SHARED}
        if samples_per_problem is not None and traces % samples_per_problem == 0:
            values.update(batch_size=traces // samples_per_problem, samples_per_problem=samples_per_problem)
        values.update(sampling_batches=steps, updates=steps, sft_batch_size=traces, **extra.get(name, {}))
        presets[name] = values
    return presets


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

def attempt2_nll(model, batch: EncodedBatch) -> tuple[torch.Tensor, int]:
    """Summed negative log-likelihood of the attempt-2 tokens of the batch, and their count. Prompt, y1,
    instruction and padding contribute nothing."""
    mask = batch.attempt_masks[1]
    logp = token_logprobs(model, batch.input_ids, batch.attention_mask)
    return -masked_sum(logp, mask).sum(), int(mask.sum())


def sft_loss(model, batch: EncodedBatch) -> tuple[torch.Tensor, int]:
    """Mean negative log-likelihood over the attempt-2 tokens of the batch (token-weighted, as in standard SFT),
    and that token count."""
    nll, tokens = attempt2_nll(model, batch)
    return nll / max(tokens, 1), tokens


def trace_stats(traces: Sequence[Trace]) -> dict[str, Any]:
    """What an iteration's rows say about its traces; `no_signal` when they all earned the same rewards (then no
    selection can tell good corrections from bad: star keeps all or nothing)."""
    n = max(len(traces), 1)
    r1 = [t.attempts[0].correct for t in traces]
    r2 = [t.attempts[1].correct for t in traces]
    return {"traces": len(traces), "no_signal": no_signal([r1, r2]),
            "accuracy_t1": sum(r1) / n, "accuracy_t2": sum(r2) / n,
            "i_to_c": sum((not a) and b for a, b in zip(r1, r2)) / n,
            "c_to_i": sum(a and not b for a, b in zip(r1, r2)) / n,
            "grading_errors": sum(a.verdict.status is Status.ERROR for t in traces for a in t.attempts)}


@dataclass
class _Fit:
    """The iteration being trained on: what a state saved mid-fit holds to continue it."""

    examples: list[TwoAttempts]
    stats: dict[str, Any]
    """The sampling statistics (trace_stats) its log rows carry."""
    updates: int
    done: int = 0
    order: list[int] = field(default_factory=list)
    """What is left of the current epoch's shuffled example indices."""

    def plain(self) -> dict[str, Any]:
        """Plain lists and dicts: what torch.load(weights_only=True) reads back."""
        return {"examples": [dataclasses.asdict(e) for e in self.examples], "stats": self.stats,
                "updates": self.updates, "done": self.done, "order": self.order}

    @classmethod
    def from_plain(cls, values: dict[str, Any]) -> "_Fit":
        return cls([TwoAttempts(**e) for e in values["examples"]], dict(values["stats"]), values["updates"],
                   values["done"], list(values["order"]))


_COUNTERS = ("batches_sampled", "traces_sampled", "examples_kept", "updates_skipped")


class SftRun(TrainingMethod):
    """An SFT baseline on a TrainingRun (`run`): sampling iterations, example selection and supervised steps, with
    the iteration in progress and the budget used so far. Its counters are part of the run's resumable state, so
    `train` continues where a state was saved."""

    signal_unit = "sampling iterations"

    def __init__(self, config: SftConfig, trainer: str, task: Task | None = None):
        self.config = config
        self.name = trainer
        self.pair_rng = random.Random(config.seed + 1)
        """Pair-SFT's y2 draws: a stream of their own, so the pairs do not depend on how many problems were drawn."""
        self.iteration = 0
        """The last iteration whose examples were chosen (0: none yet)."""
        self.current: _Fit | None = None
        """That iteration's fit while it has updates left to take; None once done."""
        self.batches_sampled = 0
        self.traces_sampled = 0
        self.examples_kept = 0
        self.updates_skipped = 0
        self.run = TrainingRun(config, self, task)
        """The run skeleton; its rng draws the problem stream and the minibatch order."""

    def state(self) -> dict[str, Any]:
        return {"pair_rng": self.pair_rng.getstate(), "iteration": self.iteration,
                "fit": None if self.current is None else self.current.plain(),
                "counters": {name: getattr(self, name) for name in _COUNTERS}}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.pair_rng.setstate(state["pair_rng"])
        self.iteration = state["iteration"]
        self.current = _Fit.from_plain(state["fit"]) if state["fit"] is not None else None
        for name in _COUNTERS:
            setattr(self, name, state["counters"][name])

    def train(self, plan: Sequence[tuple[int, int]], select: Callable[[list[Trace]], list[TwoAttempts]],
              progress: Progress | None = None) -> None:
        """Iteration i (from 1) samples plan[i-1][0] rollout batches from the current model, keeps select(traces)
        and takes plan[i-1][1] optimiser steps on them. A resumed run skips what its state had done: it never
        samples an iteration again."""
        run = self.run
        if self.iteration == 0 and run.evaluator.due(0):
            self.evaluate()  # the base model
        for number, (batches, updates) in enumerate(plan, start=1):
            if number < self.iteration or (number == self.iteration and self.current is None):
                continue
            if number > self.iteration:
                traces = self.sample(batches, progress)
                stats = trace_stats(traces)
                run.signal.observe(stats["no_signal"], count_attempts(traces, self.config.generation.max_new_tokens))
                self.begin(number, select(traces), updates, stats)
            self.fit(progress)
            if number == len(plan) and run.evaluator.every and run.step % run.evaluator.every:
                self.evaluate()  # the final model, whose step was not on the schedule
            run.save_state(self.iteration)

    def sample(self, batches: int, progress: Progress | None = None) -> list[Trace]:
        """`batches` rollout batches from the current model at the configured temperature, graded: every trace of
        each batch on every process, in one process's order (TrainingRun.sample, whole)."""
        traces: list[Trace] = []
        with phase(progress, "sampling traces", batches) as advance:
            for _ in range(batches):
                problems = self.run.next_problems()
                traces.extend(self.run.sample(problems, self.batches_sampled, whole=True))
                self.batches_sampled += 1
                advance(1)
        self.traces_sampled += len(traces)
        return traces

    def begin(self, iteration: int, examples: list[TwoAttempts], updates: int, stats: dict[str, Any]) -> None:
        """Make `examples` the data of `iteration`, with `updates` optimiser steps to take, and save a state.
        With no examples: no step, one row and a warning saying so."""
        self.iteration = iteration
        self.examples_kept += len(examples)
        self.current = _Fit(examples, stats, updates if examples else 0)
        if not examples and updates > 0:
            message = (f"iteration {iteration}: no training example kept from {stats['traces']} traces; "
                       f"{updates} updates skipped")
            if self.run.main:
                warnings.warn(message, RuntimeWarning, stacklevel=3)
            self.updates_skipped += updates
            self.run.log.append({"kind": "train", "step": self.run.step, **self._common(), "loss": None,
                                 "updates_skipped": updates, "warning": message})
        self.run.save_state(self.iteration)

    def fit(self, progress: Progress | None = None) -> None:
        """The current iteration's remaining optimiser steps on minibatches drawn epoch by epoch from its
        examples, one log row each, with evaluations and states on their schedules."""
        run, fit = self.run, self.current
        size = min(self.config.sft_batch_size, len(fit.examples))
        with phase(progress, f"SFT iteration {self.iteration}", fit.updates) as advance:
            if fit.done:
                advance(fit.done, "resumed")
            while fit.done < fit.updates:
                if len(fit.order) < size:  # a new epoch; a short tail is dropped so no batch repeats an example
                    fit.order = list(range(len(fit.examples)))
                    run.rng.shuffle(fit.order)
                picked, fit.order = fit.order[:size], fit.order[size:]
                row = self._update([fit.examples[i] for i in picked])
                fit.done += 1
                run.log.append({"kind": "train", "step": run.step, **self._common(), **row})
                if run.evaluator.due(run.step):
                    self.evaluate()
                if self.config.save_every and run.step % self.config.save_every == 0:
                    run.save_state(self.iteration)
                advance(1, f"loss {row['loss']:.3f}")
        self.current = None

    def _common(self) -> dict[str, Any]:
        """What every row of the current iteration carries."""
        return {"iteration": self.iteration, "examples": len(self.current.examples),
                "traces_sampled": self.traces_sampled, **self.current.stats}

    def evaluate(self) -> None:
        """The held-out "eval" row of the current model; its stage is the iteration (pair-sft: 1)."""
        iteration = max(self.iteration, 1)
        self.run.evaluate(iteration, iteration=iteration)

    def backward(self, examples: list[TwoAttempts]) -> tuple[torch.Tensor, int]:
        """The gradient of the minibatch `examples`' token-weighted mean attempt-2 NLL (the same list on every
        process), added to the policy's `.grad`; this process's share of that loss, and the minibatch's attempt-2
        tokens.

        Each process scores its slice examples[rank::world]. Its summed attempt-2 NLL is scaled by
        world / (attempt-2 tokens of the whole minibatch), so DDP's average of the processes' gradients is the
        gradient of the whole minibatch's token-weighted mean NLL, as in one process; a plain average of the
        slices' means would weight each token by 1 / (its slice's tokens). The slice is scored in micro-batches
        (harness.training.accumulation) with the same weight, so their gradients add up to the slice's. Every process
        scores as many micro-batches (each forward of a sharded policy is a collective): a process with fewer,
        or with an empty slice (fewer examples than processes), scores one example with weight 0 in their place."""
        run = self.run
        mine = examples[run.rank::run.world]
        batch = encode_two_attempts(run.tokenizer, mine or examples[:1]).to(run.device)
        tokens = int(batch.attempt_masks[1].sum()) if mine else 0
        total = int(run.accelerator.reduce(torch.tensor(tokens, device=run.device), "sum"))
        weight = run.world / max(total, 1) if mine else 0.0
        parts: list[slice | None] = list(run.micro_batches(batch))
        if run.world > 1:
            most = int(run.accelerator.gather(torch.tensor([len(parts)], device=run.device)).max())
            parts += [None] * (most - len(parts))

        def loss_of(part: slice | None) -> torch.Tensor:
            if part is None:
                return attempt2_nll(run.policy, batch.rows(slice(0, 1)))[0] * 0.0
            return attempt2_nll(run.policy, batch.rows(part))[0] * weight

        # DDP: gradients averaged over processes at the last micro-batch's backward
        return run.accumulate(parts, loss_of), total

    def _update(self, examples: list[TwoAttempts]) -> dict[str, Any]:
        """One optimiser step on the minibatch `examples` (the same list on every process): its row."""
        run = self.run
        started = time.perf_counter()
        loss, total = self.backward(examples)
        step = run.update(loss, [e.prompt for e in examples[:2]])
        mean_loss = float(run.accelerator.reduce(loss.to(run.device), "mean"))  # the whole minibatch's mean NLL
        seconds = time.perf_counter() - started
        return {"loss": mean_loss, "batch_examples": len(examples), "attempt2_tokens": total,
                "grad_norm": step.grad_norm, "seconds": round(seconds, 3),
                "tokens_per_s": round(total / seconds, 1) if seconds > 0 else None, **step.sampler}

    def budget(self) -> dict[str, int]:
        """The budget actually used, for trainer_config.json."""
        return {"traces_sampled": self.traces_sampled, "examples_kept": self.examples_kept,
                "updates": self.run.step, "updates_skipped": self.updates_skipped,
                "updates_planned": self.config.updates, "sampling_batches": self.batches_sampled}


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal counts, the larger ones first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
