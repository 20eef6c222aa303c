"""arith: procedurally generated integer arithmetic ("What is 47 + 38?"), unlimited and seeded.

Dataset: none; every problem is generated here from its operands, so there is nothing to download and no
licence to honour beyond this project's own (Apache-2.0). Paper: it is the laptop-sized stand-in for MATH in
the SCoRe setup (Kumar et al. 2024, arXiv 2409.12917), sized so the embedded base model, SCoRe and the
baselines all run on a CPU in minutes.

Splits never overlap: each operand pair is assigned to train or test by a hash of its canonical form (the
unordered pair for commutative operations, so 38 + 47 is never trained on when 47 + 38 is tested), and the
assignment does not depend on the seed or the sizes. The seed only chooses which problems of a split are drawn,
and in what order. Ids name the operands ("arith/test/47+38"), so they are stable across sizes and seeds.

The generator is parameterised by `operation` and `digits` so that other families (e.g. ones where checking a
proposed answer is much easier than finding it, for a real second-attempt advantage) can be added as entries of
OPERATIONS without touching the rest.
"""

from __future__ import annotations

import hashlib
import operator
import random
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterator

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem
from score_bench.tasks._placeholders import is_placeholder

ANSWER_MARKER = "Answer:"
"""Every response ends with "Answer: <number>"; extraction takes the last such line."""

DEFAULT_PROMPT = '{question} End your response with "Answer: <number>".'
DEFAULT_CORRECTION = ('There might be an error in the solution above. Please correct the error, if any, and rewrite '
                      'the solution. End your response with "Answer: <number>".')
"""The SPEC's MATH correction instruction, shortened to what arithmetic needs."""

TEST_PERCENT = 10
"""Share of the problem space (by hash) held out for test: enough for 500 problems at 2 digits (about 800)."""


@dataclass(frozen=True)
class Operation:
    symbol: str
    apply: Callable[[int, int], int]
    commutative: bool


OPERATIONS = {
    "add": Operation("+", operator.add, True),
    "sub": Operation("-", operator.sub, False),
    "mul": Operation("*", operator.mul, True),
}

_ENUMERATE_LIMIT = 1_000_000
"""Operand spaces up to this size are listed and shuffled; larger ones are sampled by rejection."""

_ANSWER = re.compile(r"Answer:[ \t]*([^\n]*)")
_NUMBER = re.compile(r"(?:(?<=[\s=(:*$])|^)-?\d+(?:,\d{3})*(?:\.\d+)?|\d+(?:,\d{3})*(?:\.\d+)?")
"""A number, with thousands commas and decimals; its minus sign only where a sign can stand (not "38-47")."""
PLACEHOLDERS = frozenset({"number", "answer", "yournumber", "youranswer"})
"""The prompt's slot ("<number>") and near copies: never an answer."""


class ArithTask(Task):
    """Integer arithmetic on two operands of exactly `digits` digits, graded by sympy equivalence."""

    name = "arith"
    splits = ("train", "test")

    def __init__(self, *, seed: int = 0, n_test: int = 500, n_train: int = 5000, digits: int = 2,
                 operation: str = "add", prompt: str = DEFAULT_PROMPT,
                 correction_instruction: str = DEFAULT_CORRECTION):
        if operation not in OPERATIONS:
            raise InputError(f"unknown arith operation '{operation}'; choose from {', '.join(OPERATIONS)}")
        if not 1 <= int(digits) <= 9:
            raise InputError(f"arith digits must be between 1 and 9, got {digits}")
        if int(n_test) < 1 or int(n_train) < 1:
            raise InputError(f"arith split sizes must be positive, got n_test={n_test}, n_train={n_train}")
        if "{question}" not in prompt:
            raise InputError("arith prompt must contain '{question}'")
        self.seed, self.digits, self.operation = int(seed), int(digits), operation
        self.sizes = {"train": int(n_train), "test": int(n_test)}
        self.prompt = prompt
        self.correction_instruction = correction_instruction
        self._op = OPERATIONS[operation]
        self._cache: dict[str, list[Problem]] = {}

    # -- problems -------------------------------------------------------------------------------------------
    def split_of(self, a: int, b: int) -> str:
        """'test' or 'train' for an operand pair: a fixed function of the pair, never of the seed."""
        key = (min(a, b), max(a, b)) if self._op.commutative else (a, b)
        digest = hashlib.sha256(f"{self.operation}:{key[0]}:{key[1]}".encode()).digest()
        return "test" if int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT else "train"

    def problem(self, a: int, b: int) -> Problem:
        """The problem for an operand pair (in whichever split the hash puts it)."""
        symbol = self._op.symbol
        answer = self._op.apply(a, b)
        return Problem(
            id=f"arith/{self.split_of(a, b)}/{a}{symbol}{b}",
            question=f"What is {a} {symbol} {b}?",
            reference=str(answer),
            metadata={"a": a, "b": b, "operation": self.operation, "carries": count_carries(a, b)},
        )

    def problems(self, split: str) -> list[Problem]:
        if split not in self.splits:
            raise InputError(f"arith has splits {', '.join(self.splits)}, not '{split}'")
        if split not in self._cache:
            rng = random.Random(f"arith:{self.seed}:{split}")
            pairs = self._draw(split, self.sizes[split], rng)
            self._cache[split] = [self.problem(a, b) for a, b in pairs]
        return list(self._cache[split])

    def sample_pairs(self, split: str, rng: random.Random) -> Iterator[tuple[int, int]]:
        """An endless stream of operand pairs from `split`, with repeats: the embedded model's pre-training
        draws from the train split this way, so it never sees a test problem."""
        low, high = self._range
        while True:
            a, b = rng.randint(low, high), rng.randint(low, high)
            if self.split_of(a, b) == split:
                yield a, b

    @property
    def _range(self) -> tuple[int, int]:
        return 10 ** (self.digits - 1), 10 ** self.digits - 1

    def _draw(self, split: str, n: int, rng: random.Random) -> list[tuple[int, int]]:
        low, high = self._range
        size = high - low + 1
        if size * size <= _ENUMERATE_LIMIT:
            pool = [(a, b) for a in range(low, high + 1) for b in range(low, high + 1)
                    if self.split_of(a, b) == split]
            if n > len(pool):
                raise InputError(f"arith {split} split has {len(pool)} problems at {self.digits} digits, "
                                 f"asked for {n}")
            rng.shuffle(pool)
            return pool[:n]
        seen: dict[tuple[int, int], None] = {}
        for pair in self.sample_pairs(split, rng):
            seen.setdefault(pair)
            if len(seen) == n:
                return list(seen)
        raise AssertionError("unreachable: sample_pairs is endless")

    # -- prompting and grading ------------------------------------------------------------------------------
    def first_prompt(self, problem: Problem) -> list[Message]:
        return [{"role": "user", "content": self.prompt.format(question=problem.question)}]

    def extract(self, problem: Problem, response: str) -> str | None:
        """Strict: the text after the last "Answer:" marker, without a trailing period, $...$ or markdown bold
        ("**Answer:** 85"); None when absent or when it is the prompt's placeholder ("<number>")."""
        found = _ANSWER.findall(response)
        if not found:
            return None
        answer = found[-1].strip(" \t*").rstrip(".").strip(" \t*$")
        return answer if answer and not is_placeholder(answer, PLACEHOLDERS) else None

    def extract_flexible(self, problem: Problem, response: str) -> str | None:
        """Flexible: the last number in the response ("So, 47 + 38 = 85." gives 85), thousands commas dropped."""
        numbers = _NUMBER.findall(response)
        return numbers[-1].replace(",", "") if numbers else None

    @cached_property
    def verifier(self):
        from score_bench.harness.grading.verifiers.symbolic import SymbolicVerifier

        return SymbolicVerifier()


def count_carries(a: int, b: int) -> int:
    """How many columns of a + b receive a carry (the difficulty knob of addition); 0 for negative inputs."""
    if a < 0 or b < 0:
        return 0
    carries = carry = 0
    while a or b:
        carry = 1 if a % 10 + b % 10 + carry >= 10 else 0
        carries += carry
        a, b = a // 10, b // 10
    return carries
