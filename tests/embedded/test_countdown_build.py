"""build_base_model on countdown, on a tiny budget: the card says what the corpus holds (its second-attempt
shares, check-then-continue at most a tenth) and what the model measures on the countdown test split."""

import json
from dataclasses import replace

import pytest
from transformers import GenerationConfig

from score_bench.embedded import BaseModelConfig, build_base_model
from score_bench.embedded.build import CORPUS_SAMPLE

TINY = BaseModelConfig.for_task("countdown", steps=2, batch_size=4, warmup_steps=1, hidden_size=32,
                                intermediate_size=64, layers=1, heads=2, eval_problems=4, output_dir="unset")


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    output = build_base_model(replace(TINY, output_dir=str(tmp_path_factory.mktemp("countdown") / "m")))
    return output, json.loads((output / "card.json").read_text())


def test_card_holds_the_corpus_shares(card):
    _, facts = card
    corpus = facts["corpus"]
    shares = corpus["second_attempt_shares"]
    assert corpus["conversations"] == CORPUS_SAMPLE and sum(shares.values()) == pytest.approx(1.0)
    assert corpus["check_then_continue_share"] == shares["continue"] + shares["check_restate"] <= 0.1
    assert shares["restate"] > 0.3 and shares["blind_retry"] > 0.3
    assert corpus["task_options"] == {"max_count": 3}
    assert facts["config"]["task"] == "countdown" and facts["data"].startswith("Procedurally generated countdown")


def test_card_measures_on_the_countdown_test_split(card):
    output, facts = card
    measured = facts["measured"]
    assert measured["problems"] == 4 and measured["max_new_tokens"] == TINY.countdown.max_new_tokens
    assert set(measured["metrics"]) >= {"acc_t1", "acc_t2", "delta"}
    assert sum(measured["samples"]["second_attempt"].values()) == pytest.approx(1.0)
    assert GenerationConfig.from_pretrained(output).max_new_tokens == TINY.countdown.max_new_tokens


def test_arith_cards_say_nothing_of_a_countdown_corpus(tmp_path):
    arith = replace(BaseModelConfig(), steps=1, batch_size=2, warmup_steps=1, hidden_size=32, intermediate_size=64,
                    layers=1, heads=2, eval_problems=0, output_dir=str(tmp_path / "a"))
    facts = json.loads((build_base_model(arith) / "card.json").read_text())
    assert "corpus" not in facts and facts["config"]["task"] == "arith"
