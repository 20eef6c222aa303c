"""`score-bench plot` in a subprocess: training runs give curves, eval runs give transitions, anything else is
refused in one line with exit 2 and nothing written."""

import json
import subprocess
import sys

PNG = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return subprocess.run([sys.executable, "-m", "score_bench", "plot", *args], capture_output=True, text=True,
                          timeout=120)


def training_run(directory):
    directory.mkdir()
    rows = [{"kind": "eval", "step": step, "stage": 1 if step <= 2 else 2, "accuracy_t1": 0.5,
             "accuracy_t2": 0.5 + step / 10} for step in (0, 2, 4)]
    (directory / "training_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return directory


def eval_run(directory):
    directory.mkdir()
    metrics = {"acc_t1": {"value": 0.5}, "acc_t2": {"value": 0.7}, "delta": {"value": 0.2},
               "delta_i2c": {"value": 0.25}, "delta_c2i": {"value": 0.05}}
    (directory / "results.json").write_text(json.dumps({"metrics": metrics}))
    return directory


def test_plot_draws_curves_for_training_runs_and_transitions_for_eval_runs(tmp_path):
    done = run(str(training_run(tmp_path / "score")), str(eval_run(tmp_path / "score-eval")),
               "--output", str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    for name in ("training_curves.png", "transitions.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == PNG


def test_plot_refuses_a_directory_that_is_neither_run(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run(str(training_run(tmp_path / "score")), str(tmp_path / "empty"), "--output", str(tmp_path / "plots"))
    assert done.returncode == 2
    assert "empty" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "plots").exists()
