"""The public Python API: every name in score_bench.__all__ imports, `import score_bench` alone loads neither
torch nor transformers (the entry points import on first use), and train() checks before it loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

import score_bench
from score_bench.harness.contracts.errors import InputError


def test_every_public_name_resolves():
    for name in score_bench.__all__:
        assert getattr(score_bench, name) is not None, name
    assert set(score_bench.__all__) <= set(dir(score_bench))
    with pytest.raises(AttributeError):
        score_bench.no_such_name  # noqa: B018


def test_import_score_bench_loads_no_heavy_module():
    code = "import sys, score_bench; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_train_refuses_its_base_model_as_output_before_loading(tiny_model):
    with pytest.raises(InputError, match="is the model directory"):
        score_bench.train("score", preset="smoke", task="arith", model=str(tiny_model), output=tiny_model)
    with pytest.raises(InputError, match="unknown setting 'no_such_field'"):
        score_bench.train("score", task="arith", model=str(tiny_model), output="unused", no_such_field=1)
