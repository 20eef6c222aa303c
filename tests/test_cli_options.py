"""`eval` and `scale` take their options from their config classes: every field is an option with the field's
default and the first paragraph of its docstring as help, so a field added to a config needs no second declaration;
the command line builds the same config a notebook would."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer

from score_bench import cli
from score_bench.harness.contracts.errors import PluginNotFound
from score_bench.harness.contracts.fields import field_docs, flat_fields
from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.evaluation.configs import EvalConfig, ScaleConfig


def options_of(command: str) -> dict:
    click_command = typer.main.get_command(cli.app).commands[command]
    return {param.name: param for param in click_command.params}


@pytest.mark.parametrize("command, config_class", [("eval", EvalConfig), ("scale", ScaleConfig)])
def test_every_config_field_is_an_option_with_its_default_and_docstring(command, config_class):
    options = options_of(command)
    docs = field_docs(config_class)
    fields = {name: entry for name, entry in flat_fields(config_class).items() if name not in cli.SET_ELSEWHERE}
    assert set(fields) <= set(options)
    for name, entry in fields.items():
        option = options[name]
        if name in cli.SPELLED:
            continue
        assert option.opts == ["--" + name.replace("_", "-")], name
        assert option.help == " ".join(docs[name].split("\n\n")[0].split()), name
        expected = entry.default
        assert option.required == (expected is dataclasses.MISSING), name
        if not option.required:
            assert option.default == (list(expected) if isinstance(expected, tuple) else expected), name
    if command == "eval":
        assert options["first_attempts"].opts == ["--first-attempt"]
    # the generation settings are named flat, with the defaults of the command's own config
    assert options["max_new_tokens"].default is None
    assert options["temperature"].default == (0.7 if command == "scale" else 0.0)


def test_options_build_the_config_a_notebook_would(tmp_path):
    given = {**{name: param.default for name, param in options_of("eval").items()},
             "model": "m", "task": "arith", "output": tmp_path / "out", "max_new_tokens": 8, "temperature": 0.5,
             "stop": ["\n\n"], "turns": 3, "task_option": [], "data_dir": None, "unsafe": False}
    config = cli._sampling_config(EvalConfig, "eval", given)
    assert config == EvalConfig(model="m", task="arith", output=tmp_path / "out", turns=3,
                                generation=GenerationSettings(max_new_tokens=8, temperature=0.5, stop=("\n\n",)))
    scale = cli._sampling_config(ScaleConfig, "scale", {
        **{name: param.default for name, param in options_of("scale").items()},
        "model": "m", "task": "arith", "output": None, "budgets": "2,4", "task_option": [], "data_dir": None,
        "unsafe": False})
    assert scale.budgets == (2, 4) and scale.generation.temperature == 0.7
    assert scale.output == Path("runs/scale/arith-m")


def test_an_unknown_backend_lists_the_registered_ones_and_the_nearest():
    with pytest.raises(PluginNotFound, match=r"unknown backend 'vlm'\. Available: openai, transformers, vllm\. "
                                             r"Did you mean 'vllm'\?"):
        cli._backend_options("vlm")
    with pytest.raises(Exception, match="--max-model-len applies to --backend vllm, not openai"):
        cli._backend_options("openai", max_model_len=512)
    with pytest.raises(Exception, match="--enforce-eager/--compile applies to --backend vllm, not transformers"):
        cli._backend_options("transformers", enforce_eager=False)  # what --compile gives: both flags are named
