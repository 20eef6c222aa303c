"""Smoke test on the real pretrained model: the CLI's greedy eval runs SmolLM2-135M-Instruct end to end."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.real_model
def test_eval_greedy_on_four_arith_problems(tmp_path, real_model):
    output = tmp_path / "eval"
    done = subprocess.run(
        [sys.executable, "-m", "score_bench", "eval", "--model", str(real_model), "--task", "arith",
         "--limit", "4", "--max-new-tokens", "48", "--output", str(output)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    results = json.loads((output / "results.json").read_text())
    assert results["counts"]["problems"] == 4
    assert {"acc_t1", "acc_t2"} <= results["metrics"].keys()
    rows = [json.loads(line) for line in (output / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(row["attempts"]) == 2 and row["attempts"][0]["text"].strip() for row in rows)
