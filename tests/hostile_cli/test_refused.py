"""Every hostile-but-honest input of issue #11, command by command: each is refused with exit 2 and one line
on stderr that names the input, and leaves every file under the workspace as it was (hashed before and after).

A case is (id, build, expected): build(ws, models) writes the inputs it needs under the workspace `ws` and
returns the command line; expected are substrings of the one error line (the input it must name)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from score_bench.harness.runtime.guards import output_lock


def _eval(ws, models, *extra, model=None):
    return ["eval", "--model", model or models["tiny"], "--task", "arith", "--limit", "2", "--max-new-tokens", "4",
            "--batch-size", "2", "--device", "cpu", "--threads", "1", "--output", ws / "out", *extra]


def _train(ws, models, *sets, model=None, extra=()):
    args = ["train", "--task", "arith", "--trainer", "score", "--model", model or models["tiny"],
            "--output", ws / "out", "--preset", "smoke", "--threads", "1", *extra]
    for item in sets:
        args += ["--set", item]
    return args


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _score_toy_samples(ws, rows):
    from score_bench.tasks.score_toy import ScoreToyTask

    ids = [p.id for p in ScoreToyTask().problems()]
    return _write(ws / "samples.jsonl", "".join(json.dumps({"id": ids[i], "responses": r}) + "\n" for i, r in rows))


def _run_dir(ws, grades: str, results: str = '{"metrics": {}}') -> Path:
    """A grade run directory with the given grades.jsonl text, for compare."""
    _write(ws / "r" / "grades.jsonl", grades)
    return _write(ws / "r" / "results.json", results).parent


def _eval_run(ws):
    """A directory that looks like an eval run: grade and plot must not overwrite it."""
    run = ws / "evalrun"
    _write(run / "eval_config.json", "{}")
    _write(run / "samples.jsonl", "")
    _write(run / "results.json", json.dumps({"metrics": {}}))
    return run


DEEP = "[" * 100_000 + "]" * 100_000 + "\n"
CASES = [
    # eval: numbers
    ("eval-seed-negative", lambda ws, m: _eval(ws, m, "--seed", "-1"), ["seed", "-1"]),
    ("eval-temperature-inf", lambda ws, m: _eval(ws, m, "--temperature", "inf"), ["temperature", "inf"]),
    ("eval-temperature-nan", lambda ws, m: _eval(ws, m, "--temperature", "nan"), ["temperature", "nan"]),
    ("eval-top-p-out-of-range", lambda ws, m: _eval(ws, m, "--top-p", "1.5"), ["top_p", "1.5"]),
    ("eval-threads-zero", lambda ws, m: _eval(ws, m, "--threads", "0"), ["threads", "0"]),
    ("eval-prefix-cache-negative", lambda ws, m: _eval(ws, m, "--prefix-cache-mb", "-1"), ["prefix_cache_mb"]),
    ("eval-stop-empty", lambda ws, m: _eval(ws, m, "--stop", ""), ["stop string"]),
    # eval: task options
    ("eval-task-option-unknown", lambda ws, m: _eval(ws, m, "--task-option", "colour=red"), ["colour", "arith"]),
    ("eval-task-option-bad-type", lambda ws, m: _eval(ws, m, "--task-option", "digits=two"), ["digits", "two"]),
    ("eval-task-option-no-equals", lambda ws, m: _eval(ws, m, "--task-option", "digits"), ["--task-option", "digits"]),
    ("eval-data-dir-on-score-toy", lambda ws, m: ["eval", "--model", m["tiny"], "--task", "score-toy", "--data-dir",
                                                  ws, "--output", ws / "out"], ["--data-dir", "score-toy"]),
    ("eval-unsafe-on-arith", lambda ws, m: _eval(ws, m, "--unsafe"), ["--unsafe", "arith"]),
    # eval: late failures caught before anything is written
    ("eval-chat-template-garbage", lambda ws, m: _eval(ws, m, "--chat-template",
                                                       _write(ws / "t.jinja", "{% for m in messages %}{{ m.x(")),
     ["t.jinja"]),
    ("eval-first-attempt-not-string", lambda ws, m: _eval(ws, m, "--first-attempt", _write(
        ws / "fa.jsonl", "".join(json.dumps({"id": f"arith/test/{i}", "text": 5}) + "\n" for i in range(2)))),
     ["fa.jsonl", "line 1"]),
    ("eval-first-attempt-not-utf8", lambda ws, m: _eval(ws, m, "--first-attempt", _write(ws / "fa.jsonl", b"\xff\xfe")),
     ["fa.jsonl"]),
    ("eval-first-attempt-deep", lambda ws, m: _eval(ws, m, "--first-attempt", _write(ws / "fa.jsonl", DEEP)),
     ["fa.jsonl"]),
    ("eval-first-attempt-json-deep", lambda ws, m: _eval(ws, m, "--first-attempt", _write(ws / "fa.json", DEEP)),
     ["fa.json"]),
    # eval: resources
    ("eval-turns-past-context", lambda ws, m: _eval(ws, m, "--turns", "50", "--max-new-tokens", "64"),
     ["context", "max_position_embeddings"]),
    ("eval-huge-instruction", lambda ws, m: _eval(ws, m, "--correction-instruction", "please fix it " * 30_000),
     ["context"]),
    ("eval-all-nan-weights", lambda ws, m: _eval(ws, m, model=m["all-nan"]), ["all-nan", "NaN"]),
    # eval: models that do not load
    ("eval-model-empty-dir", lambda ws, m: _eval(ws, m, model=m["empty"]), ["empty", "config.json"]),
    ("eval-model-truncated", lambda ws, m: _eval(ws, m, model=m["truncated"]), ["truncated"]),
    ("eval-model-config-not-json", lambda ws, m: _eval(ws, m, model=m["config-not-json"]), ["config-not-json"]),
    ("eval-model-no-tokenizer", lambda ws, m: _eval(ws, m, model=m["no-tokenizer"]), ["no-tokenizer", "tokenizer"]),
    # eval: output directories
    ("eval-output-is-file", lambda ws, m: _eval(ws, m)[:-1] + [_write(ws / "out", "x")], ["out", "is a file"]),
    ("eval-output-under-file", lambda ws, m: _eval(ws, m)[:-1] + [_write(ws / "f", "x") / "sub"], ["is a file"]),
    ("eval-output-damaged-samples", lambda ws, m: _eval(ws, m)[:-1] + [_write(ws / "run" / "samples.jsonl", "{\n").parent],
     ["samples"]),
    # train: numbers, checked before anything loads
    ("train-temperature-nan", lambda ws, m: _train(ws, m, "temperature=nan"), ["temperature", "nan"]),
    ("train-alpha-nan", lambda ws, m: _train(ws, m, "alpha=nan"), ["alpha", "nan"]),
    ("train-grad-clip-negative", lambda ws, m: _train(ws, m, "grad_clip=-1"), ["grad_clip", "-1"]),
    ("train-beta1-negative", lambda ws, m: _train(ws, m, "beta1=-5"), ["beta1", "-5"]),
    ("train-lr-negative", lambda ws, m: _train(ws, m, "learning_rate=-1"), ["learning_rate", "-1"]),
    ("train-lr-nan", lambda ws, m: _train(ws, m, "learning_rate=nan"), ["learning_rate", "nan"]),
    ("train-lr-inf", lambda ws, m: _train(ws, m, "learning_rate=inf"), ["learning_rate", "inf"]),
    ("train-top-p-out-of-range", lambda ws, m: _train(ws, m, "top_p=2"), ["top_p", "2"]),
    ("train-steps-bool-yaml", lambda ws, m: _train(ws, m, extra=["--config", _write(ws / "c.yaml", "stage1_steps: true\n")]),
     ["stage1_steps", "True"]),
    ("train-yaml-not-utf8", lambda ws, m: _train(ws, m, extra=["--config", _write(ws / "c.yaml", b"\xff\xfe\x00")]),
     ["c.yaml"]),
    ("train-yaml-deep", lambda ws, m: _train(ws, m, extra=["--config", _write(ws / "c.yaml", DEEP)]), ["c.yaml"]),
    ("train-task-option-unknown", lambda ws, m: _train(ws, m, extra=["--task-option", "colour=red"]), ["colour", "arith"]),
    # train: inputs checked before a step runs
    ("train-split-test", lambda ws, m: _train(ws, m, "split=test"), ["split", "test"]),
    ("train-output-is-model", lambda ws, m: ["train", "--task", "arith", "--trainer", "score", "--model", m["copy"],
                                             "--output", m["copy"], "--preset", "smoke"], ["overwrite", "model"]),
    ("train-model-empty-dir", lambda ws, m: _train(ws, m, model=m["empty"]), ["empty", "config.json"]),
    ("train-model-truncated", lambda ws, m: _train(ws, m, model=m["truncated"]), ["truncated"]),
    ("train-model-config-not-json", lambda ws, m: _train(ws, m, model=m["config-not-json"]), ["config-not-json"]),
    ("train-model-no-tokenizer", lambda ws, m: _train(ws, m, model=m["no-tokenizer"]), ["no-tokenizer"]),
    ("train-all-nan-weights", lambda ws, m: _train(ws, m, model=m["all-nan"]), ["all-nan", "NaN"]),
    ("train-max-new-tokens-past-context", lambda ws, m: _train(ws, m, "max_new_tokens=600"), ["context"]),
    ("train-output-holds-another-checkpoint", lambda ws, m: _train(ws, m) if _write(
        ws / "out" / "trainer_config.json", json.dumps({"config": {"model": "other", "seed": 3}})) else [],
     ["out", "different config"]),
    ("train-output-holds-an-eval", lambda ws, m: _train(ws, m)[:8] + [_eval_run(ws)] + _train(ws, m)[9:],
     ["evalrun", "evaluation"]),
    ("train-output-is-file", lambda ws, m: _train(ws, m)[:8] + [_write(ws / "out", "x")] + _train(ws, m)[9:],
     ["--output", "is a file"]),
    # base-model
    ("base-model-minutes-nan", lambda ws, m: ["base-model", "--output", ws / "b", "--minutes", "nan"], ["minutes", "nan"]),
    ("base-model-eval-problems-negative", lambda ws, m: ["base-model", "--output", ws / "b", "--eval-problems", "-1"],
     ["eval-problems", "-1"]),
    ("base-model-steps-zero", lambda ws, m: ["base-model", "--output", ws / "b", "--steps", "0"], ["steps", "0"]),
    ("base-model-unknown-task", lambda ws, m: ["base-model", "--output", ws / "b", "--task", "chess"],
     ["chess", "arith, countdown"]),
    ("base-model-output-is-file", lambda ws, m: ["base-model", "--output", _write(ws / "b", "x")], ["b", "is a file"]),
    ("base-model-output-not-empty", lambda ws, m: ["base-model", "--output", _write(ws / "b" / "x", "x").parent],
     ["not empty"]),
    # grade
    ("grade-into-eval-run", lambda ws, m: ["grade", "--task", "score-toy", "--samples", _score_toy_samples(
        ws, [(0, ["a", "b"])]), "--output", _eval_run(ws)], ["evalrun", "another run"]),
    ("grade-samples-not-utf8", lambda ws, m: ["grade", "--task", "score-toy", "--samples",
                                              _write(ws / "s.jsonl", b"\xff\xfe"), "--output", ws / "g"], ["s.jsonl"]),
    ("grade-samples-deep", lambda ws, m: ["grade", "--task", "score-toy", "--samples", _write(ws / "s.jsonl", DEEP),
                                          "--output", ws / "g"], ["s.jsonl"]),
    ("grade-data-dir-on-score-toy", lambda ws, m: ["grade", "--task", "score-toy", "--samples", _score_toy_samples(
        ws, [(0, ["a"])]), "--output", ws / "g", "--data-dir", ws], ["--data-dir", "score-toy"]),
    ("grade-output-is-file", lambda ws, m: ["grade", "--task", "score-toy", "--samples", _score_toy_samples(
        ws, [(0, ["a"])]), "--output", _write(ws / "g", "x")], ["is a file"]),
    # compare
    ("compare-results-not-json", lambda ws, m: ["compare", _write(ws / "r" / "results.json", "{bad").parent],
     ["results.json"]),
    ("compare-results-not-utf8", lambda ws, m: ["compare", _write(ws / "r" / "results.json", b"\xff").parent],
     ["results.json"]),
    ("compare-results-deep", lambda ws, m: ["compare", _write(ws / "r" / "results.json", DEEP).parent],
     ["results.json"]),
    ("compare-results-no-metrics", lambda ws, m: ["compare", _write(ws / "r" / "results.json", "[1]").parent],
     ["results.json"]),
    ("compare-rows-without-keys", lambda ws, m: ["compare", _run_dir(ws, '{"id": "a"}\n')], ["grades.jsonl:1"]),
    ("compare-rows-deep", lambda ws, m: ["compare", _run_dir(ws, DEEP)], ["grades.jsonl"]),
    ("compare-unequal-samples", lambda ws, m: ["compare", _run_dir(
        ws, '{"id": "a", "correct": [true]}\n{"id": "a", "correct": [false]}\n{"id": "b", "correct": [true]}\n')],
     ["unequal numbers of samples"]),
    ("compare-missing-run", lambda ws, m: ["compare", ws / "nowhere"], ["nowhere"]),
    # plot
    ("plot-missing-run", lambda ws, m: ["plot", ws / "nowhere", "--output", ws / "p"], ["nowhere"]),
    ("plot-results-deep", lambda ws, m: ["plot", _write(ws / "r" / "results.json", DEEP).parent, "--output", ws / "p"],
     ["results.json"]),
    ("plot-log-deep", lambda ws, m: ["plot", _write(ws / "t" / "training_log.jsonl", DEEP).parent,
                                     "--output", ws / "p"], ["training_log.jsonl"]),
    ("plot-not-a-run", lambda ws, m: ["plot", _write(ws / "d" / "x.txt", "x").parent, "--output", ws / "p"], ["d"]),
]


@pytest.fixture(scope="module")
def models(tiny_model, model_variants, tmp_path_factory):
    import shutil

    copy = tmp_path_factory.mktemp("model-copy") / "m"
    shutil.copytree(tiny_model, copy)
    return {"tiny": tiny_model, "copy": copy, **model_variants}


@pytest.mark.parametrize("build, expected", [pytest.param(b, e, id=i) for i, b, e in CASES])
def test_refused_with_one_line_naming_the_input_and_nothing_written(cli, snapshot, tmp_path, models, build,
                                                                    expected):
    ws = tmp_path / "ws"
    ws.mkdir()
    args = build(ws, models)
    before, model_before = snapshot(tmp_path), snapshot(models["copy"])
    done = cli(*args)
    assert done.code == 2, done.stderr + done.stdout
    assert len(done.error_lines) == 1, done.stderr
    line = done.error_lines[0]
    assert done.stderr.rstrip("\n").splitlines()[-1] == line  # the error is the last thing said
    assert line.startswith("error:") and "Traceback" not in line
    for part in expected:
        assert str(part) in line, line
    assert snapshot(tmp_path) == before
    assert snapshot(models["copy"]) == model_before


def test_a_second_train_into_a_held_directory_is_refused_and_the_lock_is_released(cli, snapshot, tmp_path, models):
    out = tmp_path / "out"
    with output_lock(out, "train"):
        held = snapshot(tmp_path)
        done = cli(*_train(tmp_path, models))
        assert done.code == 2 and len(done.error_lines) == 1
        assert "another train is writing to" in done.error_lines[0] and str(out) in done.error_lines[0]
        assert snapshot(tmp_path) == held
    assert not out.exists()  # the lock's file and the directory it created are gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_is_refused(cli, tmp_path, models):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        done = cli(*_eval(tmp_path, models)[:-1], parent / "out")
    finally:
        parent.chmod(0o755)
    assert done.code == 2 and len(done.error_lines) == 1 and "not writable" in done.error_lines[0]
