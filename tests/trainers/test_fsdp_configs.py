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

from score_bench.harness.training import build_config
from score_bench.trainers.pair_sft import PRESETS as PAIR_PRESETS, PairSftConfig, PairSftTrainer
from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreTrainer

from test_score_ddp import free_port
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


def assert_weights_close(a: Path, b: Path) -> None:
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert left.keys() == right.keys()
    for name in left:
        torch.testing.assert_close(left[name], right[name], rtol=0, atol=1e-6, msg=name)


def test_two_process_fsdp_score_step_equals_the_one_process_step_on_the_whole_batch(tiny_model, tmp_path):
    """accelerate runs an FSDP config on CPU as DDP, so the SCoRe trainer shards the policy itself with FSDP2
    (harness.fsdp). The weights after step 1 (OUTPUT/stage1) are those of one process stepping on the whole batch.
    Step 2 (Stage II, from step 1's sharded Adam state) is compared with the DDP run: from step 2 on, two processes
    sample other tokens than one does (each generates a batch of its own shape), as under DDP."""
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

    single = ScoreTrainer().train(build_config(ScoreConfig, PRESETS, "smoke", {**settings, "output": str(alone)}),
                                  task=ParityTask())
    base, stepped = load_file(tiny_model / "model.safetensors"), load_file(single / "stage1" / "model.safetensors")
    assert max(float((stepped[name] - base[name]).abs().max()) for name in base) > 1e-4  # the step moved weights
    assert_weights_close(out / "stage1", single / "stage1")
    rows, alone_rows = log_rows(out), log_rows(single)
    assert [(r["kind"], r["step"]) for r in rows] == [("eval", 0), ("train", 1), ("train", 2), ("eval", 2)]
    for key in ("accuracy_t1", "accuracy_t2", "attempt_tokens", "kl_t1", "kl_t2", "loss", "grad_norm"):
        assert rows[1][key] == pytest.approx(alone_rows[1][key], rel=1e-4, abs=1e-6), key
    assert rows[0] == alone_rows[0]  # the base model's evaluation, generated from gathered shards

    done = launch(script, {**settings, "output": str(ddp)}, *DDP)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_weights_close(out, ddp)
    sharded, replicated = log_rows(out), log_rows(ddp)
    for key in ("accuracy_t1", "accuracy_t2", "attempt_tokens", "kl_t1", "kl_t2", "loss", "grad_norm"):
        assert sharded[2][key] == pytest.approx(replicated[2][key], rel=1e-4, abs=1e-6), key
    assert sharded[3] == replicated[3]  # the final model's evaluation


PAIR_SCRIPT = textwrap.dedent(f"""
    import json, sys

    if __name__ == "__main__":
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_score_trainer import ParityTask
        from score_bench.harness.training import build_config
        from score_bench.trainers.pair_sft import PRESETS, PairSftConfig, PairSftTrainer
        PairSftTrainer().train(build_config(PairSftConfig, PRESETS, "smoke", json.loads(sys.argv[1])),
                               task=ParityTask())
""")


def test_two_process_fsdp_baseline_step_equals_the_one_process_step(tiny_model, tmp_path):
    """The SFT baselines run on the same skeleton as SCoRe, so an FSDP launch on CPU shards their policy too
    (it was refused before). One Pair-SFT update on a minibatch of 3 (slices of 2 and 1 examples) in micro-batches
    of one: the process with one example scores a weight-0 pass in place of its missing second micro-batch, as
    every sharded forward is a collective. A state is saved before the update (once the examples are chosen),
    which must not touch Adam's state. The weights after the update are those of one process on the whole
    minibatch, to within 1e-3 of the update itself: gradients summed in another order move Adam's first step
    g / (|g| + eps) far less than that; what was measured is one float32 rounding of a weight near 1 (1.2e-7, about
    1e-4 of the update). A zero-lr step taken by that save would have shrunk the update to 0.74 of its size."""
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

    single = PairSftTrainer().train(build_config(PairSftConfig, PAIR_PRESETS, "smoke",
                                                 {**settings, "output": str(alone)}), task=ParityTask())
    rows, alone_rows = log_rows(out), log_rows(single)
    assert [(r["kind"], r["step"]) for r in rows] == [("eval", 0), ("train", 1), ("eval", 1)]
    assert rows[0] == alone_rows[0]  # the base model's evaluation, generated from gathered shards
    for key in ("examples", "traces_sampled", "accuracy_t1", "accuracy_t2", "batch_examples", "attempt2_tokens"):
        assert rows[1][key] == alone_rows[1][key], key
    for key in ("loss", "grad_norm"):
        assert rows[1][key] == pytest.approx(alone_rows[1][key], rel=1e-5), key
    base, sharded, whole = (load_file(d / "model.safetensors") for d in (tiny_model, out, single))
    update = max(float((whole[name] - base[name]).abs().max()) for name in base)
    assert update > 1e-4  # the step moved the weights
    assert max(float((sharded[name] - whole[name]).abs().max()) for name in base) <= 1e-3 * update

    again = launch(script, settings, *FSDP)  # resumes from the state after the update: nothing left to do
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(torch.equal(sharded[name], tensor) for name, tensor in load_file(out / "model.safetensors").items())


@pytest.mark.parametrize("settings, environment, message", [
    ({"lora_r": 8}, {}, "lora_r > 0 is not supported with FSDP on CPU"),
    ({"micro_batch_tokens": 512}, {}, "micro_batch_tokens is not supported under FSDP"),
    ({}, {"FSDP_VERSION": "1"}, "asks for fsdp_version 1: set fsdp_version: 2"),
])
def test_what_fsdp_on_cpu_does_not_run_is_refused_by_name(settings, environment, message, monkeypatch):
    from score_bench.harness import fsdp
    from score_bench.harness.errors import InputError

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=message):
        fsdp.check_cpu_fsdp(build_config(ScoreConfig, PRESETS, "smoke", settings))
