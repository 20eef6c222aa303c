"""What the guards allow, and what the boundary does with errors that are not the user's: grading unequal
samples per problem (against hand-computed numbers), task options reaching the task, locks that leave nothing
behind, resume identity on resolved paths, and internal errors reported as bugs."""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass

import pytest
import torch

from score_bench.cli import _run_labels, describe_failure
from score_bench.harness.contracts.errors import InputError, ScoreBenchError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.runtime.guards import check_finite_loss
from score_bench.harness.training import resume
from score_bench.tasks.score_toy import ScoreToyTask


def _samples(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_grade_with_unequal_samples_per_problem_matches_hand_computed_metrics(cli, tmp_path):
    p0, p1 = ScoreToyTask().problems()[:2]
    wrong = {p.id: p.fixed_first_attempt for p in (p0, p1)}
    right = {p.id: p.metadata["correct_answer"] for p in (p0, p1)}

    def row(problem, first, second):
        pick = lambda ok: right[problem.id] if ok else wrong[problem.id]  # noqa: E731
        return {"id": problem.id, "responses": [pick(first), pick(second)]}

    # p0: three samples (F,T) (T,T) (F,F); p1: two samples (T,F) (F,F); rows interleaved.
    rows = [row(p0, False, True), row(p1, True, False), row(p0, True, True), row(p1, False, False),
            row(p0, False, False)]
    done = cli("grade", "--task", "score-toy", "--samples", _samples(tmp_path / "s.jsonl", rows),
               "--output", tmp_path / "g")
    assert done.code == 0, done.stderr
    results = json.loads((tmp_path / "g" / "results.json").read_text())
    metrics = results["metrics"]
    # Per problem: p0 acc_t1 1/3, acc_t2 2/3, i->c 1/3, c->i 0; p1 acc_t1 1/2, acc_t2 0, i->c 0, c->i 1/2.
    assert metrics["acc_t1"]["value"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert metrics["acc_t2"]["value"] == pytest.approx((2 / 3 + 0) / 2)
    assert metrics["delta"]["value"] == pytest.approx(1 / 3 - 5 / 12)
    assert metrics["delta_i2c"]["value"] == pytest.approx(1 / 6)
    assert metrics["delta_c2i"]["value"] == pytest.approx(1 / 4)
    # Unbiased pass@k with each problem's own n: pass@2 t1 = mean(1 - C(2,2)/C(3,2), 1) = (2/3 + 1) / 2.
    assert metrics["pass_at_k"]["pass@1_t1"] == pytest.approx(5 / 12)
    assert metrics["pass_at_k"]["pass@2_t1"] == pytest.approx((2 / 3 + 1) / 2)
    assert metrics["pass_at_k"]["pass@2_t2"] == pytest.approx((1 + 0) / 2)
    assert set(metrics["pass_at_k"]) == {"pass@1_t1", "pass@2_t1", "pass@1_t2", "pass@2_t2"}
    counts = results["counts"]
    assert counts["samples_per_problem"] is None and (counts["samples_min"], counts["samples_max"]) == (2, 3)
    assert counts["samples_by_problem"] == {p0.id: 3, p1.id: 2}
    assert not (tmp_path / "g" / ".lock").exists()


def test_grade_reruns_into_its_own_directory_but_not_over_another_grade(cli, tmp_path):
    p0 = ScoreToyTask().problems()[0]
    first = _samples(tmp_path / "a.jsonl", [{"id": p0.id, "responses": ["x", "y"]}])
    second = _samples(tmp_path / "b.jsonl", [{"id": p0.id, "responses": ["y", "x"]}])
    assert cli("grade", "--task", "score-toy", "--samples", first, "--output", tmp_path / "g").code == 0
    assert cli("grade", "--task", "score-toy", "--samples", first, "--output", tmp_path / "g").code == 0
    kept = (tmp_path / "g" / "results.json").read_bytes()
    done = cli("grade", "--task", "score-toy", "--samples", second, "--output", tmp_path / "g")
    assert done.code == 2 and "another run" in done.stderr
    assert (tmp_path / "g" / "results.json").read_bytes() == kept


def test_eval_passes_a_typed_task_option_and_results_record_it(cli, tmp_path, tiny_model):
    data = tmp_path / "toy.csv"
    data.write_text("category,question,original_answer,correct_answer\n"
                    "geo,What is the capital of France?,The capital is Lyon.,The capital is Paris.\n"
                    "geo,What is the capital of Italy?,The capital is Milan.,The capital is Rome.\n",
                    encoding="utf-8")
    out = tmp_path / "run"
    done = cli("eval", "--model", tiny_model, "--task", "score-toy", "--task-option", f"path={data}",
               "--max-new-tokens", "4", "--batch-size", "2", "--device", "cpu", "--threads", "1",
               "--stop", "Paris", "--system-prompt", "Answer briefly.", "--output", out)
    assert done.code == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["task_options"] == {"path": str(data)}
    assert results["counts"]["problems"] == 2
    assert results["generation"]["stop"] == ["Paris"]
    assert results["task"]["first_prompt_example"][0] == {"role": "system", "content": "Answer briefly."}
    assert sorted(p.name for p in out.iterdir()) == ["eval_config.json", "results.json", "samples.jsonl"]


def test_grade_records_its_task_options_as_eval_does_and_keeps_them_apart(cli, snapshot, expect_refused, tmp_path):
    data = tmp_path / "toy.csv"
    data.write_text("category,question,original_answer,correct_answer\n"
                    "geo,What is the capital of France?,The capital is Lyon.,The capital is Paris.\n",
                    encoding="utf-8")
    problem = ScoreToyTask(path=data).problems()[0]
    samples = _samples(tmp_path / "s.jsonl", [{"id": problem.id, "responses": ["Lyon", "Paris"]}])
    out = tmp_path / "g"
    done = cli("grade", "--task", "score-toy", "--task-option", f"path={data}", "--samples", samples, "--output", out)
    assert done.code == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["task_options"] == {"path": str(data)}  # eval's shape: results.config.task_options
    if importlib.util.find_spec("jsonschema"):
        from score_bench.harness.evaluation.result_schema import problems

        assert problems("results", results) == []
    assert results["metrics"]["acc_t2"]["value"] == 1.0
    kept = snapshot(out)
    other = tmp_path / "other.csv"
    other.write_bytes(data.read_bytes())
    regraded = cli("grade", "--task", "score-toy", "--task-option", f"path={other}", "--samples", samples,
                   "--output", out)
    expect_refused(regraded, str(out), "results of another run")
    assert snapshot(out) == kept


def test_plot_labels_runs_that_share_a_directory_name_by_path(tmp_path):
    a, b, c = tmp_path / "a" / "x", tmp_path / "b" / "x", tmp_path / "c" / "y"
    for path in (a, b, c):
        path.mkdir(parents=True)
    labels = _run_labels([a, b, c])
    assert labels == {a: str(a), b: str(b), c: "y"}
    with pytest.raises(ScoreBenchError, match="given twice"):
        _run_labels([a, a])


@pytest.mark.parametrize("raised, code, message", [
    (RuntimeError("boom"), 1, "internal error (a bug, please report): RuntimeError: boom"),
    (KeyError("metrics"), 1, "internal error (a bug, please report): KeyError"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (OSError(28, "No space left on device", "/runs/x/samples.jsonl"), 2,
     "/runs/x/samples.jsonl: No space left on device"),
    (MemoryError(), 2, "out of memory"),
])
def test_unexpected_errors_become_one_line(cli, tmp_path, monkeypatch, raised, code, message):
    from score_bench.harness.reports import compare

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr(compare, "compare_runs", fail)
    monkeypatch.delenv("SCORE_BENCH_DEBUG", raising=False)
    done = cli("compare", tmp_path)
    assert done.code == code
    assert len(done.error_lines) == 1 and message in done.error_lines[0], done.stderr


def test_an_internal_error_shows_its_traceback_only_when_asked(cli, tmp_path, monkeypatch):
    from score_bench.harness.reports import compare

    monkeypatch.setattr(compare, "compare_runs", lambda *a, **k: 1 / 0)
    monkeypatch.delenv("SCORE_BENCH_DEBUG", raising=False)
    assert "Traceback" not in cli("compare", tmp_path).stderr
    shown = cli("--debug", "compare", tmp_path)
    assert shown.code == 1 and "Traceback" in shown.stderr and "ZeroDivisionError" in shown.stderr
    monkeypatch.setenv("SCORE_BENCH_DEBUG", "1")
    assert "Traceback" in cli("compare", tmp_path).stderr


def test_describe_failure_names_both_paths_of_a_rename():
    message, code = describe_failure(OSError(30, "Read-only file system", "a.tmp", None, "a"))
    assert code == 2 and message == "a.tmp -> a: Read-only file system"


@dataclass(frozen=True)
class _Config:
    model: str
    output: str = "out"
    learning_rate: float = 1e-3


def _state(step=1):
    return resume.SavedState(step, 1, 0, {"w": torch.zeros(2)}, {}, resume.rng_states(), {})


def test_resume_identity_compares_resolved_model_paths(tmp_path, monkeypatch):
    for name in ("one", "two"):
        (tmp_path / name / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "one")
    resume.save_state(tmp_path / "run", trainer="score", config=_Config("model"), world_size=1, state=_state())
    absolute = _Config(str(tmp_path / "one" / "model"))
    assert resume.load_state(tmp_path / "run", trainer="score", config=absolute, world_size=1).step == 1
    monkeypatch.chdir(tmp_path / "two")  # the same string, another directory
    with pytest.raises(InputError, match="different config"):
        resume.load_state(tmp_path / "run", trainer="score", config=_Config("model"), world_size=1)


def test_a_failed_state_save_leaves_no_temporary_directory_and_keeps_the_last_state(tmp_path, monkeypatch):
    config = _Config("hub/model")
    resume.save_state(tmp_path, trainer="score", config=config, world_size=1, state=_state(1))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(resume.torch, "save", full_disk)
    with pytest.raises(ScoreBenchError, match="no space left on device while saving the training state"):
        resume.save_state(tmp_path, trainer="score", config=config, world_size=1, state=_state(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]
    monkeypatch.undo()
    assert resume.load_state(tmp_path, trainer="score", config=config, world_size=1).step == 1


def test_a_nan_loss_stops_training_naming_the_step_and_the_kept_state(tmp_path):
    check_finite_loss(torch.tensor(1.5), 3, tmp_path)
    with pytest.raises(ScoreBenchError, match=f"diverged at step 3.*{tmp_path}"):
        check_finite_loss(torch.tensor(float("nan")), 3, tmp_path)


def test_locks_are_removed_after_success_and_failure(tmp_path):
    from score_bench.harness.runtime.guards import output_lock

    with output_lock(tmp_path / "a", "train"):
        assert (tmp_path / "a" / ".lock").exists()
    assert not (tmp_path / "a").exists()  # created by the lock, left empty: removed
    (tmp_path / "b").mkdir()
    with pytest.raises(RuntimeError):
        with output_lock(tmp_path / "b", "train"):
            (tmp_path / "b" / "log").write_text("x")
            raise RuntimeError
    assert sorted(os.listdir(tmp_path / "b")) == ["log"]


def test_a_nan_loss_stops_score_training_before_the_weights_change(tiny_model, tmp_path, monkeypatch):
    """A loss that turns NaN at step 2 stops the run with one clear error; the state saved after step 1 is kept
    and the weights in memory are those of step 1 (the optimiser never stepped on the NaN)."""
    from dataclasses import replace

    from score_bench.harness.training.config import build_config
    from score_bench.trainers import score

    config = with_values(build_config(score.ScoreConfig, score.PRESETS, "smoke"), model=str(tiny_model), task="arith",
                     output=str(tmp_path / "out"), save_every=1, eval_every=0, stage1_steps=3, stage2_steps=0)
    original = score.stage_loss

    def nan_at_step_two(*args, **kwargs):
        result = original(*args, **kwargs)
        return replace(result, loss=result.loss * float("nan")) if run.step == 1 else result

    monkeypatch.setattr(score, "stage_loss", nan_at_step_two)
    trainer = score.ScoreRun(config)
    run = trainer.run
    with pytest.raises(ScoreBenchError, match="diverged at step 2") as caught:
        trainer.stage(1)
    assert "\n" not in str(caught.value) and run.step == 1
    saved = resume.load_state(tmp_path / "out", trainer="score", config=config, world_size=1)
    assert saved.step == 1
    assert all(torch.equal(saved.model[name], tensor) for name, tensor in run.model.state_dict().items())
    assert all(torch.isfinite(tensor).all() for tensor in run.model.state_dict().values())
