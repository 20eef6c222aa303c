"""The run skeleton (harness.training.run) is every trainer's: for each registered trainer the memory options
(gradient checkpointing, micro-batches by rows and by tokens, the optimizer choice) give the step of the plain run,
the vLLM sampler is a setting it takes, and its rollouts go in chunks whose KV is freed; the shards of a
multi-process rollout are put back in one process's order."""

from __future__ import annotations

import importlib.util

import pytest
from safetensors.torch import load_file

from score_bench.harness.contracts import registry
from score_bench.harness.contracts.errors import ScoreBenchError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.training.config import build_config
from score_bench.harness.training.run import whole_batch

from float_tolerance import assert_same_step
from test_score_trainer import ParityTask

ONE_UPDATE = {
    "score": {"stage1_steps": 1, "stage2_steps": 0},
    "star": {"sampling_batches": 1, "updates": 1, "iterations": 1, "variant": "d_plus"},
    "pair-sft": {"sampling_batches": 1, "updates": 1},
}
"""A smoke run cut to one optimiser step, per trainer (the tiny model on the parity task keeps examples)."""


def test_every_registered_trainer_is_covered():
    assert set(registry.available(registry.TRAINERS)) == set(ONE_UPDATE)


def one_update(trainer: str, tiny_model, output, **changes):
    plugin = registry.load(registry.TRAINERS, trainer)
    config = with_values(build_config(plugin.config_class, plugin.presets, "smoke", ONE_UPDATE[trainer]),
                     model=str(tiny_model), output=str(output), eval_every=0, save_every=0, **changes)
    return plugin(), config


@pytest.mark.parametrize("trainer", sorted(ONE_UPDATE))
def test_memory_options_take_the_plain_step_on_every_trainer(trainer, tiny_model, tmp_path):
    """Gradient checkpointing recomputes, micro-batches accumulate (by rows, and a token cap that splits further),
    AdamW without weight decay is Adam: the same samples and the same step, summed in another order."""
    plain, config = one_update(trainer, tiny_model, tmp_path / "plain")
    plain.train(config, task=ParityTask())
    options, optioned = one_update(trainer, tiny_model, tmp_path / "options", gradient_checkpointing=True,
                                   micro_batch_size=2, micro_batch_tokens=60, optimizer="adamw")
    options.train(optioned, task=ParityTask())
    base = load_file(tiny_model / "model.safetensors")
    assert_same_step(base, load_file(tmp_path / "plain" / "model.safetensors"),
                     load_file(tmp_path / "options" / "model.safetensors"))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed: the vLLM suite runs it")
@pytest.mark.parametrize("trainer", sorted(ONE_UPDATE))
def test_every_trainer_takes_the_vllm_sampler_setting(trainer, tiny_model, tmp_path):
    """`--set backend=vllm` is a setting of every trainer (the vLLM suite trains with it); without vLLM the run
    stops before writing anything, naming the extra to install."""
    plugin, config = one_update(trainer, tiny_model, tmp_path / "out", backend="vllm")
    with pytest.raises(ScoreBenchError, match=r"needs vLLM: install score-bench with its \[vllm\] extra"):
        plugin.train(config, task=ParityTask())
    assert not (tmp_path / "out").exists()


def test_baseline_rollouts_go_in_chunks_whose_kv_is_freed(tiny_model, tmp_path):
    """The sampler's memory fix (test_sampler_memory.py) reaches the SFT baselines: a rollout batch of 8
    conversations in chunks of 3 holds at most two chunks' KV, and none once sampled."""
    from score_bench.trainers._sft import SftRun

    _, config = one_update("star", tiny_model, tmp_path / "out", generation_batch_size=3)
    sft = SftRun(config, "star", task=ParityTask())
    store = sft.run.sampler.backend.prefix_cache
    held, add = [], store.add

    def recording_add(prompt, tokens, kv):
        add(prompt, tokens, kv)
        held.append(len(store.entries))

    store.add = recording_add
    assert len(sft.sample(1)) == config.batch_size * config.samples_per_problem == 8
    assert held and max(held) <= 2 * 3 * 2 < 8 * 2  # two attempts per conversation
    assert not store.entries and store.used == 0


def test_whole_batch_restores_one_process_order_from_the_shards():
    # 4 problems, 2 samples: one process yields (sample, problem) sample-major; process r sampled problems r, r+2
    one_process = [(s, i) for s in range(2) for i in range(4)]
    shards = [[(s, i) for s in range(2) for i in (r, r + 2)] for r in range(2)]
    assert whole_batch(shards, samples=2) == one_process
