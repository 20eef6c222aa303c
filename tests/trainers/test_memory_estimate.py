"""`score-bench train ... --dry-run` (issue #13 item 4): a memory estimate printed before anything is loaded or
written, whose terms scale as they should with the micro-batch, the trainer and the model."""

from __future__ import annotations


import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from score_bench.cli import app
from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.contracts.registry import load_task
from score_bench.harness.training.config import build_config
from score_bench.harness.training.memory_estimate import PROMPTS_MEASURED, estimate, model_shape, sequence_length
from score_bench.trainers.score import PRESETS, ScoreConfig
from score_bench.trainers.star import PRESETS as STAR_PRESETS, StarConfig


def files_under(path):
    return sorted(p for p in path.rglob("*"))


def test_dry_run_prints_the_estimate_and_writes_nothing(tiny_model, tmp_path):
    before = files_under(tiny_model)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--task", "arith", "--trainer", "score", "--model", str(tiny_model),
                                      "--output", str(out), "--preset", "paper", "--set", "micro_batch_size=8",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    for line in ("parameters", "gradients", "optimiser state", "frozen reference", "activations, one micro-batch "
                 "(8 rows", "sampling KV cache", "total"):
        assert line in result.output, line
    assert not out.exists() and files_under(tmp_path) == [] and files_under(tiny_model) == before


def test_dry_run_refuses_bad_settings_in_one_line(tiny_model, tmp_path):
    result = CliRunner().invoke(app, ["train", "--task", "arith", "--trainer", "score", "--model", str(tiny_model),
                                      "--output", str(tmp_path / "run"), "--set", "micro_batch_sze=8", "--dry-run"])
    assert isinstance(result.exception, InputError)  # the CLI's entry point prints it as one line
    assert "micro_batch_size" in str(result.exception)  # the near miss is named
    assert not (tmp_path / "run").exists()


def test_the_terms_scale_with_micro_batch_trainer_and_model(tiny_model):
    shape = model_shape(str(tiny_model))
    assert shape.parameters == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model).parameters())
    config = build_config(ScoreConfig, PRESETS, "paper")  # 512 traces per step
    length = 300

    def score(**changes):
        return estimate(shape, with_values(config, **changes), length, reference=True,
                        traces_per_step=with_values(config, **changes).traces_per_step())

    four, eight, whole = score(micro_batch_size=4), score(micro_batch_size=8), score()
    assert (four.rows, eight.rows, whole.rows) == (4, 8, 512)
    assert eight.activations == pytest.approx(2 * four.activations, rel=1e-6)  # linear in rows at fixed length
    assert whole.activations == pytest.approx(128 * four.activations, rel=1e-6)
    assert four.parameters == eight.parameters == whole.parameters == 4 * shape.parameters  # float32
    assert four.optimizer == 2 * four.parameters and four.gradients == four.parameters
    assert four.reference == four.parameters
    # a token budget caps the rows: 2 rows of 300 tokens fit in 650
    assert score(micro_batch_size=8, micro_batch_tokens=650).rows == 2
    # longer sequences cost more than linearly (attention scores)
    longer = estimate(shape, with_values(config, micro_batch_size=4), 2 * length, reference=True, traces_per_step=512)
    assert longer.activations > 2 * four.activations
    # the SFT baselines keep no reference
    star = build_config(StarConfig, STAR_PRESETS, "paper", {"micro_batch_size": 4})
    sft = estimate(shape, star, length, reference=False, traces_per_step=star.traces_per_step())
    assert sft.reference == 0 and sft.activations == four.activations


def test_sequence_length_counts_prompt_instruction_and_two_attempts(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    task = load_task("arith")
    short, long = (sequence_length(tokenizer, task, "train", n) for n in (16, 116))
    assert long - short == 200

    def tokens(messages):  # rendered as text, then tokenized: independent of apply_chat_template's return type
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    prompt = max(tokens(task.first_prompt(p)) for p in task.problems("train")[:PROMPTS_MEASURED])
    instruction = tokens([{"role": "user", "content": task.correction_instruction}])
    assert prompt > 20  # a real prompt, not the 2 keys of a BatchEncoding (transformers 5 counted those)
    assert short == prompt + instruction + 2 * 16 + 4


def test_tied_embeddings_are_counted_once(tiny_model, tmp_path):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model)
    config.tie_word_embeddings = True
    config.save_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_config(config)  # real weights, tied
    assert model.lm_head.weight is model.model.embed_tokens.weight
    tied = sum(p.numel() for p in model.parameters())
    assert model_shape(str(tmp_path)).parameters == tied < model_shape(str(tiny_model)).parameters
