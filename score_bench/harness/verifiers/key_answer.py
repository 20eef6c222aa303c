"""Short-answer grading: the response must state the key answer and must not also state the known wrong one.

Matching is on normalised text: Unicode NFKC, case-folded, signs and operators (+ - ± / ^ and a decimal point
between digits) kept as their own tokens, other punctuation folded into spaces. A key that starts or ends with
a Latin letter or digit must not touch another there ("1392" does not match inside "13920", "au" not inside
"australia"); other scripts have no such edge (Korean particles follow a noun unspaced).
Runs of three or more tokens that the response copies from the question are removed before matching, so
restating "144 divided by 12" does not state the answer 12. The distractor rule (Problem.metadata["distractor"],
e.g. the wrong span of a given first attempt) stops a response that lists both candidates from scoring: an RL
trainer would otherwise learn to hedge.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from typing import Sequence

from score_bench.harness.types import Problem, Status, Verdict

KEPT_SYMBOLS = "+-±/^"
RESTATED_RUN = 3
"""Tokens a copied run needs before it counts as restating the question (shorter runs are often the answer)."""


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("−", "-")
    out = []
    for i, ch in enumerate(text):
        if ch.isalnum():
            out.append(ch)
        elif ch in KEPT_SYMBOLS:
            out.append(f" {ch} ")
        elif ch == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
            out.append(ch)
        else:
            out.append(" ")
    return " ".join("".join(out).split())


def without_restatement(response: str, question: str) -> str:
    """The normalised response minus every run of RESTATED_RUN or more tokens copied from the question."""
    r_tokens, q_tokens = response.split(), question.split()
    keep = [True] * len(r_tokens)
    for block in SequenceMatcher(None, q_tokens, r_tokens, autojunk=False).get_matching_blocks():
        if block.size >= RESTATED_RUN:
            keep[block.b:block.b + block.size] = [False] * block.size
    return " ".join(token for token, kept in zip(r_tokens, keep) if kept)


def _ascii_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _states(text: str, needle: str) -> bool:
    if not needle:
        return False
    before = r"(?<![a-z0-9])" if _ascii_word(needle[0]) else ""
    after = r"(?![a-z0-9])" if _ascii_word(needle[-1]) else ""
    return re.search(before + re.escape(needle) + after, text) is not None


class KeyAnswerVerifier:
    """Implements harness.protocols.Verifier for tasks whose Problem.reference is a short key answer."""

    def verify_batch(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        return [self._verify(problem, answer) for problem, answer in items]

    @staticmethod
    def same_answer_batch(pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """Whether each (a, b) are the same short answer: equal after normalisation (harness.voting groups by it)."""
        return [normalise(a) == normalise(b) for a, b in pairs]

    @staticmethod
    def _verify(problem: Problem, answer: str | None) -> Verdict:
        if answer is None or not answer.strip():
            return Verdict(Status.INCORRECT, answer, "empty response")
        key = normalise(problem.reference)
        if not key:
            return Verdict(Status.ERROR, answer, f"problem {problem.id} has an empty key answer")
        said = without_restatement(normalise(answer), normalise(problem.question))
        if not _states(said, key):
            return Verdict(Status.INCORRECT, answer, f"key answer {problem.reference!r} not stated")
        distractor = normalise(str(problem.metadata.get("distractor") or ""))
        if distractor and not _states(key, distractor) and _states(said, distractor):
            return Verdict(Status.INCORRECT, answer, f"also states the wrong answer {problem.metadata['distractor']!r}")
        return Verdict(Status.CORRECT, answer, "")
