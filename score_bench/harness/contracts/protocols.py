"""The contracts plugins implement. The harness depends on these, never on a concrete task or trainer."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from score_bench.harness.contracts.types import Message, Problem, Verdict


@runtime_checkable
class Verifier(Protocol):
    """Grades extracted answers against problems. Batched so a verifier can spread work over cores.

    Optional: `same_answer_batch(items: Sequence[tuple[Problem, str, str]]) -> list[bool]`, whether each
    (problem, a, b) are the same answer to that problem, which majority voting groups by (harness.grading.voting);
    without it, votes group by equal stripped text."""

    def verify_batch(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        """One verdict per (problem, extracted answer); None means nothing could be extracted."""
        ...


@runtime_checkable
class Task(Protocol):
    """A set of verifiable problems with the prompts that pose them and the verifier that grades them."""

    name: str
    splits: tuple[str, ...]
    correction_instruction: str
    """Appended as a new user turn after each attempt to ask for the next one."""

    def problems(self, split: str) -> list[Problem]: ...

    def first_prompt(self, problem: Problem) -> list[Message]:
        """The chat messages that ask for attempt 1."""
        ...

    def extract(self, problem: Problem, response: str) -> str | None:
        """Strict: the answer (or program) in the format the prompt asks for, or None when there is none.
        A copy of the format's placeholder ("answer" from "$answer$") is none."""
        ...

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """Flexible: the answer wherever the response puts it (math: the last answer-like expression; arith:
        the last number; code: any definition of the function), or None. Reported beside the strict accuracy,
        as lm-evaluation-harness reports flexible-extract beside strict-match. A task without this method is
        graded the same in both modes."""
        ...

    @property
    def verifier(self) -> Verifier: ...
