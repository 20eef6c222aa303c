"""Where commands write (issue #20 item 6): never into the current directory (what `--output ''` means too), never
over a model checkpoint another run left, and `view` never over a file it did not write unless told to."""

from __future__ import annotations

import json
import os
import shutil

import pytest

ROW = {"id": "p1", "sample": 0, "messages": [{"role": "user", "content": "q"}],
       "attempts": [{"text": "a", "extracted": None, "correct": False, "status": "incorrect", "tokens": 1},
                    {"text": "b", "extracted": "b", "correct": True, "status": "correct", "tokens": 1}],
       "edit_ratio": [1.0]}


def _write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _eval_run(root):
    """A finished-looking eval run: what plot, view and repair-set read."""
    _write(root / "eval_config.json", json.dumps({"config": {"task": "arith", "split": "test", "model": "m"}}))
    _write(root / "samples.jsonl", json.dumps(ROW) + "\n")
    _write(root / "results.json", json.dumps({"metrics": {}}))
    return root


def _score_toy_samples(root):
    from score_bench.tasks.score_toy import ScoreToyTask

    problem = ScoreToyTask().problems()[0]
    return _write(root / "samples.jsonl", json.dumps({"id": problem.id, "responses": ["a", "b"]}) + "\n")


COMMANDS = {
    # command: (build(inputs, model, output) -> argv, what the refusal names)
    "eval": (lambda inputs, model, out: ["eval", "--model", model, "--task", "arith", "--output", out],
             "current directory"),
    "scale": (lambda inputs, model, out: ["scale", "--model", model, "--task", "arith", "--output", out],
              "current directory"),
    "grade": (lambda inputs, model, out: ["grade", "--task", "score-toy", "--samples", _score_toy_samples(inputs),
                                          "--output", out], "current directory"),
    "train": (lambda inputs, model, out: ["train", "--task", "arith", "--trainer", "score", "--model", model,
                                          "--preset", "smoke", "--output", out], "current directory"),
    "plot": (lambda inputs, model, out: ["plot", _eval_run(inputs / "run"), "--output", out], "current directory"),
    "base-model": (lambda inputs, model, out: ["base-model", "--output", out], "current directory"),
    "view": (lambda inputs, model, out: ["view", _eval_run(inputs / "run"), "--output", out], "is a directory"),
    "repair-set": (lambda inputs, model, out: ["repair-set", "--from", _eval_run(inputs / "run"), "--output", out],
                   "*.jsonl"),
    "import-gguf": (lambda inputs, model, out: ["import-gguf", _write(inputs / "m.gguf", b"GGUF" + bytes(64)),
                                                "--output", out], "already exists"),
}
SPELLINGS = {"empty": lambda cwd: "", "dot": lambda cwd: ".", "dot-slash": lambda cwd: "./", "absolute": str}


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_writes_into_the_current_directory(cli, snapshot, expect_refused, tmp_path, monkeypatch,
                                                      tiny_model, command, spelling):
    cwd, inputs = tmp_path / "cwd", tmp_path / "inputs"
    cwd.mkdir()
    _write(cwd / "notes.txt", "the user's own file")
    build, names = COMMANDS[command]
    args = build(inputs, str(tiny_model), SPELLINGS[spelling](cwd))
    monkeypatch.chdir(cwd)
    before = snapshot(tmp_path)
    expect_refused(cli(*args), names)
    assert snapshot(tmp_path) == before


def _model_copy(tiny_model, out):
    shutil.copytree(tiny_model, out)
    return out


FOREIGN_CHECKPOINTS = {
    # what --output holds: a checkpoint some other tool or command wrote, with no record of this run
    "a-whole-model": lambda tiny_model, out: _model_copy(tiny_model, out),
    "weights-only": lambda tiny_model, out: _write(out / "model.safetensors", (tiny_model / "model.safetensors")
                                                   .read_bytes()),
    "config-only": lambda tiny_model, out: _write(out / "config.json", (tiny_model / "config.json").read_text()),
    "a-lora-adapter": lambda tiny_model, out: _write(out / "adapter_config.json", json.dumps({"r": 8})),
    "a-base-model-build": lambda tiny_model, out: _write(
        _model_copy(tiny_model, out) / "card.json", json.dumps({"seed": 0})),
}


@pytest.mark.parametrize("holds", FOREIGN_CHECKPOINTS)
def test_train_refuses_an_output_holding_a_checkpoint_of_something_else(cli, snapshot, expect_refused, tmp_path,
                                                                        tiny_model, holds):
    out = tmp_path / "out"
    FOREIGN_CHECKPOINTS[holds](tiny_model, out)
    before = snapshot(tmp_path)
    done = cli("train", "--task", "arith", "--trainer", "score", "--model", tiny_model, "--preset", "smoke",
               "--threads", "1", "--output", out)
    expect_refused(done, str(out), "holds a model checkpoint", "use another output directory")
    assert snapshot(tmp_path) == before


def test_train_into_its_own_finished_run_is_still_accepted(tmp_path, tiny_model):
    """A checkpoint with this run's trainer_config.json is its own: rerunning the same config redoes it."""
    from score_bench.harness.contracts.fields import plain_values, with_values
    from score_bench.harness.training.config import build_config
    from score_bench.harness.training.outputs import CONFIG_FILE
    from score_bench.harness.training.resume import check_output_identity
    from score_bench.trainers.score import PRESETS, ScoreConfig

    out = _model_copy(tiny_model, tmp_path / "out")
    config = with_values(build_config(ScoreConfig, PRESETS, "smoke"), model=str(tiny_model), output=str(out))
    _write(out / CONFIG_FILE, json.dumps({"config": plain_values(config)}))
    check_output_identity(out, config, CONFIG_FILE)  # no error


def _report(cli, run, output, *extra):
    return cli("view", run, "--output", output, *extra)


@pytest.mark.parametrize("existing", ["notes.html", "notes.txt", "empty"])
def test_view_refuses_to_replace_a_file_it_did_not_write(cli, snapshot, expect_refused, tmp_path, existing):
    run = _eval_run(tmp_path / "run")
    target = _write(tmp_path / existing, "" if existing == "empty" else "<html>the user's page</html>")
    before = snapshot(tmp_path)
    expect_refused(_report(cli, run, target), str(target), "not a score-bench report", "--force")
    assert snapshot(tmp_path) == before


def test_view_replaces_its_own_report_and_any_file_with_force(cli, tmp_path):
    run = _eval_run(tmp_path / "run")
    report = tmp_path / "report.html"
    assert _report(cli, run, report).code == 0
    first = report.read_bytes()
    _write(run / "samples.jsonl", json.dumps({**ROW, "id": "p2"}) + "\n")
    assert _report(cli, run, report).code == 0  # its own earlier report: replaced
    assert report.read_bytes() != first and b'"p2"' in report.read_bytes()
    other = _write(tmp_path / "other.html", "<html>mine</html>")
    assert _report(cli, run, other, "--force").code == 0
    assert b"score-bench view" in other.read_bytes()


@pytest.mark.timeout(60)
def test_view_refuses_an_output_that_is_not_a_regular_file(cli, expect_refused, tmp_path):
    run = _eval_run(tmp_path / "run")
    fifo = tmp_path / "pipe.html"
    os.mkfifo(fifo)
    expect_refused(_report(cli, run, fifo, "--force"), str(fifo), "not a regular file")
