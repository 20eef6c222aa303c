import json
from pathlib import Path

import pytest

from score_bench.harness.contracts.types import Problem, Status
from score_bench.harness.grading.verifiers.key_answer import KeyAnswerVerifier, strip_particles

CASES = json.loads((Path(__file__).parent / "key_answer_cases.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_key_answer_table(case):
    problem = Problem("p", case["question"], case["key"], {"distractor": case["distractor"]})
    [verdict] = KeyAnswerVerifier().verify_batch([(problem, case["response"])])
    assert verdict.correct is case["correct"], verdict.detail


def test_unextractable_answer_is_incorrect_and_empty_key_is_a_grader_error():
    verifier = KeyAnswerVerifier()
    ok = Problem("p", "q?", "yes")
    broken = Problem("b", "q?", "...")
    none_verdict, error_verdict = verifier.verify_batch([(ok, None), (broken, "anything")])
    assert none_verdict.status is Status.INCORRECT
    assert error_verdict.status is Status.ERROR


@pytest.mark.parametrize("key, stripped", [
    ("32입니다", "32"), ("원자핵이라고", "원자핵"), ("유교였습니다", "유교"), ("인상주의", "인상주의"),
    ("사과", "사과"), ("입니다", "입니다"), ("세포", "세포"), ("Canberra", "Canberra"),
])
def test_derived_keys_lose_trailing_korean_particles(key, stripped):
    assert strip_particles(key) == stripped
