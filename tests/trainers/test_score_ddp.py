"""Two-process SCoRe training through `accelerate launch` on CPU (gloo): a loadable checkpoint from the main
process, and a first step whose all-reduced gradient is the one-process gradient of the whole batch.

`accelerate launch --cpu` starts a single process (CPU multi-process goes through MPI there), so the test uses
the torchrun launcher (`--multi_gpu`); with device=cpu each process builds a gloo group (DistributedType.MULTI_CPU).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from score_bench.harness.training.config import build_config
from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreTrainer

from float_tolerance import assert_same_score_step, assert_same_step
from test_score_resume import ParityTask, child_env, log_rows, write_script

SETTINGS = {"split": "train", "eval_split": "train", "stage1_steps": 1, "stage2_steps": 1, "batch_size": 4,
            "save_every": 1, "eval_every": 2, "beta1": 0.5, "beta2": 0.5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vocab_of(model: Path) -> int:
    return json.loads((Path(model) / "config.json").read_text())["vocab_size"]


def test_two_process_run_writes_a_loadable_checkpoint_with_averaged_gradients(tiny_model, tmp_path):
    out = tmp_path / "ddp"
    settings = {**SETTINGS, "model": str(tiny_model), "output": str(out)}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(free_port())]
    done = subprocess.run([*launch, str(write_script(tmp_path)), json.dumps(settings)], env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_model).chat_template
    AutoModelForCausalLM.from_pretrained(out)
    AutoModelForCausalLM.from_pretrained(out / "stage1")
    assert json.loads((out / "state" / "meta.json").read_text())["world_size"] == 2
    rows = log_rows(out)
    assert [(r["kind"], r["step"]) for r in rows] == [("eval", 0), ("train", 1), ("train", 2), ("eval", 2)]

    # One process on the whole batch: the same problems, the same samples (seeded per problem), so step 1's
    # batch statistics, its gradient norm (after DDP's all-reduce) and its step must agree up to float rounding.
    config = build_config(ScoreConfig, PRESETS, "smoke", {**settings, "output": str(tmp_path / "single")})
    single = ScoreTrainer().train(config, task=ParityTask())
    assert_same_score_step(log_rows(single)[1], rows[1], config, vocab_of(tiny_model))
    assert_same_step(load_file(tiny_model / "model.safetensors"), load_file(single / "stage1" / "model.safetensors"),
                     load_file(out / "stage1" / "model.safetensors"))
    assert rows[0] == log_rows(single)[0]  # the step-0 evaluation of the base model, on the main process
