"""The pre-training text: two-attempt arith conversations whose answers are written in two styles.

Why two styles. A from-scratch 1M model learning full addition in a few CPU minutes either masters it or fails,
depending on the seed. So each answer is a column-by-column scratchpad in one of two styles:
- "careless" (most of the data): every carry is dropped, "7+8=15; 4+3=7; Answer: 75" for 47 + 38. Each token
  is a copy or a sum of two digits at nearby positions, which a tiny model learns reliably (a bare "Answer: 75"
  of the same function learned about half as fast here); it is right exactly when no column below the top one
  carries (52% of the 2-digit test problems).
- "careful" (the rest): the same columns with the carry written in, "7+8=15; 4+3+1=8; Answer: 85", always right.
The styles part only at the first carried column ("4+3=" or "4+3+1="), where greedy decoding takes the majority:
attempt-1 accuracy is set by the data (the no-carry share), not by luck in training, while sampling at
temperature 1 still writes the carry sometimes, which gives a trainer (SCoRe, STaR) something to discover.

Why the second attempt copies or re-solves. After the correction instruction, attempt 2 either restates
attempt 1 verbatim or is a fresh, independent answer drawn from the same style mix. Nothing in the corpus
links a wrong attempt 1 to a right attempt 2, so the model knows the two-turn format without having been
taught to correct: its attempt 2 does not beat attempt 1 on average, as for the paper's base models.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from score_bench.harness.contracts.types import Message


@dataclass(frozen=True)
class StyleMix:
    careless_share: float = 0.8
    """Share of answers that drop their carries; greedy decoding follows the majority."""
    copy_share: float = 0.5
    """Share of second attempts that restate the first; the rest re-solve independently."""


def forgot_carry_sum(a: int, b: int) -> int:
    """a + b with every carry dropped except out of the top column: 47 + 38 -> 75, 87 + 45 -> 122."""
    xs, ys = str(a)[::-1], str(b)[::-1]
    width = max(len(xs), len(ys))
    columns = [int(xs[i] if i < len(xs) else 0) + int(ys[i] if i < len(ys) else 0) for i in range(width)]
    low = "".join(str(c % 10) for c in columns[:-1])[::-1]
    return int(f"{columns[-1]}{low}")


def scratchpad(a: int, b: int, careless: bool = False) -> str:
    """Columns right to left, each with its carry in: "7+8=15; 4+3+1=8; Answer: 85". Careless: the same
    columns with every carry dropped, "7+8=15; 4+3=7; Answer: 75" (the answer is forgot_carry_sum)."""
    xs, ys = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(xs), len(ys))):
        x, y = int(xs[i] if i < len(xs) else 0), int(ys[i] if i < len(ys) else 0)
        total = x + y + carry
        steps.append(f"{x}+{y}{'+1' if carry else ''}={total}")
        carry = 1 if total >= 10 and not careless else 0
    answer = forgot_carry_sum(a, b) if careless else a + b
    return "; ".join(steps) + f"; Answer: {answer}"


def solution(a: int, b: int, rng: random.Random, mix: StyleMix) -> str:
    return scratchpad(a, b, careless=rng.random() < mix.careless_share)


def conversation(first_prompt: list[Message], instruction: str, a: int, b: int, rng: random.Random,
                 mix: StyleMix, two_attempts: bool = True) -> list[Message]:
    """One pre-training conversation: prompt, attempt 1 and, with two_attempts, the correction instruction
    and attempt 2."""
    first = solution(a, b, rng, mix)
    messages = [*first_prompt, {"role": "assistant", "content": first}]
    if not two_attempts:
        return messages
    second = first if rng.random() < mix.copy_share else solution(a, b, rng, mix)
    return [*messages, {"role": "user", "content": instruction}, {"role": "assistant", "content": second}]
