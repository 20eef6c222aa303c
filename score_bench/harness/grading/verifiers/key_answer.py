"""Short-answer grading: the response must state the key answer and must not also state the known wrong one.

Matching is on normalised text: Unicode compatibility forms folded and accents dropped (NFKD, combining marks
removed, then NFC so Hangul syllables recompose: "García Márquez" states "Garcia Marquez"), case-folded, signs
and operators (+ - ± / ^ and a decimal point between digits) kept as their own tokens, other punctuation
folded into spaces.

Keys match whole words, in any script that separates words ("au" not inside "australia", "1392" not inside
"13920"). Two refinements:
- A key edged by a Latin letter or digit is bounded only by other Latin letters and digits there, so "32입니다"
  and "pH는" state 32 and pH (Korean writes particles and counters straight after them).
- A key ending in Hangul may be followed by a particle or copula ("유교가", "목성입니다", "유입니다"), but not by
  any other syllable: the one-syllable key 유 does not match inside 유교, nor 질 inside 질소. A key inside a
  longer noun is not the key. (A noun that is key + a syllable that is also a particle, like 유도 = 유 + 도,
  cannot be told apart by characters alone; it counts.)
Scripts written without spaces (Han, kana, Thai, ...) have no character-level word edge and match anywhere.

Every run of three or more tokens that the response copies from the question is removed before matching,
however many times it is repeated, so restating "144 divided by 12" does not state the answer 12. The
distractor rule (Problem.metadata["distractor"], e.g. the wrong span of a given first attempt) stops a
response that lists both candidates from scoring: an RL trainer would otherwise learn to hedge.
"""

from __future__ import annotations

import unicodedata
from typing import Sequence

from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem, Status, Verdict

KEPT_SYMBOLS = "+-±/^"
RESTATED_RUN = 3
"""Tokens a copied run needs before it counts as restating the question (shorter runs are often the answer)."""
PARTICLES = (
    # copula and its endings (입니다, 이었습니다, 였다, 이에요, 예요, 이며, 이고, 이라고, 인, 임, ...)
    "이었", "였", "입니", "이다", "다", "이에요", "예요", "이며", "며", "이고", "이라", "라고", "라는", "이란", "란",
    "인", "임", "이죠", "죠", "이지", "지",
    # case and topic particles
    "이", "가", "은", "는", "을", "를", "의", "에", "에서", "에게", "께서", "께", "한테", "로", "으로", "와", "과",
    "도", "만", "까지", "부터", "보다", "처럼", "이나", "나", "이랑", "랑", "들", "뿐", "밖에", "요", "야",
)
"""What may follow a Hangul-final key: Korean particles and copula forms (their first syllables suffice)."""
_UNSPACED = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN")


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("−", "-"))
    text = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch))).casefold()
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
    """The normalised response minus every run of RESTATED_RUN or more tokens that also occurs in the question
    (every copy: a window of RESTATED_RUN tokens found in the question marks all its tokens)."""
    r_tokens, q_tokens = response.split(), question.split()
    n = RESTATED_RUN
    in_question = {tuple(q_tokens[i:i + n]) for i in range(len(q_tokens) - n + 1)}
    keep = [True] * len(r_tokens)
    for i in range(len(r_tokens) - n + 1):
        if tuple(r_tokens[i:i + n]) in in_question:
            keep[i:i + n] = [False] * n
    return " ".join(token for token, kept in zip(r_tokens, keep) if kept)


def is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"


def strip_particles(key: str) -> str:
    """A key without the copula or multi-syllable particle Korean attaches to its last word ("32입니다" -> "32",
    "원자핵이라고" -> "원자핵", "유교였습니다" -> "유교"). One-syllable particles stay: too many nouns end in one
    (주의, 결과, 가을), and a key ending in a particle still matches, only more narrowly."""
    if not key or not is_hangul(key[-1]):
        return key
    for ending in sorted((e for e in _ENDINGS if key.endswith(e) and len(key) > len(e)), key=len, reverse=True)[:1]:
        key = key[:-len(ending)].rstrip()
    return key


_ENDINGS = ("입니다", "이었습니다", "였습니다", "이었다", "였다", "이다", "이에요", "예요", "이라고", "라고", "이라는",
            "라는", "으로", "에서", "에게", "보다", "까지", "부터", "이며", "이고", "이었고", "였고")


def _word_char(ch: str) -> bool:
    """A letter or digit of a script that separates words with spaces."""
    return ch.isalnum() and not unicodedata.name(ch, "").startswith(_UNSPACED)


def _states(text: str, needle: str) -> bool:
    """Whether `needle` occurs in `text` as a whole word (see the module docstring for what bounds a word)."""
    if not needle:
        return False
    start = text.find(needle)
    while start != -1:
        end = start + len(needle)
        if _open_before(text, start, needle[0]) and _open_after(text, end, needle[-1]):
            return True
        start = text.find(needle, start + 1)
    return False


def _open_before(text: str, start: int, first: str) -> bool:
    if start == 0 or not _word_char(first):
        return True
    before = text[start - 1]
    return not (_ascii_word(before) if _ascii_word(first) else _word_char(before))


def _open_after(text: str, end: int, last: str) -> bool:
    if end == len(text) or not _word_char(last):
        return True
    after = text[end]
    if _ascii_word(last):
        return not _ascii_word(after)
    if is_hangul(last) and is_hangul(after):
        return text.startswith(PARTICLES, end)
    return not _word_char(after)


def _ascii_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


class KeyAnswerVerifier(Verifier):
    """Implements harness.contracts.protocols.Verifier for tasks whose Problem.reference is a short key answer."""

    def verify_batch(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        return [self._verify(problem, answer) for problem, answer in items]

    @staticmethod
    def same_answer_batch(items: Sequence[tuple[Problem, str, str]]) -> list[bool]:
        """Whether each (problem, a, b) are the same short answer: equal after normalisation (harness.grading.voting
        groups by it)."""
        return [normalise(a) == normalise(b) for _, a, b in items]

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
