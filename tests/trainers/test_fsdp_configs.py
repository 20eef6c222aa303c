"""The accelerate config files in configs/accelerate: each loads as accelerate reads it and asks for what its name
says; an FSDP launch on CPU, which accelerate would silently run as plain DDP, is refused in one line before the
run writes anything. (FSDP and DeepSpeed training need GPUs: not run here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig

from test_score_ddp import free_port
from test_score_resume import child_env, write_script

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


def test_fsdp_launch_on_cpu_is_refused_instead_of_running_ddp(tiny_model, tmp_path):
    out = tmp_path / "fsdp"
    settings = {"model": str(tiny_model), "output": str(out), "split": "train", "eval_split": "train",
                "batch_size": 4, "device": "cpu"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / "fsdp_full_shard.yaml"),
              "--num_processes", "2", "--main_process_port", str(free_port())]
    done = subprocess.run([*launch, str(write_script(tmp_path)), json.dumps(settings)], env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "InputError: the accelerate config asks for FSDP, but accelerate runs MULTI_CPU on cpu" in done.stderr
    assert not out.exists()
