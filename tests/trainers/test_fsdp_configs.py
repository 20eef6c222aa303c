"""The accelerate config files in configs/accelerate: each loads as accelerate reads it and asks for what its name
says. The FSDP config runs SCoRe and an SFT baseline on CPU in two processes (sharded with torch's FSDP2 by the
run skeleton, since accelerate selects FSDP on GPUs only) and takes the one-process steps. (DeepSpeed needs GPUs:
not run here.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from accelerate.commands.config.config_args import ClusterConfig
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer

from score_bench.harness.generation.backends import load_backend
from score_bench.harness.training.config import build_config
from score_bench.harness.training.encoding import encode_two_attempts
from score_bench.harness.training.held_out import HeldOutEval
from score_bench.trainers._sft import SftRun
from score_bench.trainers.pair_sft import PRESETS as PAIR_PRESETS, PairSftConfig, PairSftTrainer
from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreTrainer

from float_tolerance import assert_same_score_step, assert_same_step, logprob_tolerance, reduction_tolerance
from test_score_ddp import free_port, vocab_of
from test_score_resume import child_env, log_rows, write_script
from test_score_trainer import ParityTask

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


@pytest.mark.parametrize("name, kind, detail", [
    ("ddp.yaml", "MULTI_GPU", {}),
    ("fsdp_full_shard.yaml", "FSDP", {"fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP"}),
    ("deepspeed_zero2.yaml", "DEEPSPEED", {}),
    ("deepspeed_zero3.yaml", "DEEPSPEED", {}),
])
def test_config_file_loads_and_asks_for_its_backend(name, kind, detail):
    config = ClusterConfig.from_yaml_file(CONFIGS / name)
    assert config.distributed_type.value == kind
    assert config.mixed_precision == "no"  # the trainer config's mixed_precision decides
    for key, value in detail.items():
        assert config.fsdp_config[key] == value
    if kind == "DEEPSPEED":
        stage = int(name[-6])
        settings = json.loads((CONFIGS.parent.parent / config.deepspeed_config["deepspeed_config_file"]).read_text())
        assert settings["zero_optimization"]["stage"] == stage


def launch(script: Path, settings: dict, *how: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", *how, "--num_processes", "2",
               "--main_process_port", str(free_port()), str(script), json.dumps(settings)]
    return subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300)


FSDP = ("--config_file", str(CONFIGS / "fsdp_full_shard.yaml"))
DDP = ("--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no")


def test_two_process_fsdp_score_step_equals_the_one_process_step_on_the_whole_batch(tiny_model, tmp_path):
    """accelerate runs an FSDP config on CPU as DDP, so the SCoRe trainer shards the policy itself with FSDP2
    (harness.training.fsdp). The weights after step 1 (OUTPUT/stage1) are those of one process stepping on the whole
    batch. Step 2 (Stage II, from step 1's sharded Adam state) is compared with the DDP run: from step 2 on, two
    processes sample other tokens than one does (each generates a batch of its own shape), as under DDP."""
    out, ddp, alone = tmp_path / "fsdp", tmp_path / "ddp", tmp_path / "single"
    settings = {"model": str(tiny_model), "output": str(out), "split": "train", "eval_split": "train",
                "stage1_steps": 1, "stage2_steps": 1, "batch_size": 4, "save_every": 1, "eval_every": 2,
                "beta1": 0.5, "beta2": 0.5, "device": "cpu"}
    script = write_script(tmp_path)
    done = launch(script, settings, *FSDP)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sharded with torch's FSDP2 over 2 processes" in done.stdout  # not accelerate's silent DDP
    assert json.loads((out / "state" / "meta.json").read_text())["world_size"] == 2
    finished = load_file(out / "model.safetensors")
    again = launch(script, settings, *FSDP)  # resumes from the saved state, sharding its whole weights and Adam state
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(torch.equal(finished[name], tensor) for name, tensor in load_file(out / "model.safetensors").items())

    config = build_config(ScoreConfig, PRESETS, "smoke", {**settings, "output": str(alone)})
    single = ScoreTrainer().train(config, task=ParityTask())
    base, stage1 = load_file(tiny_model / "model.safetensors"), load_file(out / "stage1" / "model.safetensors")
    assert_same_step(base, load_file(single / "stage1" / "model.safetensors"), stage1)
    rows, alone_rows = log_rows(out), log_rows(single)
    assert [(r["kind"], r["step"]) for r in rows] == [("eval", 0), ("train", 1), ("train", 2), ("eval", 2)]
    assert_same_score_step(alone_rows[1], rows[1], config, vocab_of(tiny_model))
    assert rows[0] == alone_rows[0]  # the base model's evaluation, generated from gathered shards

    done = launch(script, {**settings, "output": str(ddp)}, *DDP)
    assert done.returncode == 0, done.stderr[-3000:]
    # Step 2 from step 1's weights, which differ between the runs only where Adam amplified rounding (above)
    assert_same_step(stage1, load_file(ddp / "model.safetensors"), load_file(out / "model.safetensors"))
    sharded, replicated = log_rows(out), log_rows(ddp)
    assert_same_score_step(replicated[2], sharded[2], config, vocab_of(tiny_model))
    # The final model's evaluation is that of its saved weights, exactly (as step 0's). Not compared with DDP's:
    # those weights differ by rounding, which a greedy near tie could turn into another token.
    final = load_backend("transformers", model=str(out), device="cpu", dtype="float32",
                         batch_size=config.generation_batch_size)
    evaluation = HeldOutEval(ParityTask(), config, final, config.generation.max_new_tokens).row(2, 2)
    assert sharded[3] == json.loads(json.dumps(evaluation))


PAIR_SCRIPT = textwrap.dedent(f"""
    import json, sys

    if __name__ == "__main__":
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_score_trainer import ParityTask
        from score_bench.harness.training.config import build_config
        from score_bench.trainers.pair_sft import PRESETS, PairSftConfig, PairSftTrainer
        PairSftTrainer().train(build_config(PairSftConfig, PRESETS, "smoke", json.loads(sys.argv[1])),
                               task=ParityTask())
        # The script owns the process group accelerate started: destroyed before the interpreter exits, or gloo's
        # worker threads may outlive it ("terminate called without an active exception", a nonzero exit).
        from accelerate import PartialState
        PartialState().destroy_process_group()
""")


def test_two_process_fsdp_baseline_step_equals_the_one_process_step(tiny_model, tmp_path, monkeypatch):
    """The SFT baselines run on the same skeleton as SCoRe, so an FSDP launch on CPU shards their policy too
    (it was refused before). One Pair-SFT update on a minibatch of 3 (slices of 2 and 1 examples) in micro-batches
    of one: the process with one example scores a weight-0 pass in place of its missing second micro-batch, as
    every sharded forward is a collective. A state is saved before the update (once the examples are chosen),
    which must not touch Adam's state (a zero-lr step taken there made the update 0.74 of its size). The step is
    that of one process on the whole minibatch (assert_same_step), as are its loss and gradient norm."""
    out, alone = tmp_path / "fsdp", tmp_path / "single"
    settings = {"model": str(tiny_model), "output": str(out), "split": "train", "eval_split": "train",
                "batch_size": 2, "max_new_tokens": 8, "sampling_batches": 1, "updates": 1, "sft_batch_size": 3,
                "micro_batch_size": 1, "save_every": 1, "eval_every": 1, "device": "cpu"}
    script = tmp_path / "train_pair_sft.py"
    script.write_text(PAIR_SCRIPT)
    done = launch(script, settings, *FSDP)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sharded with torch's FSDP2 over 2 processes" in done.stdout
    assert json.loads((out / "state" / "meta.json").read_text())["world_size"] == 2

    first: list = []  # the minibatch of the one-process step: the samples are seeded per problem, so the same
    update = SftRun._update
    monkeypatch.setattr(SftRun, "_update", lambda sft, examples: first.append(examples) or update(sft, examples))
    config = build_config(PairSftConfig, PAIR_PRESETS, "smoke", {**settings, "output": str(alone)})
    single = PairSftTrainer().train(config, task=ParityTask())
    rows, alone_rows = log_rows(out), log_rows(single)
    assert [(r["kind"], r["step"]) for r in rows] == [("eval", 0), ("train", 1), ("eval", 1)]
    assert rows[0] == alone_rows[0]  # the base model's evaluation, generated from gathered shards
    for key in ("examples", "traces_sampled", "accuracy_t1", "accuracy_t2", "batch_examples", "attempt2_tokens"):
        assert rows[1][key] == alone_rows[1][key], key
    loss, count = alone_rows[1]["loss"], alone_rows[1]["attempt2_tokens"]
    model_config = AutoConfig.from_pretrained(tiny_model)
    assert abs(rows[1]["loss"] - loss) <= logprob_tolerance(model_config) + reduction_tolerance(count) * loss
    positions = int(encode_two_attempts(AutoTokenizer.from_pretrained(tiny_model), first[0]).attention_mask.sum())
    norm = alone_rows[1]["grad_norm"]
    assert abs(rows[1]["grad_norm"] - norm) <= reduction_tolerance(positions) * norm
    sharded = load_file(out / "model.safetensors")
    assert_same_step(load_file(tiny_model / "model.safetensors"), load_file(single / "model.safetensors"), sharded)

    again = launch(script, settings, *FSDP)  # resumes from the state after the update: nothing left to do
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(torch.equal(sharded[name], tensor) for name, tensor in load_file(out / "model.safetensors").items())


@pytest.mark.parametrize("settings, environment, message", [
    ({"lora_r": 8}, {}, "lora_r > 0 is not supported with FSDP on CPU"),
    ({"micro_batch_tokens": 512}, {}, "micro_batch_tokens is not supported under FSDP"),
    ({}, {"FSDP_VERSION": "1"}, "asks for fsdp_version 1: set fsdp_version: 2"),
])
def test_what_fsdp_on_cpu_does_not_run_is_refused_by_name(settings, environment, message, monkeypatch):
    from score_bench.harness.contracts.errors import InputError
    from score_bench.harness.training import fsdp

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=message):
        fsdp.check_cpu_fsdp(build_config(ScoreConfig, PRESETS, "smoke", settings))
