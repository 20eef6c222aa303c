"""build_base_model on a tiny budget: deterministic for a seed, loadable with plain transformers, and its chat
template renders the two-attempt conversation exactly as the model was trained on it."""

import json
import random
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from score_bench.embedded import BaseModelConfig, build_base_model
from score_bench.embedded.build import _rendered, conversation_maker
from score_bench.embedded.model import create_model
from score_bench.embedded.pretrain import encode_batch, pretrain, seeded_batches
from score_bench.embedded.tokenizer import train_tokenizer
from score_bench.harness.contracts.errors import InputError
from score_bench.tasks.arith import ArithTask

TINY = BaseModelConfig(steps=3, batch_size=4, warmup_steps=1, hidden_size=32, intermediate_size=64, layers=1,
                       heads=2, eval_problems=0, output_dir="unset")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    return {name: build_base_model(replace(TINY, seed=seed, output_dir=str(root / name), eval_problems=n))
            for name, seed, n in (("a", 0, 0), ("again", 0, 0), ("other", 1, 8))}


def weights(path):
    return load_file(str(path / "model.safetensors"))


def test_same_seed_same_weights_and_tokenizer(built):
    first, again, other = weights(built["a"]), weights(built["again"]), weights(built["other"])
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)
    assert (built["a"] / "tokenizer.json").read_text() == (built["again"] / "tokenizer.json").read_text()


def test_loads_with_plain_transformers_and_answers_a_turn(built):
    tokenizer = AutoTokenizer.from_pretrained(built["a"])
    model = AutoModelForCausalLM.from_pretrained(built["a"])
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|end|>")
    assert tokenizer.pad_token == "<|pad|>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    task = ArithTask(n_test=1)
    ids = tokenizer.apply_chat_template(task.first_prompt(task.problems("test")[0]), add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_digits_are_single_tokens(built):
    tokenizer = AutoTokenizer.from_pretrained(built["a"])
    pieces = tokenizer.tokenize("What is 4738 + 12? Answer: 4750")
    assert [p for p in pieces if any(c.isdigit() for c in p)] == list("473812") + list("4750")


def test_chat_template_renders_the_two_attempt_conversation(built):
    tokenizer = AutoTokenizer.from_pretrained(built["a"])
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 3?"},
                    {"role": "assistant", "content": "Answer: 5"}, {"role": "user", "content": "Check it."},
                    {"role": "assistant", "content": "Answer: 5"}]
    assert tokenizer.apply_chat_template(conversation, tokenize=False) == (
        "<|system|>Be brief.<|end|><|user|>What is 2 + 3?<|end|><|assistant|>Answer: 5<|end|>"
        "<|user|>Check it.<|end|><|assistant|>Answer: 5<|end|>")
    prompt = tokenizer.apply_chat_template(conversation[:4], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|user|>Check it.<|end|><|assistant|>")
    # the generation prompt plus a turn tokenizes exactly as the full conversation the model trained on
    rendered = tokenizer(prompt + "Answer: 5<|end|>", add_special_tokens=False)["input_ids"]
    assert rendered == encode_batch(tokenizer, [conversation])["input_ids"][0].tolist()


def test_card_records_config_seed_and_why(built):
    card = json.loads((built["a"] / "card.json").read_text())
    assert card["seed"] == 0 and card["config"]["steps"] == 3 and card["training"]["steps"] == 3
    assert card["deterministic"] is True and card["measured"] is None
    assert set(card["why"]) >= {"two_styles", "second_attempt"}
    assert 0 < card["n_parameters"] < 1_000_000


def test_refuses_a_non_empty_output(built):
    with pytest.raises(InputError, match="not empty"):
        build_base_model(replace(TINY, output_dir=str(built["a"])))


def test_card_measures_through_the_eval_path(built):
    measured = json.loads((built["other"] / "card.json").read_text())["measured"]
    assert measured["problems"] == 8 and measured["split"] == "test" and measured["grading_errors"] == 0
    for name in ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i"):
        value, (low, high) = measured["metrics"][name]["value"], measured["metrics"][name]["ci95"]
        assert low <= value <= high


def test_minutes_cap_stops_training_early_and_is_recorded():
    config = replace(TINY, steps=50, max_minutes=2.5)
    rng = random.Random(0)
    make = conversation_maker(config, rng)
    tokenizer = train_tokenizer(_rendered(make, rng, 50), config.vocab_size)
    ticks = iter(range(0, 10_000, 60))  # every clock read is one minute later
    log = pretrain(create_model(config, tokenizer), tokenizer, seeded_batches(make, 2, 0.5, rng), config,
                   clock=lambda: next(ticks))
    assert log["steps"] == 2  # reads at 1 and 2 minutes pass the 2.5-minute cap, the read at 3 minutes stops


@pytest.mark.parametrize("bad", [{"steps": 0}, {"careless_share": 1.5}, {"hidden_size": 30, "heads": 4},
                                 {"max_minutes": 0}, {"threads": 0}])
def test_bad_config_is_an_input_error(bad):
    with pytest.raises(InputError):
        BaseModelConfig(**bad)
