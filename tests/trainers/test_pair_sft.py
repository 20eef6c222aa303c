"""The pair-sft trainer: pairs only from incorrect first attempts (D+ adds correct ones), y2 drawn at random from
the same problem's correct responses of either attempt and never a wrong one, and an end-to-end smoke run
sampling once from the base model and producing a loadable checkpoint."""

from __future__ import annotations

import json
import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from score_bench.harness.contracts.fields import with_values
from score_bench.harness.training.config import build_config
from score_bench.harness.training.outputs import CONFIG_FILE, LOG_FILE
from score_bench.trainers._sft import pair_examples
from score_bench.trainers.pair_sft import PRESETS, PairSftConfig, PairSftTrainer
from test_score_trainer import ParityTask
from test_star import INSTRUCTION, TRACES, C, E, I, NeverTask, make_trace

# Problem "a": correct responses a-right, a-right2 (first attempts), a-fixed, a-kept (second attempts).
# Problem "b": no correct response except b-fixed, whose y1 was a grading error.
CORRECT = {"a": {"a-right", "a-right2", "a-fixed", "a-kept"}, "b": {"b-fixed"}}


def pairs_over_seeds(traces, plus, seeds=range(40)):
    return [e for seed in seeds for e in pair_examples(traces, plus, 8, random.Random(seed))]


def test_pairs_come_only_from_incorrect_first_attempts_and_take_a_correct_y2_of_the_same_problem():
    pairs = pairs_over_seeds(TRACES, plus=False)
    firsts = {e.first for e in pairs}
    assert firsts == {"a-wrong", "b-wrong", "b-wrong3"}  # every incorrect y1 of a problem with a correct response
    for e in pairs:
        problem = e.first[0]
        assert e.second in CORRECT[problem]  # never a wrong response, never another problem's
        assert e.prompt == [{"role": "user", "content": f"Question {problem}?"}] and e.instruction == INSTRUCTION
    # drawn at random from both attempts: a's incorrect y1 meets correct first and second attempts
    assert {e.second for e in pairs if e.first == "a-wrong"} == CORRECT["a"]


def test_d_plus_adds_pairs_for_correct_first_attempts():
    plain = pairs_over_seeds(TRACES, plus=False, seeds=[0])
    plus = pairs_over_seeds(TRACES, plus=True, seeds=[0])
    assert [e.first for e in plus] == ["a-wrong", "a-right", "a-right2", "b-wrong", "b-wrong3"]
    assert {e.first for e in plus} - {e.first for e in plain} == {"a-right", "a-right2"}
    assert all(e.second in CORRECT[e.first[0]] for e in plus)


def test_a_problem_without_a_correct_response_gives_no_pair():
    traces = [make_trace("c", 0, ("c1", I), ("c2", I)), make_trace("c", 1, ("c3", I), ("c4", E)),
              make_trace("d", 0, ("d1", C), ("d2", C))]
    assert [(e.first, e.second[0]) for e in pair_examples(traces, True, 8, random.Random(0))] == [("d1", "d")]


def test_the_draw_is_seeded():
    draw = lambda seed: [e.second for e in pair_examples(TRACES, False, 8, random.Random(seed))]  # noqa: E731
    assert draw(3) == draw(3)
    assert len({tuple(draw(s)) for s in range(10)}) > 1


def smoke(tiny_model, tmp_path, **changes) -> PairSftConfig:
    values = {"model": str(tiny_model), "output": str(tmp_path / "out"), **changes}
    return with_values(build_config(PairSftConfig, PRESETS, "smoke"), **values)


def test_smoke_run_samples_once_and_writes_a_loadable_checkpoint_config_and_log(tiny_model, tmp_path):
    out = PairSftTrainer().train(smoke(tiny_model, tmp_path), task=ParityTask())
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_model).chat_template
    trained = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert any(not torch.equal(p, q) for p, q in zip(trained.parameters(), base.parameters()))
    assert (out / "generation_config.json").exists()
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert saved["config"]["variant"] == "d" and saved["config"]["model"] == str(tiny_model)
    assert saved["budget"]["traces_sampled"] == 4 * 2 * 4 and saved["budget"]["updates"] == 4
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [(r["step"], r["iteration"], r["traces_sampled"]) for r in rows] == [(s, 1, 32) for s in (1, 2, 3, 4)]
    for key in ("loss", "examples", "accuracy_t1", "accuracy_t2", "tokens_per_s"):
        assert all(r[key] is not None for r in rows), key
    assert rows[0]["examples"] == saved["budget"]["examples_kept"] > 0


def test_no_pair_warns_and_saves_the_base_model(tiny_model, tmp_path):
    with pytest.warns(RuntimeWarning, match="4 updates skipped"):
        out = PairSftTrainer().train(smoke(tiny_model, tmp_path), task=NeverTask())
    trained = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert all(torch.equal(p, q) for p, q in zip(trained.parameters(), base.parameters()))


def test_presets_keep_score_trace_budget_with_several_samples_per_problem():
    from score_bench.trainers.score import PRESETS as SCORE_PRESETS, ScoreConfig

    for name in SCORE_PRESETS:
        score = build_config(ScoreConfig, SCORE_PRESETS, name)
        pair = build_config(PairSftConfig, PRESETS, name)
        assert pair.samples_per_problem > 1  # a wrong y1 must be able to meet another sample's correct answer
        assert pair.updates == score.stage1_steps + score.stage2_steps
        assert (pair.eval_every, pair.eval_problems) == (score.eval_every, score.eval_problems)
        assert pair.sampling_batches * pair.batch_size * pair.samples_per_problem == \
            (score.stage1_steps + score.stage2_steps) * score.batch_size * score.samples_per_problem
    default = PairSftConfig()
    assert default.batch_size * default.samples_per_problem == ScoreConfig().batch_size
