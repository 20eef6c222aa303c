"""The countdown pre-training text: attempts that are short scratchpads of tries, and second attempts that
mostly restate or retry blind.

A try combines two numbers at a time, writing each intermediate value, then the target beside the result and
whether they are equal, "5*3=15,15+7=22 vs 22 yes": every token the model computes is one small operation (a
single-digit table, or a two-digit number and a one-digit one), and the check is a comparison of two adjacent
numbers with a token of its own.
Tries come from one canonical search order per problem (candidates(): a depth-first walk over the numbers as
shown, pairs left to right, + * - / with the larger operand first, only whole positive intermediates up to
the largest target), so a searcher that reads what it already tried can always say what comes next.

Attempt 1, "quick tries": walk down that order, skipping each candidate with probability `skip_share`, write at
most `tries` of them and stop at the first that reaches the target. The attempt ends "Answer: <expression of
the last try>", right exactly when a try hit. Greedy decoding skips nothing (skip_share < 0.5), so the base
model's first attempt is the first few candidates; sampling at temperature 1 varies it.

Attempt 2, after the correction instruction, is one of:
- restate: attempt 1 verbatim;
- blind retry: a fresh attempt-1 walk from the start, independent of attempt 1, so it mostly repeats its
  tries (greedy repeats all of them);
- check-then-continue (rare: `continue_share`): if attempt 1's last try hit the target, restate it; otherwise
  walk on from the candidate after attempt 1's last try, so no try is repeated.
Only the last kind improves on a wrong attempt 1 by more than chance, and it is rare, so the base model knows
the two-turn format without having been taught to correct; its greedy attempt 2 repeats attempt 1. Because
an attempt holds only `tries` tries within the token budget, a second attempt that continues the search covers
candidates the first could not reach: the advantage RL can find is a longer search, not deferral.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from score_bench.embedded.config import CountdownStyle
from score_bench.harness.contracts.types import Message, Problem
from score_bench.tasks.countdown import CountdownTask

KINDS = ("restate", "blind_retry", "continue", "check_restate")
"""What a corpus second attempt is: check_restate is a check-then-continue whose attempt 1 was right."""
CHECK = "Check "
"""How a check-then-continue second attempt begins, whatever it then does: choosing to check is one token."""


@dataclass(frozen=True)
class Step:
    left: int
    symbol: str
    right: int
    value: int

    def text(self) -> str:
        return f"{self.left}{self.symbol}{self.right}={self.value}"


@dataclass(frozen=True)
class Try:
    steps: tuple[Step, ...]
    expression: str
    value: int

    def text(self) -> str:
        return ",".join(step.text() for step in self.steps)


def _operations(x: int, y: int):
    high, low = max(x, y), min(x, y)
    yield "+", x, y, x + y
    yield "*", x, y, x * y
    if high != low:
        yield "-", high, low, high - low
    if high % low == 0:
        yield "/", high, low, high // low


def candidates(numbers: Sequence[int], bound: int) -> list[Try]:
    """Every full try over `numbers` (each used once) in the canonical order, intermediates whole and in
    [1, bound]. A combined value takes the place of the first of its two operands."""
    found: list[Try] = []

    def walk(items: list[tuple[int, str]], steps: tuple[Step, ...]) -> None:
        if len(items) == 1:
            found.append(Try(steps, items[0][1], items[0][0]))
            return
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (x, ex), (y, ey) = items[i], items[j]
                rest = items[:i] + items[i + 1:j] + items[j + 1:]
                for symbol, left, right, value in _operations(x, y):
                    if not 1 <= value <= bound:
                        continue
                    swap = (left, right) != (x, y)
                    el, er = (ey, ex) if swap else (ex, ey)
                    walk([(value, f"{_wrap(el)}{symbol}{_wrap(er)}")] + rest, steps + (Step(left, symbol, right, value),))

    walk([(n, str(n)) for n in numbers], ())
    return found


def _wrap(expression: str) -> str:
    return expression if expression.isdigit() else f"({expression})"


def quick_tries(found: Sequence[Try], target: int, rng: random.Random, style: CountdownStyle, start: int = 0) -> list[int]:
    """Indices of the tries of one attempt: candidates from `start` on, each skipped with probability
    skip_share, at most `tries` of them, stopping at the first that reaches the target."""
    chosen: list[int] = []
    for index in range(start, len(found)):
        if len(chosen) == style.tries:
            break
        if rng.random() < style.skip_share:
            continue
        chosen.append(index)
        if found[index].value == target:
            break
    return chosen


def attempt_text(found: Sequence[Try], chosen: Sequence[int], target: int) -> str:
    """"3+5=8,8+7=15 vs 22 no; 3*5=15,15+7=22 vs 22 yes; Answer: (3*5)+7": each try with the target beside its
    value and whether they are equal, then the last try's expression as the answer."""
    if not chosen:
        return "Answer: none"
    tries = [f"{found[i].text()} vs {target} {'yes' if found[i].value == target else 'no'}" for i in chosen]
    return "; ".join(tries) + f"; Answer: {found[chosen[-1]].expression}"


def second_attempt(found: Sequence[Try], target: int, first: list[int], rng: random.Random,
                   style: CountdownStyle) -> tuple[list[int], str]:
    """(tries of attempt 2, its kind in KINDS), drawn at the shares of `style`."""
    draw = rng.random()
    if draw < style.restate_share:
        return first, "restate"
    if draw < style.restate_share + style.continue_share:
        if first and found[first[-1]].value == target:
            return first, "check_restate"
        following = quick_tries(found, target, rng, style, start=first[-1] + 1 if first else 0)
        return (following or first), "continue"
    return quick_tries(found, target, rng, style), "blind_retry"


def conversation(first_prompt: list[Message], instruction: str, numbers: Sequence[int], target: int, bound: int,
                 rng: random.Random, style: CountdownStyle, two_attempts: bool = True) -> tuple[list[Message], str]:
    """One pre-training conversation and the kind of its second attempt ("" without one)."""
    found = candidates(numbers, bound)
    first = quick_tries(found, target, rng, style)
    messages = [*first_prompt, {"role": "assistant", "content": attempt_text(found, first, target)}]
    if not two_attempts:
        return messages, ""
    second, kind = second_attempt(found, target, first, rng, style)
    text = (CHECK if kind in ("continue", "check_restate") else "") + attempt_text(found, second, target)
    return [*messages, {"role": "user", "content": instruction}, {"role": "assistant", "content": text}], kind


def maker(style: CountdownStyle, rng: random.Random) -> tuple[CountdownTask, Callable[[random.Random, bool], list[Message]]]:
    """The task and make(draw, two_attempts) -> one pre-training conversation on a train-split problem (never a
    test one), problems taken from `rng`'s stream."""
    task = CountdownTask(**style.task_options())
    instances = task.sample_instances("train", rng)

    def make(draw: random.Random, two_attempts: bool = True) -> list[Message]:
        return _conversation_on(task, _next_problem(task, instances, draw, style), draw, style, two_attempts)[0]

    return task, make


def _next_problem(task: CountdownTask, instances: Iterator, rng: random.Random, style: CountdownStyle) -> Problem:
    """The next train instance, or with probability early_hit_share the next that an early candidate solves."""
    early = rng.random() < style.early_hit_share
    while True:
        problem = task.problem(*next(instances))
        numbers, target = problem.metadata["numbers"], problem.metadata["target"]
        if not early or any(t.value == target for t in candidates(numbers, task.target_range[1])[:2 * style.tries]):
            return problem


def _conversation_on(task: CountdownTask, problem: Problem, rng: random.Random, style: CountdownStyle,
                     two_attempts: bool = True) -> tuple[list[Message], str]:
    return conversation(task.first_prompt(problem), task.correction_instruction, problem.metadata["numbers"],
                        problem.metadata["target"], task.target_range[1], rng, style, two_attempts)


def corpus_facts(style: CountdownStyle, rng: random.Random, n: int) -> dict:
    """Shares, over n two-attempt conversations, of each second-attempt kind (and of check-then-continue, its two
    kinds together) and of right first attempts, and the solver's keep rate (the share of random candidates of the task that are solvable)."""
    task = CountdownTask(**style.task_options())
    instances = task.sample_instances("train", rng)
    kinds, right_first = Counter(), 0
    for _ in range(n):
        problem = _next_problem(task, instances, rng, style)
        messages, kind = _conversation_on(task, problem, rng, style)
        kinds[kind] += 1
        right_first += task.verifier.verify(problem, task.extract(problem, messages[1]["content"])).correct
    shares = {kind: kinds[kind] / n for kind in KINDS}
    return {"conversations": n, "second_attempt_shares": shares,
            "check_then_continue_share": shares["continue"] + shares["check_restate"],
            "first_attempt_right": right_first / n, "solver_keep_rate": task.keep_rate()}


_STEP = re.compile(r"(\d+)([+\-*/])(\d+)=(\d+)")


def tries_of(text: str) -> list[str]:
    """The tries written before the answer line of an attempt ("5*3=15,15+7=22; ...; Answer: ...")."""
    return [part.strip() for part in text.removeprefix(CHECK).split("Answer:")[0].split(";") if _STEP.search(part)]


def describe_samples(rows: Iterable[dict]) -> dict:
    """What a model's greedy attempts do, from samples.jsonl rows: the share of written steps ("15+7=22")
    whose value is right, how each attempt 2 relates to its attempt 1 (the same text, only tries attempt 1
    made, only new tries, or some of each), and the share of attempts 2 that begin with CHECK."""
    steps = right = checks = 0
    relation = Counter()
    for row in rows:
        texts = [attempt["text"] for attempt in row["attempts"]]
        for text in texts:
            for left, symbol, operand, value in _STEP.findall(text):
                steps += 1
                right += _apply(int(left), symbol, int(operand)) == int(value)
        if len(texts) >= 2:
            checks += texts[1].startswith(CHECK)
            first, second = set(tries_of(texts[0])), tries_of(texts[1])
            if texts[1] == texts[0]:
                relation["same_text"] += 1
            elif not second:
                relation["no_tries"] += 1
            elif all(t in first for t in second):
                relation["repeats_tries"] += 1
            elif not any(t in first for t in second):
                relation["new_tries_only"] += 1
            else:
                relation["some_new_tries"] += 1
    total = sum(relation.values()) or 1
    return {"step_accuracy": right / steps if steps else None, "steps": steps,
            "second_attempt": {kind: relation[kind] / total for kind in
                               ("same_text", "repeats_tries", "new_tries_only", "some_new_tries", "no_tries")},
            "second_attempt_checks": checks / total}


def _apply(left: int, symbol: str, right: int) -> float:
    if symbol == "/":
        return left / right if right else float("nan")
    return {"+": left + right, "-": left - right, "*": left * right}[symbol]
