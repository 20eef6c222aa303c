"""Whether a training step had anything to learn from, and why not (issue #10 item 7).

A policy-gradient step whose traces all earned the same reward has no learning signal: every advantage is
zero after the baseline (what is left is the KL anchor), so the weights barely move, and a run made only of
such steps ends where it started. SCoRe on SmolLM2 did exactly that on arith (no attempt had the "Answer:"
format) and wrote a checkpoint identical to its base without a word. Each log row now says `no_signal`, and a
run whose steps all had none ends with a warning naming the most likely cause, read from the traces.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

from score_bench.harness.rollout import Trace
from score_bench.harness.types import Status

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


def no_signal(rewards: Sequence[Sequence[float]]) -> bool:
    """True when, for every attempt, all traces of the step earned the same reward (`rewards[t]` holds attempt
    t+1's reward of every trace of the whole step): no baseline-corrected advantage is nonzero."""
    return all(len(set(map(float, per_attempt))) <= 1 for per_attempt in rewards)


def likely_cause(counts: AttemptCounts, max_new_tokens: int) -> str:
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
    return "every step's traces earned the same rewards: try larger batches or more samples per problem"


class SignalTracker:
    """Counts, over a run, the steps with and without a learning signal and the attempts' outcomes; `warning()`
    is the end-of-run message when no step had a signal."""

    def __init__(self, max_new_tokens: int, unit: str = "training steps"):
        self.max_new_tokens = max_new_tokens
        self.unit = unit
        self.steps = 0
        self.silent_steps = 0
        self.counts = AttemptCounts()

    def observe(self, silent: bool, counts: AttemptCounts) -> None:
        self.steps += 1
        self.silent_steps += silent
        self.counts.add(counts)

    def warning(self) -> str | None:
        if not self.steps or self.silent_steps < self.steps:
            return None
        return (f"no learning signal in any of the {self.steps} {self.unit} (all their traces earned the same "
                f"reward); likely cause: {likely_cause(self.counts, self.max_new_tokens)}")
