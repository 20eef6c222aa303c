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


def write_card(output: Path, config: BaseModelConfig, log: dict, measured: dict | None, build_seconds: float,
               n_parameters: int) -> Path:
    path = Path(output) / "card.json"
    write_json_atomic(path, {
        "model": "score-bench embedded base model (Llama architecture, trained from scratch on arith)",
        "seed": config.seed,
        "config": config.to_dict(),
        "n_parameters": n_parameters,
        "data": DATA,
        "why": WHY,
        "training": log,
        "deterministic": config.max_minutes is None,
        "build_seconds": round(build_seconds, 1),
        "measured": measured,
        "provenance": provenance(),
    })
    return path
