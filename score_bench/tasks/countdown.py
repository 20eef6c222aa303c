"""countdown: given a few numbers and a target, write an arithmetic expression over the numbers that equals it.

Dataset: none is downloaded; every instance is generated here, so no licence applies beyond this project's own
(Apache-2.0). The setup is TinyZero's Countdown-Tasks-3to4 (Jiayi Pan et al. 2025, TinyZero, Apache-2.0 code:
3-4 numbers, each used exactly once, + - * / and parentheses, an integer target), the task of Gandhi et al.
2025, "Cognitive behaviors that enable self-improving reasoners, or, four habits of highly effective STaRs"
(arXiv 2503.01307). TinyZero's reward runs Python's eval() on the model's text after a character filter; here
the verifier parses it (harness/grading/verifiers/expression.py) and computes with exact fractions.

Instances: a count of numbers drawn uniformly from [min_count, max_count], that many numbers uniformly from
[min_number, max_number], a target uniformly from [min_target, max_target] and not among the numbers (so a
copied number is never an answer); kept only when the solver below reaches the target under the usage rule.
`keep_rate` measures the share of such random candidates that are kept. Defaults: 3-4 numbers of 1-9, targets
1-100 (small enough for the embedded base model to compute; TinyZero's own range is
`--task-option max_number=99`).

Splits never overlap: an instance goes to train or test by a hash of its canonical form (the sorted numbers and
the target), whatever the seed, the options or the order the numbers are shown in. The seed only chooses which
instances of a split are drawn, and in what order. The numbers are shown in an order fixed by the same hash, so
an id ("countdown/test/3,5,7=22") always names the same question.

The usage rule (`usage`): "exactly_once" by default (TinyZero's), or "at_most_once".

The solver: exhaustive search over every expression tree on the numbers (each split of a set of numbers into
two parts, the six ways to combine two values with + - * /), with exact fractions, so intermediate fractions
count (8/(3-8/3) = 24). Reachable targets are cached per multiset of numbers.
"""

from __future__ import annotations

import hashlib
import random
import re
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Iterator, Literal

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem
from score_bench.harness.grading.verifiers.expression import normalise
from score_bench.tasks._placeholders import is_placeholder

DEFAULT_PROMPT = '{question} End your response with "Answer: <expression>".'
DEFAULT_CORRECTION = ('There might be an error in the solution above. Please correct the error, if any, and rewrite '
                      'the solution. End your response with "Answer: <expression>".')
"""The SPEC's MATH correction instruction, shortened as arith's is."""
RULES = {"exactly_once": "Use each number exactly once", "at_most_once": "Use each number at most once"}

TEST_PERCENT = 30
"""Share of instances (by hash) held out for test: with 3 numbers of 1-9 and targets up to 100 there are only
1,926 solvable instances, and 30% by hash (532 of them) leaves room for the 250 three-number problems of 500
test problems, and for the 500 of 1,000."""
MAX_MISSES = 100_000
"""Candidates drawn in a row without a new instance before a split counts as exhausted (each costs microseconds
once its multiset is solved; a split with instances left finds one within a few hundred)."""

_ANSWER = re.compile(r"Answer:[ \t]*((?:(?!Answer:)[^\n])*)")
"""The text after an "Answer:" marker, up to the line's end or its next marker."""
_SPAN = re.compile(r"[0-9(][0-9+\-*/() \t]*")
_HAS_OPERATION = re.compile(r"\d[ \t)]*[+\-*/][ \t(]*\d")
PLACEHOLDERS = frozenset({"expression", "yourexpression", "answer", "equation"})
"""The prompt's slot ("<expression>") and near copies: never an answer."""


class CountdownTask(Task):
    """Countdown instances with the rules as task options, graded by harness.grading.verifiers.expression."""

    name = "countdown"
    splits = ("train", "test")

    def __init__(self, *, seed: int = 0, n_test: int = 500, n_train: int = 1000, min_count: int = 3,
                 max_count: int = 4, min_number: int = 1, max_number: int = 9, min_target: int = 1,
                 max_target: int = 100, usage: Literal["exactly_once", "at_most_once"] = "exactly_once",
                 prompt: str = DEFAULT_PROMPT, correction_instruction: str = DEFAULT_CORRECTION):
        if not 2 <= min_count <= max_count <= 5:
            raise InputError(f"countdown needs 2 <= min_count <= max_count <= 5, got {min_count}, {max_count}")
        if not 1 <= min_number <= max_number:
            raise InputError(f"countdown needs 1 <= min_number <= max_number, got {min_number}, {max_number}")
        if not 1 <= min_target <= max_target:
            raise InputError(f"countdown needs 1 <= min_target <= max_target, got {min_target}, {max_target}")
        if usage not in RULES:
            raise InputError(f"countdown usage must be one of {', '.join(RULES)}, got '{usage}'")
        if int(n_test) < 1 or int(n_train) < 1:
            raise InputError(f"countdown split sizes must be positive, got n_test={n_test}, n_train={n_train}")
        if "{question}" not in prompt:
            raise InputError("countdown prompt must contain '{question}'")
        self.seed, self.usage = int(seed), usage
        self.counts = (min_count, max_count)
        self.number_range, self.target_range = (min_number, max_number), (min_target, max_target)
        self.sizes = {"train": int(n_train), "test": int(n_test)}
        self.prompt, self.correction_instruction = prompt, correction_instruction
        self._cache: dict[str, list[Problem]] = {}

    # -- instances ------------------------------------------------------------------------------------------
    @staticmethod
    def split_of(numbers, target: int) -> str:
        """'test' or 'train' for an instance: a fixed function of its sorted numbers and target, never of the
        seed, the options or the order the numbers are given in."""
        return "test" if _hash(numbers, target) % 100 < TEST_PERCENT else "train"

    def solvable(self, numbers, target: int) -> bool:
        return target in solutions(tuple(sorted(numbers)), self.usage, *self.target_range)

    def problem(self, numbers, target: int) -> Problem:
        """The problem for an instance (in whichever split the hash puts it); its reference is one solution."""
        key = tuple(sorted(numbers))
        shown = list(key)
        random.Random(_hash(key, target)).shuffle(shown)
        rule = RULES[self.usage]
        return Problem(
            id=f"countdown/{self.split_of(key, target)}/{','.join(map(str, key))}={target}",
            question=f"Using the numbers {', '.join(map(str, shown))}, make {target}. {rule}, with + - * / and "
                     f"parentheses.",
            reference=solutions(key, self.usage, *self.target_range).get(target, ""),
            metadata={"numbers": shown, "target": target, "usage": self.usage},
        )

    def problems(self, split: str) -> list[Problem]:
        if split not in self.splits:
            raise InputError(f"countdown has splits {', '.join(self.splits)}, not '{split}'")
        if split not in self._cache:
            rng = random.Random(f"countdown:{self.seed}:{split}")
            self._cache[split] = [self.problem(n, t) for n, t in self._draw(split, self.sizes[split], rng)]
        return list(self._cache[split])

    def sample_instances(self, split: str, rng: random.Random) -> Iterator[tuple[tuple[int, ...], int]]:
        """An endless stream of solvable (numbers, target) instances of `split`, with repeats: the embedded
        model's pre-training draws from the train split this way, so it never sees a test instance."""
        while True:
            count = rng.randint(*self.counts)
            numbers, target = self._candidate(count, rng)
            if self.split_of(numbers, target) == split and self.solvable(numbers, target):
                yield numbers, target

    def keep_rate(self, candidates: int = 10_000, seed: int = 0) -> float:
        """Share of random candidates (drawn as instances are, before the solver's check) that are solvable."""
        rng = random.Random(f"countdown-keep-rate:{seed}")
        kept = sum(self.solvable(*self._candidate(rng.randint(*self.counts), rng)) for _ in range(candidates))
        return kept / candidates

    def _candidate(self, count: int, rng: random.Random) -> tuple[tuple[int, ...], int]:
        """Random numbers (in drawn order) and a target not among them."""
        while True:
            numbers = tuple(rng.randint(*self.number_range) for _ in range(count))
            target = rng.randint(*self.target_range)
            if target not in numbers:
                return numbers, target

    def _draw(self, split: str, n: int, rng: random.Random) -> list[tuple[tuple[int, ...], int]]:
        """n distinct instances of `split`: for each, a count drawn uniformly, then candidates of that count until
        a solvable one of the split not drawn before."""
        seen: dict[tuple[tuple[int, ...], int], None] = {}
        for _ in range(n):
            count = rng.randint(*self.counts)
            for _ in range(MAX_MISSES):
                numbers, target = self._candidate(count, rng)
                key = (tuple(sorted(numbers)), target)
                if key not in seen and self.split_of(*key) == split and self.solvable(*key):
                    seen[key] = None
                    break
            else:
                found = sum(len(k[0]) == count for k in seen)
                raise InputError(f"countdown {split} split: no new instance with {count} numbers after "
                                 f"{MAX_MISSES} candidates ({found} drawn, {n} asked for); lower n_{split} or "
                                 f"widen the ranges")
        return list(seen)

    # -- prompting and grading ------------------------------------------------------------------------------
    def first_prompt(self, problem: Problem) -> list[Message]:
        return [{"role": "user", "content": self.prompt.format(question=problem.question)}]

    def extract(self, problem: Problem, response: str) -> str | None:
        """Strict: the expression after the last "Answer:" marker, without a trailing period, $...$ or markdown
        bold; of "expression = value" the side with an operator (a claimed value is not graded). None when
        absent or when it is the prompt's placeholder ("<expression>")."""
        found = _ANSWER.findall(response)
        if not found:
            return None
        answer = found[-1].strip(" \t*").rstrip(".").strip(" \t*$")
        if "=" in answer:
            sides = [side.strip(" \t$") for side in answer.split("=")]
            answer = next((side for side in sides if _HAS_OPERATION.search(normalise(side))), sides[0])
        return answer if answer and not is_placeholder(answer, PLACEHOLDERS) else None

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """Flexible: the last expression-looking span of the response (digits, + - * /, parentheses, with at
        least one operation), the unicode and LaTeX operators read as in the verifier."""
        spans = [span.strip() for span in _SPAN.findall(normalise(response)) if _HAS_OPERATION.search(span)]
        return spans[-1] if spans else None

    @cached_property
    def verifier(self):
        from score_bench.harness.grading.verifiers.expression import ExpressionVerifier

        return ExpressionVerifier()


def _hash(numbers, target: int) -> int:
    key = f"countdown:{','.join(map(str, sorted(numbers)))}:{target}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


# -- the solver -------------------------------------------------------------------------------------------------
Value = int | Fraction
"""An exact value: an int where it is whole (int arithmetic is many times faster than Fraction's), else a
Fraction. Equal values hash equal, so the tables below hold each value once."""


def _tables(numbers: tuple[int, ...]) -> list[dict[Value, str]]:
    """For every subset of `numbers` (a bit mask), each exact value an expression using exactly that subset
    reaches, with one such expression. Each pair of values is combined once per unordered split of a subset."""
    tables: list[dict[Value, str]] = [{} for _ in range(1 << len(numbers))]
    for i, number in enumerate(numbers):
        tables[1 << i][number] = str(number)
    for mask in range(1, len(tables)):
        if mask & (mask - 1) == 0:
            continue
        out, part = tables[mask], (mask - 1) & mask
        while part:
            rest = mask ^ part
            if part < rest:
                for a, ea in tables[part].items():
                    for b, eb in tables[rest].items():
                        _combine(out, a, _wrap(ea), b, _wrap(eb))
            part = (part - 1) & mask
    return tables


def _combine(out: dict[Value, str], a: Value, ea: str, b: Value, eb: str) -> None:
    """Add a+b, a*b, a-b, b-a, a/b and b/a to `out`; an expression is written only for a value not there yet."""
    for value, left, symbol, right in ((a + b, ea, "+", eb), (a * b, ea, "*", eb), (a - b, ea, "-", eb),
                                       (b - a, eb, "-", ea), (_divide(a, b), ea, "/", eb),
                                       (_divide(b, a), eb, "/", ea)):
        if value is not None:
            value = _whole(value)
            if value not in out:
                out[value] = left + symbol + right


def _divide(a: Value, b: Value) -> Value | None:
    if not b:
        return None
    if type(a) is int and type(b) is int:
        return a // b if a % b == 0 else Fraction(a, b)
    return Fraction(a) / b


def _whole(value: Value) -> Value:
    return value.numerator if type(value) is Fraction and value.denominator == 1 else value


def _wrap(expression: str) -> str:
    return expression if expression.isdigit() else f"({expression})"


def _usable(tables: list[dict[Value, str]], usage: str) -> list[dict[Value, str]]:
    """The tables an answer may draw from: the full set (exactly once) or any non-empty subset (at most once)."""
    return tables[-1:] if usage == "exactly_once" else tables[1:]


@lru_cache(maxsize=20_000)
def solutions(numbers: tuple[int, ...], usage: str, low: int, high: int) -> dict[int, str]:
    """For each integer in [low, high] that an expression over the sorted `numbers` reaches under `usage`, one
    such expression (the table a countdown task draws its instances and references from; do not mutate)."""
    found: dict[int, str] = {}
    for table in _usable(_tables(numbers), usage):
        for value, expression in table.items():
            if type(value) is int and low <= value <= high:
                found.setdefault(value, expression)
    return found


def solve(numbers, target: int, usage: str = "exactly_once") -> str | None:
    """One expression over `numbers` that equals `target` under `usage` ("(5*3)+7"), or None if none does."""
    for table in _usable(_tables(tuple(numbers)), usage):
        if target in table:
            return table[target]
    return None
