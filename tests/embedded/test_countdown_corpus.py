"""The countdown pre-training text: the canonical tries, the attempt shapes, the second-attempt kinds, the
per-attempt token budget, and the description of a model's attempts."""

import random
from collections import Counter

import pytest

from score_bench.embedded.build import TOKENIZER_CONVERSATIONS, _rendered, corpus_for
from score_bench.embedded.config import BaseModelConfig, CountdownStyle
from score_bench.embedded.countdown_corpus import (CHECK, KINDS, attempt_text, candidates, conversation,
                                                   corpus_facts, describe_samples, quick_tries, tries_of)
from score_bench.embedded.tokenizer import train_tokenizer
from score_bench.harness.contracts.errors import InputError
from score_bench.harness.grading.verifiers.expression import parse_expression
from score_bench.tasks.countdown import CountdownTask

EAGER = CountdownStyle(skip_share=0.0)


def test_candidates_are_right_and_in_the_canonical_order():
    found = candidates([3, 5, 7], 100)
    assert [t.text() for t in found[:4]] == ["3+5=8,8+7=15", "3+5=8,8*7=56", "3+5=8,8-7=1", "3*5=15,15+7=22"]
    assert found[3].expression == "(3*5)+7"
    for try_ in found:
        expression = parse_expression(try_.expression)
        assert expression.value == try_.value and sorted(expression.numbers) == [3, 5, 7]
        assert all(1 <= step.value <= 100 for step in try_.steps)
        assert all(parse_expression(f"{s.left}{s.symbol}{s.right}").value == s.value for s in try_.steps)
    assert "9-(3+5)" in {t.expression for t in candidates([3, 5, 9], 100)}  # the larger operand first
    assert len({t.text() for t in found}) == len(found)


def test_quick_tries_stop_at_a_hit_and_continue_after_the_last():
    found = candidates([3, 5, 7], 100)
    assert quick_tries(found, 1000, random.Random(0), EAGER) == [0, 1, 2]
    assert quick_tries(found, 56, random.Random(0), EAGER) == [0, 1]
    assert quick_tries(found, 1000, random.Random(0), EAGER, start=3) == [3, 4, 5]
    assert attempt_text(found, [0, 1], 56) == "3+5=8,8+7=15 vs 56 no; 3+5=8,8*7=56 vs 56 yes; Answer: (3+5)*7"
    skipping = [quick_tries(found, 1000, random.Random(seed), CountdownStyle()) for seed in range(200)]
    assert all(len(c) == 3 and c == sorted(c) for c in skipping) and len({tuple(c) for c in skipping}) > 5


def test_a_first_attempt_is_right_exactly_when_a_try_hits():
    task = CountdownTask(max_count=3, n_test=200)
    rng = random.Random(0)
    for problem in task.problems("test"):
        numbers, target = problem.metadata["numbers"], problem.metadata["target"]
        messages, _ = conversation(task.first_prompt(problem), task.correction_instruction, numbers, target, 100,
                                   rng, CountdownStyle())
        first = messages[1]["content"]
        hit = any(t.endswith(f"={target} vs {target} yes") for t in tries_of(first))
        assert all(t.endswith(" no") for t in tries_of(first)[:-1])
        assert task.verifier.verify(problem, task.extract(problem, first)).correct is hit
        assert len(tries_of(first)) <= 3


def test_second_attempts_are_drawn_at_the_style_shares():
    facts = corpus_facts(CountdownStyle(), random.Random(0), 3000)
    shares = facts["second_attempt_shares"]
    assert set(shares) == set(KINDS)
    # 3000 draws: the standard error of a share near 0.45 is 0.009, so 0.04 is over four of them
    assert shares["restate"] == pytest.approx(0.45, abs=0.04)
    assert facts["check_then_continue_share"] == shares["continue"] + shares["check_restate"]
    assert facts["check_then_continue_share"] == pytest.approx(0.08, abs=0.02)  # 4 standard errors (0.005)
    assert 0.1 < facts["first_attempt_right"] < 0.5 and 0 < facts["solver_keep_rate"] < 1


def test_continuing_attempts_repeat_no_try_and_blind_ones_mostly_do():
    task = CountdownTask(max_count=3, n_test=500)
    style = CountdownStyle(restate_share=0.0, continue_share=0.1)
    rng, kinds = random.Random(1), Counter()
    for problem in task.problems("test"):
        messages, kind = conversation(task.first_prompt(problem), task.correction_instruction,
                                      problem.metadata["numbers"], problem.metadata["target"], 100, rng, style)
        first, second = tries_of(messages[1]["content"]), tries_of(messages[3]["content"])
        assert messages[3]["content"].startswith(CHECK) is (kind in ("continue", "check_restate"))
        if kind == "continue":
            assert not set(first) & set(second)
        kinds[kind, bool(set(first) & set(second))] += 1
    assert kinds["continue", False] > 10 and not kinds["continue", True]
    assert kinds["blind_retry", True] > 4 * kinds["blind_retry", False]


def test_the_token_budget_holds_three_tries_and_never_four():
    config = BaseModelConfig.for_task("countdown")
    rng = random.Random(0)
    corpus = corpus_for(config, rng)
    tokenizer = train_tokenizer(_rendered(corpus.make, rng, TOKENIZER_CONVERSATIONS), config.vocab_size)
    budget = config.countdown.max_new_tokens
    task, stream = corpus.task, corpus.task.sample_instances("train", random.Random(5))
    for _ in range(300):
        problem = task.problem(*next(stream))
        found = candidates(problem.metadata["numbers"], 100)
        for prefix, tries, fits in (("", 3, True), (CHECK, 3, True), ("", 4, False)):
            text = prefix + attempt_text(found, list(range(tries)), problem.metadata["target"]) + "<|end|>"
            assert (len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= budget) is fits, (tries, text)


def test_describe_samples_counts_right_steps_and_second_attempt_relations():
    def row(first, second):
        return {"attempts": [{"text": first}, {"text": second}]}

    a = "3+5=8,8+7=15 vs 22 no; 3+5=8,8*7=56 vs 22 no; Answer: (3+5)*7"
    rows = [row(a, a), row(a, "3+5=8,8+7=15 vs 22 no; Answer: (3+5)+7"),
            row(a, "Check 3*5=15,15+7=22 vs 22 yes; Answer: (3*5)+7"),
            row(a, "3+5=8,8+7=15 vs 22 no; 3*5=15,15+7=23 vs 22 no; Answer: (3*5)+7"), row(a, "Answer: 3*5+7")]
    described = describe_samples(rows)
    assert described["second_attempt"] == {"same_text": 0.2, "repeats_tries": 0.2, "new_tries_only": 0.2,
                                           "some_new_tries": 0.2, "no_tries": 0.2}
    # attempt 1 (4 steps) five times, then the second attempts: 4, 2, 2, 4 (one wrong: 15+7=23) and none
    assert described["steps"] == 5 * 4 + 4 + 2 + 2 + 4 and described["step_accuracy"] == 1 - 1 / 32
    assert described["second_attempt_checks"] == 0.2


@pytest.mark.parametrize("bad", [{"max_count": 6}, {"tries": 0}, {"skip_share": 0.5}, {"continue_share": -0.1},
                                 {"continue_share": 0.11}, {"restate_share": 0.95, "continue_share": 0.1}])
def test_bad_styles_are_input_errors(bad):
    with pytest.raises(InputError):
        CountdownStyle(**bad)
