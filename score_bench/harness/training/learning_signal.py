"""Whether a training step had anything to learn from, and why not (issue #10 item 7).

A policy-gradient step whose traces all earned the same reward has no learning signal: every advantage is
zero after the baseline (what is left is the KL anchor), so the weights barely move, and a run made only of
such steps ends where it started. SCoRe on SmolLM2 did exactly that on arith (no attempt had the "Answer:"
format) and wrote a checkpoint identical to its base without a word. Each log row now says `no_signal`, and a
run whose steps all had none ends with a warning naming the most likely cause, read from the traces.

The check looks at the groups the baseline averages over: with a per-problem baseline, a step whose problems each
earned one reward across their samples has no signal even when the batch as a whole is mixed (issue #20 item 7).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

from score_bench.harness.contracts.types import Status
from score_bench.harness.generation.rollout import Trace

__all__ = ["AttemptCounts", "count_attempts", "no_signal", "likely_cause", "SignalTracker"]


@dataclass
class AttemptCounts:
    """How a step's attempts went: graded, extracted, cut at max_new_tokens, correct, failed to grade."""

    attempts: int = 0
    extracted: int = 0
    cut: int = 0
    correct: int = 0
    errors: int = 0

    def add(self, other: "AttemptCounts") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_list(self) -> list[int]:
        return [getattr(self, f.name) for f in fields(self)]

    @classmethod
    def from_list(cls, values: Sequence[int]) -> "AttemptCounts":
        return cls(*(int(v) for v in values))


def count_attempts(traces: Sequence[Trace], max_new_tokens: int) -> AttemptCounts:
    """The counts over every model-written attempt of `traces`."""
    counts = AttemptCounts()
    for trace in traces:
        for attempt in trace.attempts:
            if attempt.given:
                continue
            counts.attempts += 1
            counts.extracted += attempt.extracted is not None
            counts.cut += attempt.n_tokens >= max_new_tokens
            counts.correct += attempt.verdict.status is Status.CORRECT
            counts.errors += attempt.verdict.status is Status.ERROR
    return counts


UNIFORM_GROUPS = ("every problem's samples earned the same reward; more samples per problem or a batch baseline "
                  "(with samples_per_problem=1 the baseline is over the whole batch)")
"""The cause when the step as a whole was mixed but the per-problem baseline cancelled every advantage."""


def no_signal(rewards: Sequence[Sequence[float]], group_size: int | None = None, baseline: str = "mean") -> bool:
    """True when no baseline-corrected advantage of the step is nonzero. `rewards[t]` holds attempt t+1's reward
    of every trace of the step, in the order the baseline groups them; `baseline` is how the trainer corrects them
    (trainers/_losses.baseline): "mean" and "rloo" subtract a value from each group of `group_size` consecutive
    traces (None: the whole step is one group), so a group whose traces all earned one reward has no signal
    (rloo over groups of one subtracts nothing); "none" subtracts nothing, so only rewards of 0 have none."""
    for per_attempt in rewards:
        values = [float(r) for r in per_attempt]
        if baseline == "none" or (baseline == "rloo" and group_size == 1):
            if any(values):
                return False
            continue
        size = group_size or max(len(values), 1)
        if any(len(set(values[start:start + size])) > 1 for start in range(0, len(values), size)):
            return False
    return True


def likely_cause(counts: AttemptCounts, max_new_tokens: int, uniform_groups: bool = False) -> str:
    """The most likely reason a run's attempts all earned the same reward, with what to check."""
    if counts.attempts == 0:
        return "no attempt was sampled"
    if counts.errors == counts.attempts:
        return "every attempt failed to grade: check the verifier (grading_errors in the log)"
    if counts.extracted == 0:
        cut = f"; {counts.cut} of {counts.attempts} attempts were cut at max_new_tokens={max_new_tokens}" \
            if counts.cut else ""
        return f"no attempt was extracted: check max_new_tokens and the answer format{cut}"
    if counts.correct == counts.attempts:
        return "every attempt was correct: the problems are too easy for the model, so there is nothing to learn"
    if counts.correct == 0:
        return (f"no attempt was correct ({counts.extracted} of {counts.attempts} extracted): the problems are too "
                "hard for the model; try easier task options or `reward=flexible`")
    if uniform_groups:
        return UNIFORM_GROUPS
    return "every step's traces earned the same rewards: try larger batches or more samples per problem"


class SignalTracker:
    """Counts, over a run, the steps with and without a learning signal and the attempts' outcomes; `warning()`
    is the end-of-run message when no step had a signal."""

    def __init__(self, max_new_tokens: int, unit: str = "training steps"):
        self.max_new_tokens = max_new_tokens
        self.unit = unit
        self.steps = 0
        self.silent_steps = 0
        self.uniform_group_steps = 0
        """Silent steps whose rewards were mixed across the step but uniform within each baseline group."""
        self.counts = AttemptCounts()

    def observe(self, silent: bool, counts: AttemptCounts, step_mixed: bool = False) -> None:
        """One step: `silent` as no_signal found it, and `step_mixed` when the step's rewards as a whole were
        not all equal (so a silent step lost its signal to the per-problem groups)."""
        self.steps += 1
        self.silent_steps += silent
        self.uniform_group_steps += silent and step_mixed
        self.counts.add(counts)

    def warning(self) -> str | None:
        if not self.steps or self.silent_steps < self.steps:
            return None
        grouped = self.uniform_group_steps > 0
        same = "within each baseline group, all traces" if grouped else "all their traces"
        return (f"no learning signal in any of the {self.steps} {self.unit} ({same} earned the same reward); "
                f"likely cause: {likely_cause(self.counts, self.max_new_tokens, grouped)}")
