"""The data that flows task -> rollout -> verifier -> metrics: problems, chat messages and verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping

from score_bench.harness.contracts.errors import InputError

Message = dict[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": str}."""


@dataclass(frozen=True)
class Problem:
    """One task item. `reference` is what the verifier compares against (an answer, or test code)."""

    id: str
    question: str
    reference: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    fixed_first_attempt: str | None = None
    """A given first attempt (score-toy's original_answer), for repair-only evaluation and Pair-SFT data."""


def check_unique(keys: Iterable[tuple[str, str]], what: str = "problem id") -> None:
    """Refuse task data that repeats a problem: `keys` are (key, where it was read, e.g. "FILE:LINE"); a key seen
    twice is an InputError naming it and both places (a repeat would silently replace or double the first)."""
    seen: dict[str, str] = {}
    for key, where in keys:
        if key in seen:
            raise InputError(f"{what} {key!r} is repeated: {seen[key]} and {where}; each problem must appear once")
        seen[key] = where


class Status(str, Enum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    ERROR = "error"
    """The grader itself failed on this sample (not the response's fault); counted as not correct."""


@dataclass(frozen=True)
class Verdict:
    status: Status
    extracted: str | None = None
    detail: str = ""
    """Why: the failing assertion, the timeout, the parse error. Capped when written to disk."""

    @property
    def correct(self) -> bool:
        return self.status is Status.CORRECT
