"""score-toy: short factual questions, each with a wrong first answer and its correction.

Dataset: the SCoRe toy CSV format of the seed project (columns category, question, original_answer, correct_answer,
optional answer). Default: an English set of 60 rows written for score-bench (Apache-2.0, in tasks/data/); any CSV
path in that format loads too (a row whose original_answer already equals correct_answer is keyed on the
whole correct_answer), e.g. the seed's 59-row Korean set. original_answer doubles as a fixed first attempt
for repair-only evaluation (like the paper's MBPP-R) and as Pair-SFT data. Paper: Kumar et al. 2024 (SCoRe).
"""

from __future__ import annotations

import csv
import hashlib
from importlib.resources import files
from pathlib import Path

from score_bench.harness.errors import InputError
from score_bench.harness.types import Message, Problem
from score_bench.harness.verifiers.key_answer import KeyAnswerVerifier, normalise, without_restatement

REQUIRED_COLUMNS = ("category", "question", "original_answer", "correct_answer")
CORRECTION_INSTRUCTION = (
    "There might be an error in the answer above because of lack of understanding of the question. "
    "Please correct the error, if any, and rewrite the answer. Only output the final answer!"
)
SYSTEM_PROMPT = "Answer the question in one short sentence."


def _expand_ascii(ch: str) -> bool:
    """Characters of runs that a difference must not cut: digits and Latin letters ("1392", "Mercury").
    Other scripts expand leftwards only, so Korean particles after a noun stay out of the key."""
    return ch.isascii() and ch.isalnum()


def differing_spans(wrong: str, right: str) -> tuple[str, str]:
    """(wrong span, right span): what remains of each after their common prefix and suffix, widened to whole
    words where the cut falls inside a run of digits or letters."""
    start = 0
    while start < min(len(wrong), len(right)) and wrong[start] == right[start]:
        start += 1
    end = 0
    while end < min(len(wrong), len(right)) - start and wrong[-1 - end] == right[-1 - end]:
        end += 1
    while 0 < start < len(right) and right[start - 1].isalnum() and right[start].isalnum():
        start -= 1
    while end > 0 and _expand_ascii(right[len(right) - end]) and _expand_ascii(right[len(right) - end - 1]):
        end -= 1
    return wrong[start:len(wrong) - end].strip(), right[start:len(right) - end].strip()


class ScoreToyTask:
    """Implements harness.protocols.Task over a score-toy CSV."""

    name = "score-toy"
    splits = ("test",)

    def __init__(self, path: str | Path | None = None, correction_instruction: str = CORRECTION_INSTRUCTION,
                 system_prompt: str = SYSTEM_PROMPT):
        self.path = Path(path) if path else None
        self.correction_instruction = correction_instruction
        self.system_prompt = system_prompt
        self._verifier = KeyAnswerVerifier()

    @property
    def verifier(self) -> KeyAnswerVerifier:
        return self._verifier

    def problems(self, split: str = "test") -> list[Problem]:
        if split not in self.splits:
            raise InputError(f"unknown split '{split}' for task score-toy; available: {', '.join(self.splits)}")
        return [self._problem(row, line) for line, row in self._rows()]

    def _rows(self):
        source = self.path or files("score_bench.tasks") / "data" / "score_toy_en.csv"
        try:
            text = source.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"score-toy data file not found: {source}") from None
        except UnicodeDecodeError as err:
            raise InputError(f"score-toy data file {source} is not UTF-8: {err}") from None
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"score-toy data file {source} lacks column(s) {', '.join(missing)}")
        rows = [(index + 2, row) for index, row in enumerate(reader)]
        if not rows:
            raise InputError(f"score-toy data file {source} has no rows")
        return rows

    def _problem(self, row: dict, line: int) -> Problem:
        wrong_span, right_span = differing_spans(row["original_answer"], row["correct_answer"])
        key = (row.get("answer") or "").strip() or self._derived_key(row, right_span)
        if not key:
            raise InputError(f"score-toy row at line {line}: no key answer (empty answer and correct_answer)")
        digest = hashlib.sha1(row["question"].encode("utf-8")).hexdigest()[:8]
        return Problem(
            id=f"score-toy/{line - 1:03d}-{digest}",
            question=row["question"],
            reference=key,
            metadata={"category": row["category"], "correct_answer": row["correct_answer"], "distractor": wrong_span},
            fixed_first_attempt=row["original_answer"],
        )

    @staticmethod
    def _derived_key(row: dict, right_span: str) -> str:
        """The differing span (or the whole correct answer when nothing differs) less what restates the question:
        the verifier drops restated runs from responses, so the key must not rely on them."""
        span = right_span or row["correct_answer"].strip()
        return without_restatement(normalise(span), normalise(row["question"])) or span

    def first_prompt(self, problem: Problem) -> list[Message]:
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": problem.question}]

    def extract(self, problem: Problem, response: str) -> str | None:
        """The whole response is the answer: a short sentence with no marker to pull out."""
        return response.strip() or None

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """The same as strict: the format asks for no marker, so there is nothing to be lenient about."""
        return self.extract(problem, response)
