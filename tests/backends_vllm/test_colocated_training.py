"""vLLM as a trainer's sampler: weights loaded into the running engine in place after an optimiser step make
the sampler's log-probabilities the policy's, and a SCoRe smoke run with rollouts on vLLM logs that agreement
after every step and writes a checkpoint that loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("vllm")

from score_bench.tasks.arith import ArithTask  # noqa: E402

from float_tolerance import logprob_tolerance  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def in_sync(smollm2) -> float:
    """How close the sampler's log-probabilities must be to the policy's: fp32 on both sides, so what is left is
    the order vLLM's and transformers' kernels sum in, logprob_tolerance of SmolLM2 (5.9e-3; measured 1.8e-5
    before an update, 3.5e-5 after one). A sampler whose tied output projection was not repacked showed 0.05."""
    from transformers import AutoConfig

    return logprob_tolerance(AutoConfig.from_pretrained(smollm2))


def _prompts(n):
    task = ArithTask()
    return [task.first_prompt(p) for p in task.problems("train")[:n]]


def test_sampler_log_probabilities_match_the_policy_after_an_update(engine, smollm2, in_sync):
    from transformers import AutoModelForCausalLM

    policy = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    original = {name: p.detach().clone() for name, p in policy.named_parameters()}
    prompts = _prompts(2)
    try:
        assert engine.logprob_gap(policy, prompts) < in_sync  # the same checkpoint: in sync to begin with
        # One real optimiser step of the size SCoRe takes on a model this size (Adam, 1e-4).
        optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4)
        ids = torch.tensor([engine.tokenizer("What is 2 + 2? Answer: 5")["input_ids"]])
        policy(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        policy.eval()
        stale = engine.logprob_gap(policy, prompts)
        engine.sync(policy)
        synced = engine.logprob_gap(policy, prompts)
        print(f"sampler vs policy max |dlogp|: before the load {stale:.3g}, after {synced:.3g}")
        assert stale > 10 * in_sync  # the update changed the policy: a stale sampler is caught (measured 0.64)
        assert synced < in_sync
    finally:
        engine.load_weights(original.items())  # the session's engine goes back to the checkpoint
    assert engine.logprob_gap(AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32), prompts) < in_sync


def test_score_smoke_run_with_rollouts_on_vllm(smollm2, tmp_path, in_sync):
    output = tmp_path / "score-vllm"
    command = [str(Path(sys.executable).parent / "score-bench"), "train", "--task", "arith", "--trainer", "score",
               "--model", str(smollm2), "--output", str(output), "--preset", "smoke", "--set", "backend=vllm",
               "--set", "max_new_tokens=16", "--set", "eval_every=0", "--set", "save_every=0"]
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (output / "training_log.jsonl").read_text().splitlines()]
    steps = [row for row in rows if row.get("kind") == "train"]
    gaps = [row["sampler_logprob_gap"] for row in steps]
    print(f"sampler vs policy max |dlogp| after each of {len(steps)} steps: {gaps}")
    assert len(steps) == 4 and max(gaps) < in_sync
    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(output, dtype=torch.float32)
    # The checkpoint loads and holds numbers. Whether 4 smoke steps moved it depends on their rewards: on this
    # run SmolLM2 earned none in 16 tokens, so there was no learning signal (the Adam-step test covers a change).
    assert all(torch.isfinite(p).all() for p in trained.parameters())
