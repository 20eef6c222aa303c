"""The contracts plugins implement. The harness depends on these, never on a concrete task or trainer."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from score_bench.harness.types import Message, Problem, Verdict


@runtime_checkable
class Verifier(Protocol):
    """Grades extracted answers against problems. Batched so a verifier can spread work over cores."""

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
        """The answer (or program) inside a response, or None when there is none."""
        ...

    @property
    def verifier(self) -> Verifier: ...
