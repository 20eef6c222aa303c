"""The contracts task plugins implement: a Task poses problems and extracts answers, its Verifier grades them. Each
is a small base class whose required methods raise NotImplementedError and whose optional ones have defaults, so
the harness calls them without probing. The harness depends on these, never on a concrete task."""

from __future__ import annotations

from typing import Sequence

from score_bench.harness.contracts.types import Message, Problem, Verdict


class Verifier:
    """Grades extracted answers against problems. Batched so a verifier can spread work over cores."""

    def verify_batch(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        """One verdict per (problem, extracted answer); None means nothing could be extracted."""
        raise NotImplementedError

    def same_answer_batch(self, items: Sequence[tuple[Problem, str, str]]) -> list[bool]:
        """Whether each (problem, a, b) are the same answer to that problem: what majority voting groups by
        (harness.grading.voting). By default, equal stripped text; a verifier with a rule of its own (math
        equivalence, per-test outcomes of programs) overrides it."""
        return [a.strip() == b.strip() for _, a, b in items]

    def grouping(self) -> str:
        """How same_answer_batch groups answers, as scale.json records it."""
        if type(self).same_answer_batch is Verifier.same_answer_batch:
            return "equal stripped text (the verifier offers no same_answer_batch)"
        return f"{type(self).__name__}.same_answer_batch"


class Task:
    """A set of verifiable problems with the prompts that pose them and the verifier that grades them (a plugin of
    the entry-point group `score_bench.tasks`)."""

    name: str
    splits: tuple[str, ...]
    correction_instruction: str
    """Appended as a new user turn after each attempt to ask for the next one."""

    def problems(self, split: str) -> list[Problem]:
        raise NotImplementedError

    def first_prompt(self, problem: Problem) -> list[Message]:
        """The chat messages that ask for attempt 1."""
        raise NotImplementedError

    def extract(self, problem: Problem, response: str) -> str | None:
        """Strict: the answer (or program) in the format the prompt asks for, or None when there is none.
        A copy of the format's placeholder ("answer" from "$answer$") is none."""
        raise NotImplementedError

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """Flexible: the answer wherever the response puts it (math: the last answer-like expression; arith:
        the last number; code: any definition of the function), or None. Reported beside the strict accuracy,
        as lm-evaluation-harness reports flexible-extract beside strict-match. By default the strict extraction:
        a task without a flexible one is graded the same in both modes."""
        return self.extract(problem, response)

    @property
    def verifier(self) -> Verifier:
        raise NotImplementedError
