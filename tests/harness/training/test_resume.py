"""A saved state records its config flat (nested settings by their own names); a field the record lacks, because it
was added since the state was saved, lets the run resume only at its default value."""

from __future__ import annotations

import json

import pytest
import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.training import resume
from score_bench.harness.training.config import build_config
from score_bench.trainers.score import PRESETS, ScoreConfig


def _saved(tmp_path, config, drop: tuple[str, ...] = ()):
    state = resume.SavedState(1, 1, 0, {"w": torch.zeros(2)}, {}, resume.rng_states(), {})
    resume.save_state(tmp_path, trainer="score", config=config, world_size=1, state=state)
    meta_path = tmp_path / resume.STATE_DIR / "meta.json"
    meta = json.loads(meta_path.read_text())
    for name in drop:
        del meta["config"][name]
    meta_path.write_text(json.dumps(meta))
    return meta["config"]


def test_the_record_is_flat(tmp_path):
    config = with_values(build_config(ScoreConfig, PRESETS, "smoke"), model="hub/model", output=str(tmp_path))
    recorded = _saved(tmp_path, config)
    assert "generation" not in recorded
    assert (recorded["max_new_tokens"], recorded["temperature"], recorded["stop"]) == (32, 1.0, [])


def test_a_field_added_since_the_save_resumes_at_its_default_only(tmp_path):
    """Runs saved before the trainers' generation settings gained `stop` (always empty for a trainer) resume; a
    field missing from the record at a value other than its default is a different run."""
    config = with_values(build_config(ScoreConfig, PRESETS, "smoke"), model="hub/model", output=str(tmp_path))
    _saved(tmp_path, config, drop=("stop",))
    assert resume.load_state(tmp_path, trainer="score", config=config, world_size=1).step == 1
    _saved(tmp_path, config, drop=("learning_rate",))  # the smoke preset's 1e-3, not the default 5e-6
    with pytest.raises(InputError, match="learning_rate: None -> 0.001"):
        resume.load_state(tmp_path, trainer="score", config=config, world_size=1)
