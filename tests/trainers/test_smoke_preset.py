"""The smoke preset on the embedded arith model moves the weights of every trainer (issue #10 item 7: with
max_new_tokens 8 no answer was ever complete, every reward was 0, and the checkpoints equalled their base).

Needs the embedded base model, whose build takes minutes: models/base-seed0 (what `make demo` and
`score-bench base-model --output models/base-seed0 --seed 0` build) or SCORE_BENCH_BASE_MODEL. Without it the
test is skipped, saying so; a barely trained base (the demo's --quick one) never answers right, so it cannot
stand in."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from score_bench.cli import app


@pytest.mark.parametrize("trainer", ["score", "star", "pair-sft"])
def test_the_smoke_preset_moves_the_embedded_models_weights(embedded_model, tmp_path, trainer):
    out = tmp_path / trainer
    result = CliRunner().invoke(app, ["train", "--task", "arith", "--trainer", trainer, "--model",
                                      str(embedded_model), "--output", str(out), "--preset", "smoke",
                                      "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "no learning signal" not in result.output and "no training example kept" not in result.output
    base, trained = load_file(embedded_model / "model.safetensors"), load_file(out / "model.safetensors")
    assert max(float((trained[k] - base[k]).abs().max()) for k in base) > 1e-4
    rows = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert not all(r.get("no_signal") for r in rows if r["kind"] == "train")
