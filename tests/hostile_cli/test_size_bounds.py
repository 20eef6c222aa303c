"""Sizes with a bound taken from something real (issue #20 item 6): the machine's memory against the rows a run
keeps, the KV cache of a generation batch and a training run's memory estimate; the model's context against
attempts (test_refused.py). Also the one sampling setting that measures nothing: several greedy samples.

Sizes are picked so the refusal holds on any machine (10**12 samples need petabytes) or are derived from this
machine's memory (the KV case), never from this machine's numbers written down."""

from __future__ import annotations

import json
import math

import pytest

from score_bench.harness.evaluation.samples_log import row_memory_floor
from score_bench.harness.runtime.device_memory import device_memory, kv_cache_bytes

HUGE = 10**12


def _eval(model, ws, *extra):
    return ["eval", "--model", model, "--task", "arith", "--limit", "2", "--max-new-tokens", "4", "--device", "cpu",
            "--threads", "1", "--output", ws / "out", *extra]


def _scale(model, ws, *extra):
    return ["scale", "--model", model, "--task", "arith", "--limit", "2", "--max-new-tokens", "4", "--device", "cpu",
            "--threads", "1", "--no-plot", "--output", ws / "out", *extra]


CASES = {
    # case: build(model, ws, train_args) -> argv, what the one error line names
    "scale-budget-of-10^12": (lambda m, ws, train: _scale(m, ws, "--budgets", f"1,{HUGE}"),
                              ["2 problem(s)", f"{HUGE:,} sample(s)", "GiB", "--budgets"]),
    "eval-samples-10^12": (lambda m, ws, train: _eval(m, ws, "--samples", str(HUGE), "--temperature", "1"),
                           [f"{HUGE:,} sample(s)", "GiB", "--samples"]),
    "eval-turns-10^12": (lambda m, ws, train: _eval(m, ws, "--turns", str(HUGE)),
                         [f"{HUGE:,} attempt(s)", "--turns"]),
    "train-batch-10^8": (lambda m, ws, train: train(m, ws / "out", "batch_size=100000000",
                                                    "micro_batch_size=100000000"),
                         ["estimated", "GiB per process", "--dry-run"]),
    "train-generation-batch-10^12": (lambda m, ws, train: train(m, ws / "out", f"generation_batch_size={HUGE}"),
                                     ["estimated", "GiB per process", "--dry-run"]),
    "train-max-new-tokens-10^9": (lambda m, ws, train: train(m, ws / "out", "max_new_tokens=1000000000"),
                                  ["estimated", "GiB per process", "--dry-run"]),
    "eval-greedy-2-samples": (lambda m, ws, train: _eval(m, ws, "--samples", "2"),
                              ["2 samples", "temperature 0.0", "identical greedy copies", "pass@k"]),
    "eval-greedy-3-samples": (lambda m, ws, train: _eval(m, ws, "--samples", "3", "--temperature", "0"),
                              ["3 samples", "identical greedy copies", "pass@k"]),
    "scale-greedy": (lambda m, ws, train: _scale(m, ws, "--temperature", "0"),
                     ["32 samples", "identical greedy copies", "majority vote"]),
}


@pytest.mark.parametrize("case", CASES)
def test_a_size_beyond_the_machine_is_refused_before_loading(cli, snapshot, expect_refused, train_args, tmp_path,
                                                             tiny_model, case):
    build, named = CASES[case]
    ws = tmp_path / "ws"
    ws.mkdir()
    before = snapshot(tmp_path)
    expect_refused(cli(*build(str(tiny_model), ws, train_args)), *named)
    assert snapshot(tmp_path) == before


def test_a_generation_batch_whose_kv_cache_exceeds_the_machine_is_refused(cli, snapshot, expect_refused, tmp_path,
                                                                          tiny_model):
    """One problem, as many samples as make a batch's KV cache twice this machine's memory (counting only the 800
    tokens of two attempts of 400 each); their rows alone fit, so only the batch is at fault."""
    config = json.loads((tiny_model / "config.json").read_text())
    heads = config["num_attention_heads"]
    per_conversation = kv_cache_bytes(config["num_hidden_layers"], config.get("num_key_value_heads") or heads,
                                      config["hidden_size"] // heads, 2 * 400)
    memory, _ = device_memory("cpu")
    samples = math.ceil(2 * memory / per_conversation)
    assert samples * row_memory_floor(2) < memory / 4  # the rows check lets it through
    ws = tmp_path / "ws"
    ws.mkdir()
    before = snapshot(tmp_path)
    done = cli(*_eval(str(tiny_model), ws, "--limit", "1", "--samples", str(samples), "--temperature", "1",
                      "--max-new-tokens", "400", "--batch-size", str(samples)))
    expect_refused(done, f"generation batch of {samples:,} conversations", "KV cache", "--batch-size")
    assert snapshot(tmp_path) == before


def test_dry_run_shows_an_estimate_above_the_machine_and_says_train_refuses_it(cli, train_args, tmp_path,
                                                                              tiny_model):
    done = cli(*train_args(str(tiny_model), tmp_path / "out", "batch_size=100000000", "micro_batch_size=100000000",
                           extra=["--dry-run"]))
    assert done.code == 0, done.stderr
    assert "total" in done.stderr and "`train` refuses this run" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_limit_beyond_the_split_takes_the_whole_split(cli, tmp_path, tiny_model):
    """--limit is "at most N": a limit of 10**12 on a 3-problem split runs the 3 problems."""
    done = cli(*_eval(str(tiny_model), tmp_path, "--task-option", "n_test=3", "--limit", str(HUGE)))
    assert done.code == 0, done.stderr
    assert json.loads((tmp_path / "out" / "results.json").read_text())["counts"]["problems"] == 3
