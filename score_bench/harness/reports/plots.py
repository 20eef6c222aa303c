"""Figures of finished work: held-out accuracy during training, and how answers move from attempt 1 to attempt 2.

matplotlib is optional (the `plots` extra) and imported only when a figure is built; figures are drawn on the
Agg canvas without pyplot, so no display and no global figure registry are involved. The `*_figure` functions
return the Figure (for tests and notebooks); the `plot_*` functions save it as a PNG and return the path.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from score_bench.harness.contracts.errors import InputError, extra_hint
from score_bench.harness.runtime.input_files import read_json, read_jsonl_objects

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EvalPoint", "TrainingCurve", "Transitions", "read_training_curve", "read_transitions",
           "training_curves_figure", "plot_training_curves", "transitions_figure", "plot_transitions",
           "read_scale", "scale_figure", "plot_scale"]

DPI = 120
ATTEMPT_LABELS = ("attempt 1 (Acc@t1)", "attempt 2 (Acc@t2)")
ATTEMPT_COLOURS = ("#0072B2", "#D55E00")  # Okabe-Ito blue and vermillion: distinct for colour-blind readers
ATTEMPT_MARKERS = ("o", "s")
TRANSITION_LABELS = ("correct → correct", "correct → incorrect", "incorrect → correct", "incorrect → incorrect")
TRANSITION_COLOURS = ("#009E73", "#D55E00", "#56B4E9", "#BBBBBB")
MIN_LABELLED_SHARE = 0.06
"""Segments narrower than this get no printed share: the text would not fit inside them."""
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


def _new_figure(**kwargs) -> Figure:
    """A Figure on the Agg canvas (no display needed); the one place that finds out matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError(f"plots need matplotlib: {extra_hint('plots')}") from None
    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def _save_png(figure: Figure, output: Path) -> Path:
    """Write beside `output`, then rename: a reader (or a web page polling the file) never sees half a PNG."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png", dpi=DPI)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output


# --- training curves -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EvalPoint:
    step: int
    accuracy_t1: float
    accuracy_t2: float
    ci95_t1: tuple[float, float] | None
    ci95_t2: tuple[float, float] | None


@dataclass(frozen=True)
class TrainingCurve:
    points: tuple[EvalPoint, ...]
    """The held-out evaluations, by step (the last row wins if a resumed run logged a step twice)."""
    phases: tuple[tuple[str, int, int], ...]
    """(label, first step, last step) of each stage or iteration in log order; empty if the log names none."""


def _number(value, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: '{field}' must be a finite number, got {value!r}")
    return float(value)


def _interval(ci95, where: str, name: str) -> tuple[float, float] | None:
    if not isinstance(ci95, dict) or name not in ci95:
        return None
    pair = ci95[name]
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise InputError(f"{where}: 'ci95.{name}' must be [low, high], got {pair!r}")
    return _number(pair[0], where, f"ci95.{name}"), _number(pair[1], where, f"ci95.{name}")


def _phase_label(key: str, value) -> str:
    return f"Stage {ROMAN.get(value, value)}" if key == "stage" else f"iteration {value}"


def _phases(rows: list[tuple[int, dict]]) -> tuple[tuple[str, int, int], ...]:
    """Stages (score trainer) or iterations (SFT trainers) over every row that has a step, train rows included,
    so a boundary sits at the last step of the earlier phase even when no evaluation fell there."""
    # SFT rows carry "iteration" on every row (their eval rows repeat it as "stage"); score rows only "stage".
    key = next((k for k in ("iteration", "stage") if any(k in row for _, row in rows)), None)
    phases: list[list] = []
    for _, row in rows:
        if key is None or key not in row or not isinstance(row.get("step"), int):
            continue
        label = _phase_label(key, row[key])
        if phases and phases[-1][0] == label:
            phases[-1][2] = max(phases[-1][2], row["step"])
        else:
            phases.append([label, row["step"], row["step"]])
    return tuple(tuple(phase) for phase in phases)


def _log_file(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        from score_bench.harness.training.outputs import LOG_FILE
        return path / LOG_FILE
    return path


def read_training_curve(path: Path) -> TrainingCurve:
    """The held-out evaluations (rows with kind "eval") of a training log, given the file or its run directory."""
    log = _log_file(path)
    rows = read_jsonl_objects(log, "training log")
    points: dict[int, EvalPoint] = {}
    for number, row in rows:
        if row.get("kind") != "eval":
            continue
        where = f"{log}:{number}"
        for field in ("step", "accuracy_t1", "accuracy_t2"):
            if field not in row:
                raise InputError(f"{where}: eval row lacks '{field}'")
        step = row["step"]
        if isinstance(step, bool) or not isinstance(step, int):
            raise InputError(f"{where}: 'step' must be an integer, got {step!r}")
        points[step] = EvalPoint(step, _number(row["accuracy_t1"], where, "accuracy_t1"),
                                 _number(row["accuracy_t2"], where, "accuracy_t2"),
                                 _interval(row.get("ci95"), where, "acc_t1"), _interval(row.get("ci95"), where, "acc_t2"))
    return TrainingCurve(tuple(points[step] for step in sorted(points)), _phases(rows))


def _draw_curve(ax, name: str, curve: TrainingCurve) -> None:
    steps = [p.step for p in curve.points]
    for attempt in range(2):
        values = [(p.accuracy_t1, p.accuracy_t2)[attempt] for p in curve.points]
        intervals = [(p.ci95_t1, p.ci95_t2)[attempt] for p in curve.points]
        colour = ATTEMPT_COLOURS[attempt]
        if all(intervals):
            ax.fill_between(steps, [lo for lo, _ in intervals], [hi for _, hi in intervals],
                            color=colour, alpha=0.15, linewidth=0, label=f"_ci95 attempt {attempt + 1}")
        ax.plot(steps, values, color=colour, marker=ATTEMPT_MARKERS[attempt], markersize=4,
                label=ATTEMPT_LABELS[attempt])
    label_y = ax.get_xaxis_transform()  # x in data units, y as a fraction of the axes height
    for index, (label, first, last) in enumerate(curve.phases):
        if index + 1 < len(curve.phases):
            ax.axvline(last, color="0.35", linestyle="--", linewidth=1, label="_phase boundary")
        if len(curve.phases) > 1:
            start = first if index == 0 else curve.phases[index - 1][2]
            ax.text(start, 0.03, f" {label}", transform=label_y, fontsize=8, color="0.25", ha="left", va="bottom")
    ax.set_title(name)
    ax.set_xlabel("training step")
    ax.set_ylim(0, 1.03)  # the margin keeps markers at accuracy 1.0 whole
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.grid(alpha=0.3)


def training_curves_figure(logs: Mapping[str, Path]) -> Figure:
    """One subplot per run with held-out Accuracy@t1 and @t2 per evaluation step; runs whose log has no
    evaluation yet are named in a note under the plots. Fails only if no run has one."""
    curves = {name: read_training_curve(path) for name, path in logs.items()}
    if not curves:
        raise InputError("no training logs to plot")
    shown = {name: curve for name, curve in curves.items() if curve.points}
    skipped = [name for name in curves if name not in shown]
    if not shown:
        raise InputError(f"no held-out evaluation rows (kind \"eval\") in the training logs of {', '.join(skipped)}")
    columns = min(len(shown), 3)
    rows = math.ceil(len(shown) / columns)
    figure = _new_figure(figsize=(max(4.4 * columns, 6.4), 3.4 * rows + 0.8), layout="constrained")
    from matplotlib.patches import Patch  # matplotlib is there: _new_figure checked
    axes = figure.subplots(rows, columns, sharey=True, squeeze=False).ravel()
    for ax, (name, curve) in zip(axes, shown.items()):
        _draw_curve(ax, name, curve)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("held-out accuracy (greedy)")
    handles = [line for line in axes[0].get_lines() if line.get_label() in ATTEMPT_LABELS]
    labels = list(ATTEMPT_LABELS)
    if any(ax.collections for ax in axes):  # a log without ci95 draws no band, so the legend names none
        handles.append(Patch(color="0.5", alpha=0.3, linewidth=0))
        labels.append("95% interval")
    figure.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    if skipped:  # supxlabel, unlike a free text, gets its own room from the constrained layout
        figure.supxlabel(f"not shown, no held-out evaluations logged: {', '.join(skipped)}",
                         x=0.01, ha="left", fontsize=8, color="0.3")
    return figure


def plot_training_curves(logs: Mapping[str, Path], output: Path) -> Path:
    """Save `training_curves_figure(logs)` as a PNG at `output` and return the path."""
    return _save_png(training_curves_figure(logs), output)


# --- transitions between attempts ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transitions:
    """Shares of all problems (summing to 1) by correctness at attempt 1 → attempt 2."""
    correct_to_correct: float
    correct_to_incorrect: float
    incorrect_to_correct: float
    incorrect_to_incorrect: float

    def shares(self) -> tuple[float, float, float, float]:
        """In the order of TRANSITION_LABELS: attempt-1 correct first, so the first two sum to Accuracy@t1."""
        return (self.correct_to_correct, self.correct_to_incorrect,
                self.incorrect_to_correct, self.incorrect_to_incorrect)


def _metric(metrics: dict, name: str, where: Path) -> float:
    entry = metrics.get(name)
    if not isinstance(entry, dict) or "value" not in entry:
        raise InputError(f"{where}: metrics lack '{name}' (two-attempt results from `score-bench eval` have it)")
    value = _number(entry["value"], str(where), f"metrics.{name}.value")
    if not 0 <= value <= 1:
        raise InputError(f"{where}: metrics.{name} is {value}, not a share between 0 and 1")
    return value


def read_transitions(path: Path) -> Transitions:
    """Transitions of a results.json (or a run directory holding one) from its shares over all problems:
    c→c = Acc@t1 − Δc→i and i→i = 1 − Acc@t1 − Δi→c."""
    path = Path(path)
    results_file = path / "results.json" if path.is_dir() else path
    if not results_file.is_file():
        raise InputError(f"results file not found: {results_file}")
    results = read_json(results_file, "results file")
    metrics = results.get("metrics") if isinstance(results, dict) else None
    if not isinstance(metrics, dict):
        raise InputError(f"{results_file}: no 'metrics' object (is it a results.json from `score-bench eval`?)")
    acc_t1, i2c, c2i = (_metric(metrics, name, results_file) for name in ("acc_t1", "delta_i2c", "delta_c2i"))
    c2c, i2i = acc_t1 - c2i, 1 - acc_t1 - i2c
    tolerance = 1e-9  # shares that are exactly 0 can come out as -1e-17 after subtraction
    if c2c < -tolerance or i2i < -tolerance:
        raise InputError(f"{results_file}: inconsistent metrics (acc_t1 {acc_t1}, delta_i2c {i2c}, delta_c2i {c2i})")
    return Transitions(max(c2c, 0.0), c2i, i2c, max(i2i, 0.0))


def transitions_figure(results: Mapping[str, Path]) -> Figure:
    """A horizontal bar per run (in the given order, top to bottom) split into the four transitions."""
    transitions = {name: read_transitions(path) for name, path in results.items()}
    if not transitions:
        raise InputError("no results to plot")
    names = list(transitions)
    figure = _new_figure(figsize=(8, 1.2 + 0.45 * len(names)), layout="constrained")
    ax = figure.subplots()
    left = [0.0] * len(names)
    for index, (label, colour) in enumerate(zip(TRANSITION_LABELS, TRANSITION_COLOURS)):
        widths = [transitions[name].shares()[index] for name in names]
        bars = ax.barh(names, widths, left=left, color=colour, label=label, height=0.7)
        texts = [f"{width:.2f}" if width >= MIN_LABELLED_SHARE else "" for width in widths]
        ax.bar_label(bars, texts, label_type="center", fontsize=8)
        left = [start + width for start, width in zip(left, widths)]
    ax.invert_yaxis()  # barh puts the first category at the bottom; the given order reads top to bottom
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of problems")
    ax.set_title("How answers change from attempt 1 → attempt 2")
    figure.legend(loc="outside lower center", ncols=4, frameon=False, fontsize=9)
    return figure


def plot_transitions(results: Mapping[str, Path], output: Path) -> Path:
    """Save `transitions_figure(results)` as a PNG at `output` and return the path."""
    return _save_png(transitions_figure(results), output)


# --- parallel vs sequential at equal budget (score-bench scale) ------------------------------------------------

SCALE_ARMS = (("parallel", "parallel: majority over B first attempts", "#0072B2", "o"),
              ("sequential", "sequential: majority over B/2 corrected attempts", "#D55E00", "s"))


def read_scale(path: Path) -> dict:
    """A scale.json (or a run directory holding one) from `score-bench scale`."""
    path = Path(path)
    scale_file = path / "scale.json" if path.is_dir() else path
    if not scale_file.is_file():
        raise InputError(f"scale file not found: {scale_file}")
    result = read_json(scale_file, "scale file")
    if not isinstance(result, dict) or not isinstance(result.get("budgets"), list) or not result["budgets"]:
        raise InputError(f"{scale_file}: no 'budgets' list (is it a scale.json from `score-bench scale`?)")
    return result


def scale_figure(runs: Mapping[str, Path]) -> Figure:
    """One panel per run, like the paper's Figure 1: majority-vote accuracy against generations per problem
    (log2 axis) for both arms with their 95% intervals over problems, and pass@B dashed as the ceiling."""
    results = {name: read_scale(path) for name, path in runs.items()}
    if not results:
        raise InputError("no scale results to plot")
    figure = _new_figure(figsize=(5.2 * len(results), 4), layout="constrained")
    axes = figure.subplots(1, len(results), squeeze=False)[0]
    for ax, (name, result) in zip(axes, results.items()):
        rows = result["budgets"]
        for arm, label, colour, marker in SCALE_ARMS:
            points = [(row["budget"], row[arm]) for row in rows if row.get(arm)]
            if not points:
                continue
            budgets = [b for b, _ in points]
            ax.plot(budgets, [e["accuracy"] for _, e in points], marker=marker, color=colour, label=label)
            ax.fill_between(budgets, [e["ci95"][0] for _, e in points], [e["ci95"][1] for _, e in points],
                            color=colour, alpha=0.15, linewidth=0)
        ax.plot([row["budget"] for row in rows], [row["pass_at_budget"] for row in rows], linestyle="--",
                color="#777777", label="pass@B (any first attempt correct)")
        ax.set_xscale("log", base=2)
        ax.set_xticks([row["budget"] for row in rows], [str(row["budget"]) for row in rows])
        ax.set_xlabel("generations per problem (B)")
        ax.set_ylabel("accuracy")
        problems = result.get("counts", {}).get("problems", "?")
        ax.set_title(f"{name} ({problems} problems)", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()  # below the panels: inside, it hid the points near 1
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels) if len(results) > 1 else 1,
                  frameon=False, fontsize=8)
    return figure


def plot_scale(runs: Mapping[str, Path], output: Path) -> Path:
    """Save `scale_figure(runs)` as a PNG at `output` and return the path."""
    return _save_png(scale_figure(runs), output)
