"""Plots read back from their Figure: the plotted values are the logged ones, the labels say what they show,
and bad input is refused with the file named."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="plots need the `plots` extra (matplotlib)")

from score_bench.harness.contracts.errors import InputError  # noqa: E402
from score_bench.harness.evaluation.metrics import summarize  # noqa: E402
from score_bench.harness.reports.plots import (ATTEMPT_LABELS, TRANSITION_LABELS, plot_training_curves,
                                               plot_transitions, training_curves_figure, transitions_figure)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def eval_row(step, t1, t2, **phase):
    """`phase` is stage=... (score trainer), iteration=... (SFT trainers) or nothing."""
    return {"kind": "eval", "step": step, **phase, "accuracy_t1": t1, "accuracy_t2": t2,
            "ci95": {"acc_t1": [t1 - 0.05, t1 + 0.05], "acc_t2": [t2 - 0.1, t2 + 0.02]}}


def score_log(path):
    """Stage I for steps 1..6, Stage II for 7..10; evaluations at 0, 3, 6, 8, 10."""
    rows = [eval_row(0, 0.4, 0.45, stage=1)]
    evals = {3: (0.5, 0.7), 6: (0.35, 0.8), 8: (0.6, 0.75), 10: (0.85, 0.9)}
    for step in range(1, 11):
        stage = 1 if step <= 6 else 2
        rows.append({"kind": "train", "step": step, "stage": stage, "accuracy_t1": 0.1, "accuracy_t2": 0.2})
        if step in evals:
            rows.append(eval_row(step, *evals[step], stage=stage))
    return write_jsonl(path, rows)


def attempt_line(ax, attempt):
    (line,) = [line for line in ax.get_lines() if line.get_label() == ATTEMPT_LABELS[attempt]]
    return line


def test_training_curves_plot_the_logged_evaluations_with_the_stage_boundary(tmp_path):
    figure = training_curves_figure({"score-s0": score_log(tmp_path / "score.jsonl")})
    (ax,) = [ax for ax in figure.axes if ax.get_visible()]
    assert list(attempt_line(ax, 0).get_xdata()) == [0, 3, 6, 8, 10]
    assert list(attempt_line(ax, 0).get_ydata()) == [0.4, 0.5, 0.35, 0.6, 0.85]
    assert list(attempt_line(ax, 1).get_ydata()) == [0.45, 0.7, 0.8, 0.75, 0.9]
    assert attempt_line(ax, 0).get_color() != attempt_line(ax, 1).get_color()
    boundaries = [line for line in ax.get_lines() if line.get_label() == "_phase boundary"]
    assert [list(line.get_xdata()) for line in boundaries] == [[6, 6]]  # Stage I ends after step 6
    assert [text.get_text().strip() for text in ax.texts] == ["Stage I", "Stage II"]
    band_y = np.concatenate([band.get_paths()[0].vertices[:, 1] for band in ax.collections])
    assert band_y.min() == pytest.approx(0.30) and band_y.max() == pytest.approx(0.92)  # the logged ci95 ends
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "score-s0", "training step", "held-out accuracy (greedy)")
    assert ax.get_ylim()[0] == 0 and 1 <= ax.get_ylim()[1] < 1.1
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [*ATTEMPT_LABELS, "95% interval"]


def test_runs_without_a_stage_get_no_boundary_and_sft_iterations_are_phases(tmp_path):
    plain = write_jsonl(tmp_path / "plain.jsonl", [eval_row(0, 0.5, 0.5), eval_row(5, 0.6, 0.5)])
    iterations = write_jsonl(tmp_path / "star.jsonl", [
        {"step": 1, "iteration": 1}, {"step": 2, "iteration": 1}, eval_row(2, 0.3, 0.4, iteration=1, stage=1),
        {"step": 3, "iteration": 2}, eval_row(4, 0.5, 0.6, iteration=2, stage=2)])  # SFT eval rows: both keys
    figure = training_curves_figure({"plain": plain, "star": iterations})
    plain_ax, star_ax = figure.axes
    assert not [line for line in plain_ax.get_lines() if line.get_label() == "_phase boundary"]
    assert len(plain_ax.texts) == 0
    boundaries = [line for line in star_ax.get_lines() if line.get_label() == "_phase boundary"]
    assert [list(line.get_xdata()) for line in boundaries] == [[2, 2]]
    assert [text.get_text().strip() for text in star_ax.texts] == ["iteration 1", "iteration 2"]


def test_a_run_directory_is_read_and_a_run_without_evaluations_is_named_not_drawn(tmp_path):
    score_log(tmp_path / "score-run" / "training_log.jsonl")
    untrained = write_jsonl(tmp_path / "sft.jsonl", [{"step": 1, "iteration": 1, "accuracy_t1": 0.5}])
    figure = training_curves_figure({"score": tmp_path / "score-run", "pair-sft": untrained})
    assert [ax.get_title() for ax in figure.axes if ax.get_visible()] == ["score"]
    assert "pair-sft" in figure.get_supxlabel()
    with pytest.raises(InputError, match="pair-sft"):
        training_curves_figure({"pair-sft": untrained})


@pytest.mark.parametrize("content, complaint", [
    ("{not json\n", "not valid JSON"),
    (json.dumps({"kind": "eval", "step": 1, "accuracy_t1": 0.5}) + "\n", "accuracy_t2"),
    (json.dumps({"kind": "eval", "step": 1, "accuracy_t1": 0.5, "accuracy_t2": "high"}) + "\n", "accuracy_t2"),
])
def test_a_bad_training_log_is_refused_with_its_name(tmp_path, content, complaint):
    log = tmp_path / "broken-log.jsonl"
    log.write_text(content)
    with pytest.raises(InputError, match=complaint) as error:
        training_curves_figure({"run": log})
    assert "broken-log.jsonl" in str(error.value)
    with pytest.raises(InputError, match="missing-log.jsonl"):
        training_curves_figure({"run": tmp_path / "missing-log.jsonl"})


def write_results(directory, correct):
    directory.mkdir(parents=True)
    metrics = summarize(np.asarray(correct, dtype=bool), resamples=20)
    (directory / "results.json").write_text(json.dumps({"metrics": metrics, "counts": {}}))
    return directory


def expected_shares(correct):
    t1, t2 = np.asarray(correct, dtype=bool).T
    return [np.mean(t1 & t2), np.mean(t1 & ~t2), np.mean(~t1 & t2), np.mean(~t1 & ~t2)]


def test_transitions_are_the_counted_shares_in_the_given_run_order(tmp_path):
    rng = np.random.default_rng(1)
    runs = {"base": rng.random((40, 2)) < 0.5, "trained": rng.random((40, 2)) < [0.6, 0.85]}
    paths = {"trained": write_results(tmp_path / "trained", runs["trained"]),
             "base": write_results(tmp_path / "base", runs["base"]) / "results.json"}
    figure = transitions_figure(paths)
    ax = figure.axes[0]
    assert len(ax.containers) == 4
    for position, name in enumerate(paths):
        widths = [container.patches[position].get_width() for container in ax.containers]
        lefts = [container.patches[position].get_x() for container in ax.containers]
        assert widths == pytest.approx(expected_shares(runs[name]))
        assert lefts == pytest.approx(np.concatenate([[0], np.cumsum(widths)[:-1]]))
    first, second = ax.containers[0].patches
    assert first.get_y() < second.get_y() and ax.yaxis_inverted()  # so "trained" is drawn above "base"
    assert [label.get_text() for label in ax.get_yticklabels()] == ["trained", "base"]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == list(TRANSITION_LABELS)
    assert (ax.get_xlabel(), ax.get_xlim()) == ("share of problems", (0.0, 1.0))
    assert "attempt 1 → attempt 2" in ax.get_title()
    printed = {text.get_text() for text in ax.texts} - {""}
    big = [share for name in paths for share in expected_shares(runs[name]) if share >= 0.06]
    assert printed == {f"{share:.2f}" for share in big}


@pytest.mark.parametrize("payload, complaint", [
    ({"task": {"name": "arith"}}, "no 'metrics'"),
    ({"metrics": {"acc_t1": {"value": 0.5}, "delta_c2i": {"value": 0.1}}}, "delta_i2c"),
    ({"metrics": {"acc_t1": {"value": 0.9}, "delta_i2c": {"value": 0.3}, "delta_c2i": {"value": 0.0}}},
     "inconsistent"),
])
def test_bad_results_are_refused_with_the_file_named(tmp_path, payload, complaint):
    (tmp_path / "odd-run").mkdir()
    (tmp_path / "odd-run" / "results.json").write_text(json.dumps(payload))
    with pytest.raises(InputError, match=complaint) as error:
        transitions_figure({"odd": tmp_path / "odd-run"})
    assert "odd-run" in str(error.value)
    with pytest.raises(InputError, match="nowhere"):
        transitions_figure({"gone": tmp_path / "nowhere"})


def test_both_plots_are_saved_as_png_files_and_nothing_else(tmp_path):
    log = score_log(tmp_path / "log.jsonl")
    run = write_results(tmp_path / "run", [[True, True], [False, True], [True, False], [False, False]])
    out = tmp_path / "figures"
    assert plot_training_curves({"s": log}, out / "curves.png") == out / "curves.png"
    assert plot_transitions({"r": run}, out / "transitions.png") == out / "transitions.png"
    assert sorted(path.name for path in out.iterdir()) == ["curves.png", "transitions.png"]  # no temp file left
    for path in out.iterdir():
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail as if not installed
    with pytest.raises(InputError, match=r"\[plots\] extra \(in the clone: pip install '\.\[plots\]'\)"):
        transitions_figure({"r": write_results(tmp_path / "run", [[True, False]])})
