"""Arithmetic expressions over given numbers (countdown): parsed, never run, and computed with exact fractions.

A problem says which numbers an answer may use and what it must equal, in its metadata: `numbers` (a list of
ints), `target` (an int) and `usage`, "exactly_once" (every given number used once: TinyZero's rule) or
"at_most_once" (a sub-multiset of them). Many answers are right, so the verifier checks the expression itself;
Problem.reference (one solution) is never compared with.

The grammar is decimal integer literals, the binary operators + - * / and parentheses, nothing else: no unary
minus or plus (every given number is positive, and "-(a-b)" is "b-a"), no powers, no floor division, no
decimals. The unicode operators × · ÷ − – and LaTeX's \\times \\cdot \\div are read as * * / - - * * /
first. The text is checked character by character, then parsed by Python's `ast` (mode "eval") and walked
node by node; Python never evaluates it. Bounds keep every verdict fast whatever the text: at most
`max_chars` characters, `max_depth` nested parentheses and more numbers than the problem gives are wrong
before anything is parsed (a 10 KB expression or 10,000 nested parentheses is a verdict in microseconds),
and since literals must be given numbers, the exact value of an accepted expression is small. Division by
zero is a wrong answer.

Verdicts: correct when the expression parses, its multiset of literals obeys the usage rule and its exact value
equals the target; incorrect otherwise (detail says why); error when the problem's metadata is malformed.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.protocols import Verifier
from score_bench.harness.contracts.types import Problem, Status, Verdict

USAGES = ("exactly_once", "at_most_once")
"""How an answer may use the given numbers: each exactly once, or each at most once."""

_SPELLINGS = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("×", "*"), ("·", "*"), ("÷", "/"), ("−", "-"),
              ("–", "-"))
_ALLOWED = re.compile(r"[0-9+\-*/() \t]*")
_LITERAL = re.compile(r"\d+")
MAX_NUMBERS = 64
"""Literals an expression may hold at most, whatever the problem (a countdown problem gives a handful)."""
_OPERATORS = {ast.Add: Fraction.__add__, ast.Sub: Fraction.__sub__, ast.Mult: Fraction.__mul__,
              ast.Div: Fraction.__truediv__}


class ExpressionError(ValueError):
    """Why a text is not an acceptable expression (the verdict's detail)."""


@dataclass(frozen=True)
class Expression:
    value: Fraction
    numbers: tuple[int, ...]
    """The literals, in the order written."""


def normalise(text: str) -> str:
    """`text` with the unicode and LaTeX spellings of the operators replaced by * / -."""
    for spelling, operator in _SPELLINGS:
        text = text.replace(spelling, operator)
    return text


def parse_expression(text: str, max_chars: int = 1000, max_depth: int = 32,
                     max_numbers: int = MAX_NUMBERS) -> Expression:
    """The value and literals of `text`, or ExpressionError saying why it is not an expression of the grammar
    (module docstring). A text with more than `max_numbers` literals is rejected before parsing, which also
    bounds the depth of the walk over the parsed tree."""
    text = normalise(text).strip()
    if not text:
        raise ExpressionError("empty expression")
    if len(text) > max_chars:
        raise ExpressionError(f"longer than {max_chars} characters")
    if not _ALLOWED.fullmatch(text):
        bad = next(ch for ch in text if not _ALLOWED.fullmatch(ch))
        raise ExpressionError(f"character {bad!r} is not a number, + - * /, a parenthesis or a space")
    if _depth(text) > max_depth:
        raise ExpressionError(f"parentheses nested deeper than {max_depth}")
    literals = len(_LITERAL.findall(text))
    if literals > max_numbers:
        raise ExpressionError(f"{literals} numbers, more than {max_numbers}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise ExpressionError(f"not an expression ({type(err).__name__})") from None
    numbers: list[int] = []
    return Expression(_evaluate(tree.body, numbers), tuple(numbers))


def _depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def _evaluate(node: ast.AST, numbers: list[int]) -> Fraction:
    """Exact value of a parsed expression; literals are appended to `numbers` left to right. The recursion is as
    deep as the tree, which the literal count bounds."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        numbers.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, numbers), _evaluate(node.right, numbers)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ExpressionError("division by zero")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        raise ExpressionError("a sign before a number or a parenthesis (only binary + - * / are allowed)")
    name = type(node.op).__name__ if isinstance(node, ast.BinOp) else type(node).__name__
    raise ExpressionError(f"{name} is not allowed (only numbers, + - * / and parentheses)")


def usage_error(used: Sequence[int], given: Sequence[int], usage: str) -> str | None:
    """Why the literals `used` break the usage rule for the `given` numbers, or None when they keep it."""
    have, want = Counter(used), Counter(given)
    for number, count in sorted(have.items()):
        if number not in want:
            return f"uses {number}, which is not given"
        if count > want[number]:
            return f"uses {number} {count} times, given {want[number]}"
    if usage == "exactly_once":
        unused = sorted((want - have).elements())
        if unused:
            return f"does not use {', '.join(map(str, unused))} (each number exactly once)"
    return None


@dataclass(frozen=True)
class ExpressionConfig:
    max_chars: int = 1000
    """Longer answers are wrong without parsing. A four-number answer is about 20 characters; 1000 leaves room
    for spaces and redundant parentheses."""
    max_depth: int = 32
    """Deeper nesting of parentheses is wrong without parsing."""

    def __post_init__(self) -> None:
        if self.max_chars < 1 or self.max_depth < 1:
            raise InputError("ExpressionConfig.max_chars and max_depth must be at least 1")


class ExpressionVerifier(Verifier):
    """Grades expressions for problems whose metadata give numbers, target and usage."""

    def __init__(self, config: ExpressionConfig = ExpressionConfig()):
        self.config = config

    def verify_batch(self, items: Sequence[tuple[Problem, str | None]]) -> list[Verdict]:
        return [self.verify(problem, answer) for problem, answer in items]

    def verify(self, problem: Problem, answer: str | None) -> Verdict:
        try:
            numbers, target, usage = _rules(problem)
        except (KeyError, TypeError, ValueError) as err:
            return Verdict(Status.ERROR, answer, f"problem {problem.id} has no valid numbers/target/usage: {err}")
        if answer is None or not answer.strip():
            return Verdict(Status.INCORRECT, answer, "no answer")
        try:
            expression = self._parse(answer, len(numbers))
        except ExpressionError as err:
            return Verdict(Status.INCORRECT, answer, str(err))
        broken = usage_error(expression.numbers, numbers, usage)
        if broken:
            return Verdict(Status.INCORRECT, answer, broken)
        if expression.value != target:
            return Verdict(Status.INCORRECT, answer, f"equals {expression.value}, not {target}")
        return Verdict(Status.CORRECT, answer, "")

    def same_answer_batch(self, items: Sequence[tuple[Problem, str, str]]) -> list[bool]:
        """Whether each (problem, a, b) are the same answer (harness.grading.voting): both expressions with the same
        value from the same multiset of numbers ("3*5+7" and "7+5*3"), or equal stripped texts otherwise."""
        return [self._key(a, problem) == self._key(b, problem) for problem, a, b in items]

    def _key(self, answer: str, problem: Problem) -> tuple:
        try:
            expression = self._parse(answer, len(problem.metadata.get("numbers") or ()) or MAX_NUMBERS)
        except ExpressionError:
            return ("text", answer.strip())
        return ("expression", expression.value, tuple(sorted(expression.numbers)))

    def _parse(self, answer: str, max_numbers: int) -> Expression:
        return parse_expression(answer, self.config.max_chars, self.config.max_depth, max_numbers)


def _rules(problem: Problem) -> tuple[list[int], int, str]:
    metadata = problem.metadata
    numbers = [int(n) for n in metadata["numbers"]]
    target, usage = int(metadata["target"]), metadata.get("usage", "exactly_once")
    if not numbers or usage not in USAGES:
        raise ValueError(f"numbers {numbers}, usage {usage!r}")
    return numbers, target, usage
