"""check_model_saveable: a checkpoint whose config.json still says GGUF (transformers' own GGUF import leaves
`quantization_config: {quant_method: gguf}` over plain float weights) trains but cannot be saved; a training run
on it must be refused before anything loads, not crash at its first checkpoint (issue #14's first MBPP run did)."""

from __future__ import annotations

import json

import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.runtime.guards import check_model_saveable


def _checkpoint(path, **config):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "llama", **config}))
    return path


def test_a_gguf_quantization_config_is_refused_naming_the_model_and_the_fix(tmp_path):
    model = _checkpoint(tmp_path / "quick-import", quantization_config={"quant_method": "gguf"})
    with pytest.raises(InputError) as refused:
        check_model_saveable(str(model))
    message = str(refused.value)
    assert str(model) in message and "quantization_config gguf" in message and "import-gguf" in message
    assert "\n" not in message


@pytest.mark.parametrize("config", [{}, {"quantization_config": None}, {"quantization_config": {"quant_method": "bnb"}}])
def test_plain_and_other_checkpoints_pass(tmp_path, config):
    check_model_saveable(str(_checkpoint(tmp_path / "plain", **config)))  # transformers says what it cannot save


def test_a_hub_id_or_missing_directory_is_left_to_the_loader(tmp_path):
    check_model_saveable("HuggingFaceTB/SmolLM2-135M-Instruct")
    check_model_saveable(str(tmp_path / "nowhere"))
