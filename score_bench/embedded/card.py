"""card.json: what the base model is, what it was trained on, how it measures, and why it looks as it does."""

from __future__ import annotations

from pathlib import Path

from score_bench.embedded.config import BaseModelConfig
from score_bench.harness.runtime.provenance import provenance, write_json_atomic

DATA = (
    "Procedurally generated arith conversations (score_bench.tasks.arith, train split only: operand pairs "
    "hashed to test, in either order, never occur): the task's attempt-1 prompt and an answer; in a quarter of "
    "the batches also the task's correction instruction and a second answer. Answers are column-by-column "
    "scratchpads in two styles: 'careless' (carries dropped, wrong whenever a column below the top one carries) "
    "and 'careful' (carries written in, always right). Loss on the assistant turns only."
)

WHY = {
    "two_styles": (
        "A from-scratch 1M model learning full addition in minutes either masters it or fails depending on the "
        "seed. The careless scratchpad is a chain of copies and two-digit sums that learns reliably (a bare "
        "answer of the same function learned about half as fast in trials here), and greedy decoding follows "
        "the majority style where the two styles part (the first carried column), so Accuracy@t1 is set by the "
        "data (the share of test problems without an inner carry, 0.52) rather than by luck. The minority "
        "careful style is always right, so sampling at temperature 1 sometimes writes the carry: a trainer "
        "has something to discover."),
    "second_attempt": (
        "After the correction instruction, the second answer either restates the first verbatim or is an "
        "independent re-solve drawn from the same style mix. Nothing links a wrong first answer to a right "
        "second one, so the model knows the two-turn format (its attempt 2 is a well-formed answer) without "
        "having been taught to correct: like the paper's base models, attempt 2 does not beat attempt 1."),
    "toward_score": (
        "SCoRe can raise Accuracy@t2 here by writing the carry in attempt 2; a trial found that Stage II then "
        "moves attempt 1 there too (Δ back to 0), because nothing in attempt 2 needs attempt 1. A family where "
        "checking a proposed answer is much easier than finding it (e.g. inverse problems such as x with "
        "7·x = 336, where attempt 2 can check y1 and adjust by the residual) would give attempt 2 a genuine "
        "advantage; tasks/arith.py takes `operation`, so such a family is one more OPERATIONS entry, with its "
        "own answer styles in embedded/corpus.py."),
}


COUNTDOWN_DATA = (
    "Procedurally generated countdown conversations (score_bench.tasks.countdown with the corpus's task options, "
    "train split only: no instance hashed to test occurs): the task's attempt-1 prompt and an attempt; in half "
    "the batches also the task's correction instruction and a second attempt. An attempt is a scratchpad of at "
    "most `tries` tries from one canonical search order, each try combining two numbers at a time with every "
    "intermediate value written and compared with the target ('5*3=15,15+7=22 vs 22 yes'), stopping at the "
    "first try that reaches the target, then 'Answer: <the last try's expression>'. Second attempts restate the "
    "first, retry blind from the start, or (rarely, 'corpus.second_attempt_shares') check the first and continue "
    "the search after its last try. Loss on the assistant turns only."
)

COUNTDOWN_WHY = {
    "tries": (
        "Every token the model computes is one small operation (a single-digit table, or a two-digit number and a "
        "one-digit one), which a 1M-parameter model learns in minutes; a whole expression's value at once would "
        "not be. The canonical order lets a search that reads its own tries say what comes next."),
    "second_attempt": (
        "Restated and blind second attempts do not use attempt 1: greedy decoding repeats attempt 1's tries, so "
        "attempt 2 does not beat attempt 1 (the base model does not self-correct). Check-then-continue ('continue' "
        "and, after a right attempt 1, 'check_restate') is at most a tenth of the second attempts, so RL has to "
        "find and strengthen it rather than being handed it."),
    "toward_score": (
        "An attempt holds only `tries` tries within the per-attempt token budget (max_new_tokens), so attempt 1 "
        "cannot search further by itself; a second attempt that reads attempt 1's tries and continues after them "
        "covers candidates attempt 1 could not reach, which blind retries (repeating the same tries) do not: an "
        "advantage of the second attempt that is not deferral."),
}

CARDS = {"arith": (DATA, WHY), "countdown": (COUNTDOWN_DATA, COUNTDOWN_WHY)}


def write_card(output: Path, config: BaseModelConfig, log: dict, measured: dict | None, build_seconds: float,
               n_parameters: int, corpus: dict | None = None) -> Path:
    """card.json; `corpus` (what the corpus holds, counted on a sample of it) is added when given."""
    path = Path(output) / "card.json"
    data, why = CARDS[config.task]
    write_json_atomic(path, {
        "model": f"score-bench embedded base model (Llama architecture, trained from scratch on {config.task})",
        "seed": config.seed,
        "config": config.to_dict(),
        "n_parameters": n_parameters,
        "data": data,
        "why": why,
        **({"corpus": corpus} if corpus is not None else {}),
        "training": log,
        "deterministic": config.max_minutes is None,
        "build_seconds": round(build_seconds, 1),
        "measured": measured,
        "provenance": provenance(),
    })
    return path
