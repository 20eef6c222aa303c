"""score-toy: short factual questions, each with a wrong first answer and its correction.

Dataset: the SCoRe toy CSV format of the seed project (columns category, question, original_answer, correct_answer,
optional answer and wrong_answer). Built in (tasks/data/, `language`): "en", 60 rows written for score-bench
(Apache-2.0), the default; "ko", the seed's 59-row Korean set with explicit answer and wrong_answer columns
and one typo corrected (tasks/data/README.md says what changed). Any CSV path in that format loads too; rows
without an answer are keyed on the part of correct_answer that differs from original_answer (the whole
correct_answer when they are equal), less restated question words and trailing Korean particles.
original_answer doubles as a fixed first attempt for repair-only evaluation (like the paper's MBPP-R) and as
Pair-SFT data. Paper: Kumar et al. 2024 (SCoRe).
"""

from __future__ import annotations

import csv
import hashlib
from importlib.resources import files
from pathlib import Path

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem, check_unique
from score_bench.harness.grading.verifiers.key_answer import (KeyAnswerVerifier, is_hangul, normalise, strip_particles,
                                                              without_restatement)
from score_bench.harness.runtime.input_files import read_text

REQUIRED_COLUMNS = ("category", "question", "original_answer", "correct_answer")
CORRECTION_INSTRUCTION = (
    "There might be an error in the answer above because of lack of understanding of the question. "
    "Please correct the error, if any, and rewrite the answer. Only output the final answer!"
)
SYSTEM_PROMPT = "Answer the question in one short sentence."
BUILT_IN = {"en": "score_toy_en.csv", "ko": "score_toy_ko.csv"}
"""Built-in sets by language, files under tasks/data/."""


def _same_run(a: str, b: str) -> bool:
    """Whether a difference must not cut between a and b: both Latin letters or digits ("1392", "Mercury"),
    or both Hangul ("유교였습니다": the particles are stripped from the key afterwards, see strip_particles)."""
    return (a.isascii() and a.isalnum() and b.isascii() and b.isalnum()) or (is_hangul(a) and is_hangul(b))


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
    while end > 0 and _same_run(right[len(right) - end - 1], right[len(right) - end]):
        end -= 1
    return wrong[start:len(wrong) - end].strip(), right[start:len(right) - end].strip()


class ScoreToyTask(Task):
    """Implements harness.contracts.protocols.Task over a score-toy CSV."""

    name = "score-toy"
    splits = ("test",)

    def __init__(self, path: str | Path | None = None, correction_instruction: str = CORRECTION_INSTRUCTION,
                 system_prompt: str = SYSTEM_PROMPT, language: str | None = None):
        if language is not None and language not in BUILT_IN:
            raise InputError(f"score-toy has built-in sets {', '.join(BUILT_IN)}, not language '{language}'")
        if language is not None and path:
            raise InputError("score-toy takes a CSV path or a built-in language, not both")
        self.path = Path(path) if path else None
        self.language = language
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
        source = self.path or files("score_bench.tasks") / "data" / BUILT_IN[self.language or "en"]
        if self.path:
            text = read_text(self.path, "score-toy data file", encoding="utf-8-sig")
        else:
            text = source.read_text(encoding="utf-8-sig")
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"score-toy data file {source} lacks column(s) {', '.join(missing)}")
        rows = [(index + 2, row) for index, row in enumerate(reader)]
        if not rows:
            raise InputError(f"score-toy data file {source} has no rows")
        # A problem's id carries its line, so a repeated problem shows as a repeated question.
        check_unique(((row["question"], f"{source} line {line}") for line, row in rows), "question")
        return rows

    def _problem(self, row: dict, line: int) -> Problem:
        wrong_span, right_span = differing_spans(row["original_answer"], row["correct_answer"])
        key = (row.get("answer") or "").strip() or self._derived_key(row, right_span)
        if row.get("wrong_answer") is not None:  # an explicit column, possibly empty (no known wrong answer)
            distractor = row["wrong_answer"].strip()
        else:
            distractor = strip_particles(wrong_span.rstrip(" .!?"))
        if not key:
            raise InputError(f"score-toy row at line {line}: no key answer (empty answer and correct_answer)")
        digest = hashlib.sha1(row["question"].encode("utf-8")).hexdigest()[:8]
        return Problem(
            id=f"score-toy/{line - 1:03d}-{digest}",
            question=row["question"],
            reference=key,
            metadata={"category": row["category"], "correct_answer": row["correct_answer"], "distractor": distractor},
            fixed_first_attempt=row["original_answer"],
        )

    @staticmethod
    def _derived_key(row: dict, right_span: str) -> str:
        """The differing span (or the whole correct answer when nothing differs) less what restates the question
        (the verifier drops restated runs from responses, so the key must not rely on them) and less the
        particles Korean attaches to its last word ("32입니다" -> "32")."""
        span = right_span or row["correct_answer"].strip()
        return strip_particles(without_restatement(normalise(span), normalise(row["question"])) or span)

    def first_prompt(self, problem: Problem) -> list[Message]:
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": problem.question}]

    def extract(self, problem: Problem, response: str) -> str | None:
        """The whole response is the answer: a short sentence with no marker to pull out."""
        return response.strip() or None

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """The same as strict: the format asks for no marker, so there is nothing to be lenient about."""
        return self.extract(problem, response)
