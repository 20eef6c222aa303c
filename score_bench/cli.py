"""The command line: parses flags into config objects and calls the public Python API. Only this module
knows typer and rich; library code reports progress through harness.contracts.progress."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import shutil
import sys
import traceback
import types
import typing
import warnings
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from score_bench.harness.contracts import registry
from score_bench.harness.contracts.errors import ScoreBenchError
from score_bench.harness.contracts.fields import build, field_docs, flat_fields
from score_bench.harness.evaluation.configs import EvalConfig, ScaleConfig
from score_bench.harness.runtime.guards import LOCK_FILE, check_output_dir, output_lock
from score_bench.harness.runtime.input_files import SETTINGS_FILE_BYTES, read_text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Evaluate and train LLM self-correction (SCoRe and SFT baselines) on verifiable tasks.")
console = Console(stderr=True)
_DEBUG = {"on": False}
# The click that typer parses with: older typer releases use the click package, newer ones vendor a copy
# (typer._click) whose Exit and Abort are typer's own. Its usage errors are found through a class typer exports
# rather than by importing click, which may be another copy than the one raising.
_click_exceptions = importlib.import_module(typer.BadParameter.__module__)
_EXIT = (typer.Exit, getattr(_click_exceptions, "Exit", typer.Exit))
_ABORT = (typer.Abort, getattr(_click_exceptions, "Abort", typer.Abort), KeyboardInterrupt)


@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show the traceback of an internal error "
                                                             "(also accepted after the command).")):
    """Evaluate and train LLM self-correction (SCoRe and SFT baselines) on verifiable tasks."""
    _DEBUG["on"] = _DEBUG["on"] or debug


def _take_debug(args: list[str]) -> tuple[list[str], bool]:
    """(args without --debug, whether it was given): --debug is taken wherever it stands before a `--`, so
    `score-bench eval --debug ...` works as `score-bench --debug eval ...` does, without a --debug option on
    every command. A --debug that is the value of an option (`--stop --debug`) stays where it is."""
    command = typer.main.get_command(app)
    name = next((arg for arg in args if not arg.startswith("-")), None)
    sub = getattr(command, "commands", {}).get(name)
    taking_value = {opt for param in (sub.params if sub else []) if getattr(param, "is_flag", True) is False
                    and not getattr(param, "count", False) for opt in param.opts}
    kept, given = [], False
    for index, arg in enumerate(args):
        if arg == "--":
            return kept + args[index:], given
        if arg == "--debug" and not (kept and kept[-1] in taking_value):
            given = True
            continue
        kept.append(arg)
    return kept, given
METRIC_LABELS = {"acc_t1": "Accuracy@t1", "acc_t2": "Accuracy@t2", "delta": "Δ(t1,t2)",
                 "delta_i2c": "Δ i→c", "delta_c2i": "Δ c→i", "p_i2c_given_i": "P(i→c | wrong at t1)",
                 "p_c2i_given_c": "P(c→i | right at t1)"}


# Options that several commands take, each defined once (typer reads an option from its Annotated metadata).
TaskOptionOpt = Annotated[list[str], typer.Option("--task-option", help="key=value for the task (e.g. path=FILE.csv); "
                                                                      "repeatable, typed as the task declares.")]
DataDirOpt = Annotated[Optional[Path], typer.Option(help="Local dataset directory (tasks that read files).")]
UnsafeOpt = Annotated[bool, typer.Option(help="Code tasks: run programs without a sandbox where none exists.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="torch CPU threads (1 is fastest on a busy machine).")]
BACKEND_OPTIONS = {
    # Each backend's own options (keywords of its `load`), checked against the --backend they belong to.
    "base_url": Annotated[Optional[str], typer.Option(help="openai: the endpoint, e.g. http://127.0.0.1:8000/v1 "
                                                           "(API key from OPENAI_API_KEY).")],
    "max_concurrency": Annotated[Optional[int], typer.Option(help="openai: requests in flight at most [8].")],
    "request_timeout": Annotated[Optional[float], typer.Option(help="openai: seconds per request [600].")],
    "max_retries": Annotated[Optional[int], typer.Option(help="openai: retries on 429/5xx/connection errors [5].")],
    "tensor_parallel_size": Annotated[Optional[int], typer.Option(help="vllm: GPUs per model replica [1].")],
    "data_parallel_size": Annotated[Optional[int], typer.Option(help="vllm: model replicas [1].")],
    "gpu_memory_utilization": Annotated[Optional[float], typer.Option(help="vllm: fraction of GPU memory [0.9].")],
    "max_model_len": Annotated[Optional[int], typer.Option(help="vllm: context length (default: the model's).")],
    "enforce_eager": Annotated[Optional[bool], typer.Option(
        "--enforce-eager/--compile", help="vllm: no CUDA graphs or torch.compile (default: eager on CPU, compiled on GPUs).")],
}


class RichProgress:
    """harness.contracts.progress.Progress drawn with rich, one bar per phase."""

    def __init__(self, bar: Progress):
        self._bar = bar

    def start(self, description: str, total: int | None) -> object:
        return self._bar.add_task(description, total=total)

    def advance(self, handle: object, amount: int = 1, status: str = "") -> None:
        self._bar.update(handle, advance=amount, **({"description": status} if status else {}))

    def finish(self, handle: object) -> None:
        task = self._bar.tasks[self._bar.task_ids.index(handle)]
        if task.total is None:  # an open-ended phase: show it done, with its time frozen
            self._bar.update(handle, total=1, completed=1)
        self._bar.stop_task(handle)

    def note(self, message: str) -> None:
        self._bar.console.print(message, highlight=False, soft_wrap=True)


def quiet_transformers() -> None:
    """Commands that load models call this: transformers' tqdm bars would interleave with ours on stderr.
    Not done at start-up, since importing transformers costs seconds that `tasks` or `grade` need not pay."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def metrics_table(title: str, metrics: dict) -> Table:
    """Strict metrics (the headline) beside the same under flexible extraction, and extraction rates."""
    table = Table(title=title)
    for column in ("metric", "strict", "95% CI", "flexible", "95% CI "):
        table.add_column(column, justify="left" if column == "metric" else "right")
    turns = [k[len("acc_t"):] for k in metrics if k.startswith("acc_t") and k[len("acc_t"):].isdigit()]
    rows = [(f"acc_t{t}", f"Accuracy@t{t}") for t in turns]
    rows += [(k, label) for k, label in METRIC_LABELS.items() if not k.startswith("acc_t")]
    rows += [(f"extraction_rate_t{t}", f"Extracted@t{t}") for t in turns]
    for name, label in rows:
        if name in metrics:
            table.add_row(label, *_value_and_interval(metrics[name]),
                          *_value_and_interval(metrics.get(name + "_flexible")))
    for name, value in metrics.get("pass_at_k", {}).items():
        table.add_row(name, f"{value:.3f}", "", "", "")
    return table


def _value_and_interval(entry: dict | None) -> tuple[str, str]:
    if not entry:
        return "", ""
    value = "n/a" if entry["value"] is None else f"{entry['value']:.3f}"
    ci = "n/a" if not entry["ci95"] else f"[{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]"
    return value, ci + (f" p={entry['p_value']:.2g}" if "p_value" in entry else "")


@app.command()
def tasks():
    """List the registered task plugins."""
    for name in registry.available(registry.TASKS):
        print(name)


@app.command()
def trainers():
    """List the registered trainer plugins."""
    names = registry.available(registry.TRAINERS)
    print("\n".join(names) if names else "(no trainers registered yet)")


@app.command()
def grade(
    task: str = typer.Option(..., help="Task whose extraction and verifier grade the responses."),
    samples: Path = typer.Option(..., help='JSONL rows {"id": ..., "responses": [attempt1, attempt2, ...]}.'),
    output: Path = typer.Option(..., help="Directory for grades.jsonl and results.json."),
    split: Optional[str] = typer.Option(None, help="Split the ids belong to (default: look in every split)."),
    task_option: TaskOptionOpt = [],
    data_dir: DataDirOpt = None,
    unsafe: UnsafeOpt = False,
):
    """Grade responses produced anywhere, attempt by attempt, with the task's verifier. Rows that repeat an id
    are further samples of that problem; problems may have different numbers of samples."""
    from score_bench.harness.evaluation.grade_file import grade_file

    options = _task_options(task, task_option, data_dir=data_dir, unsafe=unsafe)
    task_obj = registry.load_task(task, **options)
    with output_lock(output, "grade"), progress_bar() as bar:
        results = grade_file(task_obj, samples, output, split=split, progress=RichProgress(bar), task_options=options)
    counts = results["counts"]
    Console().print(metrics_table(f"{task}: {counts['problems']} problems, {counts['attempts']} attempt(s)",
                                  results["metrics"]))
    console.print(f"wrote {output / 'grades.jsonl'} and {output / 'results.json'}")


# -- eval and scale: their options are the fields of their configs (harness.evaluation.configs) -------------------

SET_ELSEWHERE = frozenset({"task_options", "backend_options"})
"""Config fields the command line sets from options of their own: --task-option, --data-dir and --unsafe
(_task_options), and each backend's options (BACKEND_OPTIONS)."""


def _budgets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise ScoreBenchError(f"--budgets must be comma-separated integers, got '{text}'") from None


SPELLED: dict[str, dict[str, Any]] = {
    # How the command line spells a field unlike its config: its flag, type, default and help, how a value is read.
    "output": {"type": Optional[Path], "default": None,
               "help": "Run directory (default runs/{command}/TASK-MODEL); rerun to resume."},
    "first_attempts": {"flag": "--first-attempt"},
    "budgets": {"type": str, "help": "Comma-separated generations per problem to compare at.",
                "shown": lambda default: ",".join(map(str, default)), "read": _budgets},
}


def _option_type(hint: Any) -> Any:
    """The type typer parses a field's value as: Optional and str stand in for a union with None and a Literal (whose
    choices the config checks, naming the field), a list of repeated options for a tuple."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return Optional[_option_type(next(a for a in args if a is not type(None)))]
    if origin is tuple:
        return list[args[0]]
    return str if origin is typing.Literal else hint


def _field_options(config_class: type, command: str) -> list[inspect.Parameter]:
    """An option per field of `config_class` (flat: the generation settings by their own names), with the field's
    type, default and help (the first paragraph of its docstring), as SPELLED adjusts them."""
    docs, options = field_docs(config_class), []
    for name, entry in flat_fields(config_class).items():
        if name in SET_ELSEWHERE:
            continue
        spelled = SPELLED.get(name, {})
        default = spelled.get("default", entry.default)
        if "shown" in spelled:
            default = spelled["shown"](default)
        elif isinstance(default, tuple):
            default = list(default)
        help_text = spelled.get("help", "").format(command=command) or " ".join(docs[name].split("\n\n")[0].split())
        option = typer.Option(*([spelled["flag"]] if "flag" in spelled else []), help=help_text or None)
        options.append(inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[spelled.get("type", _option_type(entry.type)),
                                                                       option],
            default=inspect.Parameter.empty if default is dataclasses.MISSING else default))
    return options


def _field_values(config_class: type, given: dict) -> dict:
    """The config's flat field values from the parsed options."""
    values = {}
    for name, entry in flat_fields(config_class).items():
        if name in given:
            value = given[name]
            read = SPELLED.get(name, {}).get("read")
            values[name] = read(value) if read else tuple(value) if typing.get_origin(entry.type) is tuple else value
    return values


def _config_command(name: str, config_class: type, run: Callable[[dict], None], extra: dict) -> None:
    """Register command `name`: options for the fields of `config_class`, the task's and the backend's options,
    --threads and `extra` (name: Annotated type and default); `run` gets every value by name."""
    shared = {"task_option": (TaskOptionOpt, []), "data_dir": (DataDirOpt, None), "unsafe": (UnsafeOpt, False),
              **{option: (kind, None) for option, kind in BACKEND_OPTIONS.items()}, "threads": (ThreadsOpt, None),
              **extra}
    parameters = [*_field_options(config_class, name),
                  *(inspect.Parameter(option, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
                    for option, (kind, default) in shared.items())]

    def command(**given):
        run(given)

    command.__signature__ = inspect.Signature(parameters)
    command.__doc__ = run.__doc__
    app.command(name=name)(command)


def _sampling_config(config_class: type, command: str, given: dict):
    """The eval or scale config the options describe: task options typed as the task declares, backend options
    checked against the backend, the output defaulted, every field checked as the config is built."""
    task_options = _task_options(given["task"], given["task_option"], data_dir=given["data_dir"],
                                 unsafe=given["unsafe"])
    backend_options = _backend_options(given["backend"], **{option: given[option] for option in BACKEND_OPTIONS})
    return build(config_class, {**_field_values(config_class, given), "task_options": task_options,
                                "backend_options": backend_options,
                                "output": given["output"] or _default_run_dir(command, given["task"], given["model"])})


def _eval(given: dict) -> None:
    """Two-attempt self-correction evaluation of a causal LM: samples.jsonl, results.json and a table."""
    from score_bench.harness.evaluation.eval_run import run_eval

    config = _sampling_config(EvalConfig, "eval", given)
    _set_threads(given["threads"])
    quiet_transformers()
    with progress_bar() as bar:
        results = run_eval(config, progress=RichProgress(bar))
    counts = results.get("counts", {})
    title = f"{config.task} / {config.model}: {counts.get('problems', '?')} problems, {config.turns} attempts"
    Console().print(metrics_table(title, results["metrics"]))
    console.print(f"wrote {config.output / 'samples.jsonl'} and {config.output / 'results.json'}")


def _scale(given: dict) -> None:
    """Parallel vs sequential self-correction at equal sample budgets (majority votes): scale.json and a plot."""
    from score_bench.harness.evaluation.scale import SCALE_FILE, run_scale

    config = _sampling_config(ScaleConfig, "scale", given)
    quiet_transformers()
    _set_threads(given["threads"])
    with progress_bar() as bar:
        result = run_scale(config, progress=RichProgress(bar))
    output = config.output
    Console().print(scale_table(f"{config.task} / {config.model}: {result['counts']['problems']} problems", result))
    written = [output / SCALE_FILE]
    if given["plot"]:
        from score_bench.harness.reports.plots import plot_scale

        written.append(plot_scale({output.name: output / SCALE_FILE}, output / "scale.png"))
    console.print("wrote " + " and ".join(str(path) for path in written))


_config_command("eval", EvalConfig, _eval, {})
_config_command("scale", ScaleConfig, _scale, {
    "plot": (Annotated[bool, typer.Option(help="Also write scale.png (needs the plots extra).")], True)})


@app.command(name="repair-set")
def repair_set(
    from_: Path = typer.Option(..., "--from", help="A `score-bench eval` run directory (any task)."),
    output: Path = typer.Option(..., help="JSONL file to write: the run's wrong first attempts, by id."),
):
    """A repair set (like the paper's MBPP-R): an eval run's wrong first attempts, for `eval --first-attempt`."""
    from score_bench.harness.evaluation.repair_set import build_repair_set

    summary = build_repair_set(from_, output)
    source = summary["source"]
    console.print(f"wrote {summary['rows']} wrong first attempts of {summary['problems_in_run']} "
                  f"({source['task']} {source['split']}, {source['model']}) to {output}")


def scale_table(title: str, result: dict) -> Table:
    table = Table(title=title)
    for column in ("budget", "parallel", "sequential", "seq − par", "p", "pass@B"):
        table.add_column(column, justify="right")

    def cell(entry):
        if not entry:
            return "n/a"
        return f"{entry['accuracy']:.3f} [{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]"

    for row in result["budgets"]:
        diff = row.get("sequential_minus_parallel")
        table.add_row(str(row["budget"]), cell(row.get("parallel")), cell(row.get("sequential")),
                      f"{diff['difference']:+.3f}" if diff else "n/a", f"{diff['p_value']:.3f}" if diff else "",
                      f"{row['pass_at_budget']:.3f}")
    return table


@app.command()
def view(
    runs: list[Path] = typer.Argument(..., help="Eval (or scale) run directories holding samples.jsonl."),
    output: Path = typer.Option(Path("report.html"), help="The self-contained HTML file to write; an earlier "
                                "report there is replaced, any other file only with --force."),
    force: bool = typer.Option(False, "--force", help="Replace an --output file that is not a score-bench report."),
):
    """One self-contained HTML page to read samples: metrics, a clickable transition matrix, attempts with a diff."""
    from score_bench.harness.reports.viewer import write_report

    path = write_report(runs, output, force=force)
    console.print(f"wrote {path}")


@app.command(name="base-model")
def base_model(
    output: Path = typer.Option(..., help="Directory for the checkpoint and card.json (must be empty or absent)."),
    task: str = typer.Option("arith", help="Task pre-trained on and measured on: arith or countdown."),
    seed: int = typer.Option(0, help="Seeds corpus, initialisation and batch order."),
    steps: Optional[int] = typer.Option(None, help="Optimiser steps (default: the config's budget)."),
    minutes: Optional[float] = typer.Option(None, help="Wall-clock cap on training; a capped build is not deterministic."),
    eval_problems: Optional[int] = typer.Option(None, help="Test problems measured for the card (0 skips)."),
):
    """Build the embedded tiny base model (tokenizer, Llama, pre-training on arith or countdown) offline, with CPU kernels pinned
    to AVX2 so the same seed gives the same model on any x86-64 CPU (harness.runtime.cpu_kernels)."""
    from dataclasses import replace

    from score_bench.embedded.build import build_base_model
    from score_bench.embedded.config import BaseModelConfig

    quiet_transformers()

    from score_bench.harness.contracts.fields import check_number, valid_range

    for flag, value, name, kind in (("--minutes", minutes, "max_minutes", float),
                                    ("--eval-problems", eval_problems, "eval_problems", int),
                                    ("--steps", steps, "steps", int)):
        check_number(flag, value, kind, valid_range(BaseModelConfig, name), optional=True)
    check_output_dir(output)
    config = BaseModelConfig.for_task(task, output_dir=str(output), seed=seed, max_minutes=minutes)
    if steps is not None:
        config = replace(config, steps=steps)
    if eval_problems is not None:
        config = replace(config, eval_problems=eval_problems)
    if output.is_dir() and any(output.iterdir()):
        raise ScoreBenchError(f"output directory is not empty: {output}")
    from score_bench.harness.runtime.cpu_kernels import pin_cpu_kernels

    pin_cpu_kernels()  # after the input checks, before the build's first tensor operation
    with output_lock(output, "base-model"):
        try:
            with progress_bar() as bar:
                path = build_base_model(config, progress=RichProgress(bar))
        except BaseException:  # a build is not resumable: leave the directory as empty as it was found
            for child in output.iterdir():
                if child.name != LOCK_FILE:
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            raise
    console.print(f"wrote base model {path} (card: {path / 'card.json'})")


@app.command(name="import-gguf")
def import_gguf(
    gguf_file: Path = typer.Argument(..., help="A GGUF file (llama.cpp's format), quantized or not."),
    output: Path = typer.Option(..., help="New directory for the Hugging Face checkpoint (must not exist)."),
):
    """Dequantize a GGUF file into a plain Hugging Face checkpoint (model, tokenizer with its chat template,
    generation config) that eval, train and vLLM load. Needs the gguf extra."""
    from score_bench.harness.generation.gguf_import import import_gguf as run_import

    quiet_transformers()
    with progress_bar() as bar:
        path = run_import(gguf_file, output, progress=RichProgress(bar))
    console.print(f"wrote checkpoint {path}")


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="Run directories or their results.json files."),
    format: str = typer.Option("table", help="table | markdown | json | csv"),
):
    """Runs side by side with intervals, and a paired test for every pair on the same problems."""
    import csv
    import io
    import json

    from score_bench.harness.reports import compare as comparing

    if format not in ("table", "markdown", "json", "csv"):
        raise ScoreBenchError(f"unknown --format '{format}'; use table, markdown, json or csv")
    comparison = comparing.compare_runs(runs)
    if format == "json":
        print(json.dumps(comparison, indent=2))
    elif format == "markdown":
        print(comparing.to_markdown(comparison))
    elif format == "csv":
        buffer = io.StringIO()
        header, rows = comparing.as_rows(comparison)
        csv.writer(buffer).writerows([header, *rows])
        print(buffer.getvalue(), end="")
    else:
        for header, rows in (comparing.as_rows(comparison), comparing.pair_rows(comparison)):
            table = Table(*header)
            for row in rows:
                table.add_row(*row)
            Console().print(table)


@app.command()
def plot(
    runs: list[Path] = typer.Argument(..., help="Training run directories (curves) and/or eval run directories (transitions)."),
    output: Path = typer.Option(Path("plots"), help="Directory for training_curves.png and transitions.png."),
):
    """Training curves (held-out Accuracy@t1/t2 per step) and attempt-1 → attempt-2 transition charts, as PNG."""
    from score_bench.harness.reports.plots import plot_training_curves, plot_transitions
    from score_bench.harness.training.outputs import LOG_FILE

    missing = [path for path in runs if not path.exists()]
    if missing:
        raise ScoreBenchError(f"run not found: {missing[0]}")
    labels = _run_labels(runs)
    logs = {labels[path]: path for path in runs if (path / LOG_FILE).is_file() or path.suffix == ".jsonl"}
    results = {labels[path]: path for path in runs
               if (path / "results.json").is_file() or path.name == "results.json"}
    unknown = [str(path) for path in runs if labels[path] not in logs and labels[path] not in results]
    if unknown:
        raise ScoreBenchError(f"not a training run (no {LOG_FILE}) or an eval run (no results.json): {unknown[0]}")
    written = []
    with output_lock(output, "plot"):
        if logs:
            written.append(plot_training_curves(logs, output / "training_curves.png"))
        if results:
            written.append(plot_transitions(results, output / "transitions.png"))
    console.print("wrote " + " and ".join(str(path) for path in written))


def _run_labels(runs: list[Path]) -> dict[Path, str]:
    """A legend label per run: its directory's name, or the path as given when two runs share a name (a/x, b/x)."""
    seen: dict[Path, Path] = {}
    for path in runs:
        directory = (path if path.is_dir() else path.parent).resolve()
        if directory in seen.values():
            raise ScoreBenchError(f"run {path} is given twice")
        seen[path] = directory
    names = [seen[path].name for path in runs]
    return {path: name if names.count(name) == 1 else str(path) for path, name in zip(runs, names)}


@app.command()
def demo(
    quick: bool = typer.Option(False, help="A few steps per trainer and 50 problems: checks the pipeline in minutes."),
    seed: int = typer.Option(0, help="Training seed of every trainer."),
    base_model: Optional[Path] = typer.Option(None, help="Base model, built if missing [models/base-seed0; quick: runs/demo-quick/base-model]."),
    runs_dir: Optional[Path] = typer.Option(None, help="Checkpoints, logs and evaluations [runs/demo; quick: runs/demo-quick]."),
    results_dir: Optional[Path] = typer.Option(None, help="summary.json, comparison.md, plots [results/demo; quick: runs/demo-quick/results]."),
    jobs: int = typer.Option(2, help="Commands run side by side, one torch thread each."),
):
    """Base model, pair-sft, star and SCoRe on arith side by side: trains, evaluates, compares, plots."""
    from score_bench.demo import DemoConfig, run_demo

    quiet_transformers()
    scratch = Path("runs/demo-quick")
    config = DemoConfig(
        base_model=base_model or (scratch / "base-model" if quick else Path("models/base-seed0")),
        runs_dir=runs_dir or (scratch if quick else Path("runs/demo")),
        results_dir=results_dir or (scratch / "results" if quick else Path("results/demo")),
        seed=seed, quick=quick, jobs=jobs)
    with progress_bar() as bar:
        summary = run_demo(config, progress=RichProgress(bar))
    comparison_md = (config.results_dir / "comparison.md").read_text(encoding="utf-8")
    print(comparison_md)
    console.print(f"demo took {summary['wall_time_s'] / 60:.1f} min; wrote {config.results_dir / 'summary.json'}, "
                  f"comparison.md and the plots")


@app.command()
def train(
    task: str = typer.Option(..., help="Task whose problems and verifier drive training."),
    trainer: str = typer.Option(..., help="Trainer plugin (see `score-bench trainers`)."),
    model: str = typer.Option(..., help="Base model: a local checkpoint directory or a hub id."),
    output: Path = typer.Option(..., help="Directory for the checkpoint, its config and the training log."),
    preset: Optional[str] = typer.Option(None, help="Named preset of the trainer's config (e.g. paper, laptop, smoke)."),
    config: Optional[Path] = typer.Option(None, help="YAML file of config fields, applied over the preset."),
    set_: list[str] = typer.Option([], "--set", help="key=value config override, applied last; repeatable."),
    task_option: TaskOptionOpt = [],
    threads: ThreadsOpt = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print a memory estimate of the run and exit; writes nothing."),
):
    """Train self-correction; writes a Hugging Face checkpoint loadable by `score-bench eval`. A run whose memory
    estimate (--dry-run) exceeds all the memory of its device is refused before anything loads."""
    from score_bench.harness.training.train import check_training_memory, prepare_training, training_memory

    quiet_transformers()

    overrides = _read_yaml_config(config) if config else {}
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ScoreBenchError(f"--set expects key=value, got '{item}'")
        overrides[key.strip()] = value
    if task_option:
        if "task_options" in overrides:
            raise ScoreBenchError("task options given both by --task-option and as task_options; give one")
        overrides["task_options"] = _task_options(task, task_option)
    overrides.update(task=task, model=model, output=str(output))
    trainer_cls, resolved = prepare_training(trainer, preset, overrides)
    if dry_run:
        _print_memory_estimate(resolved, training_memory(trainer_cls, resolved))
        return
    check_training_memory(trainer_cls, resolved)
    _set_threads(threads)
    from accelerate import PartialState

    state = PartialState()
    try:
        if not state.is_main_process:  # under `accelerate launch`, one process draws and reports
            trainer_cls().train(resolved)
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            with output_lock(output, "train"), progress_bar() as bar:
                path = trainer_cls().train(resolved, progress=RichProgress(bar))
    finally:
        # This process owns the process group accelerate started under a launcher: destroyed before the
        # interpreter exits, or gloo's worker threads may outlive it and abort the exit ("terminate called
        # without an active exception").
        state.destroy_process_group()
    for warning in caught:  # a trainer's RuntimeWarning (e.g. no learning signal) is the user's to read
        if issubclass(warning.category, RuntimeWarning):
            console.print(f"[yellow]warning:[/yellow] {warning.message}", highlight=False)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    console.print(f"wrote checkpoint {path}")


def _print_memory_estimate(config, estimate) -> None:
    from score_bench.harness.generation.backends.transformers import resolve_device
    from score_bench.harness.runtime.device_memory import device_memory

    console.print(f"memory estimate per process for {config.traces_per_step()} traces per step "
                  f"(micro_batch_size {config.micro_batch_size}, micro_batch_tokens {config.micro_batch_tokens}):")
    for name, size in estimate.lines():
        console.print(f"  {name:<60} {size / 2**30:9.3f} GiB", highlight=False)
    available, holder = device_memory(resolve_device(config.device))
    if estimate.total > available:
        console.print(f"[yellow]warning:[/yellow] above the {available / 2**30:,.1f} GiB of {holder}: `train` "
                      "refuses this run", highlight=False)
    console.print("dry run: nothing loaded beyond config and tokenizer, nothing written")


def _read_yaml_config(path: Path) -> dict:
    import yaml

    text = read_text(path, "--config file", limit=SETTINGS_FILE_BYTES)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ScoreBenchError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    except RecursionError:
        raise ScoreBenchError(f"config file {path} is nested too deeply to read") from None
    if not isinstance(loaded, dict):
        raise ScoreBenchError(f"config file {path} must hold a mapping of config fields")
    return loaded


def _backend_options(backend: str, **given) -> dict:
    """The backend options given on the command line, each checked against the backend it belongs to (an option
    of a backend is a keyword of its `load`). An unknown backend lists the registered ones and the nearest."""
    from score_bench.harness.generation.backends import takes_option

    options = {name: value for name, value in given.items() if value is not None}
    for name in options:
        if not takes_option(backend, name):
            owner = next(b for b in registry.available(registry.BACKENDS) if takes_option(b, name))
            declared = typing.get_args(BACKEND_OPTIONS[name])[1].default  # e.g. "--enforce-eager/--compile"
            flag = declared if isinstance(declared, str) else f"--{name.replace('_', '-')}"
            raise ScoreBenchError(f"{flag} applies to --backend {owner}, not {backend}")
    registry.load(registry.BACKENDS, backend)  # an unknown name is refused even without options
    return options


def _default_run_dir(command: str, task: str, model: str) -> Path:
    return Path("runs") / command / f"{task}-{Path(model.rstrip('/')).name}"


def _task_options(task: str, pairs: list[str], **flags) -> dict:
    """Task constructor options from `--task-option key=value` and the flags that are task options (--data-dir,
    --unsafe): typed as the task declares; an option the task does not take is an error naming both. A path
    flag is passed as a string, as a --task-option would be."""
    from score_bench.harness.contracts.fields import task_options

    flags = {name: str(value) if isinstance(value, Path) else value for name, value in flags.items()}
    given: dict = {}
    labels = {name: "--" + name.replace("_", "-") for name, value in flags.items()}
    for item in pairs:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ScoreBenchError(f"--task-option expects key=value, got '{item}'")
        if key in given:
            raise ScoreBenchError(f"--task-option '{key}' is given twice")
        given[key] = value
        labels[key] = f"'{key}' (--task-option)"
    for name, value in flags.items():
        if value in (None, False):
            continue
        if name in given:
            raise ScoreBenchError(f"{labels[name]} and --task-option {name}=... both set '{name}'; give one")
        given[name] = value
    return task_options(task, given, labels)


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    from score_bench.harness.contracts.fields import AT_LEAST_ONE, check_number

    import torch

    torch.set_num_threads(check_number("threads", threads, int, AT_LEAST_ONE))


def main() -> None:
    """Console-script entry, the one place every failure becomes one line on stderr: expected failures
    (bad input, a file that cannot be read or written) exit 2, Ctrl-C 130, and anything else is a bug: exit 1,
    its traceback shown only with --debug (or SCORE_BENCH_DEBUG=1)."""
    try:
        # Not standalone, so errors reach the handlers below; typer then returns an exit code instead of
        # exiting (130 for Ctrl-C, 0 after --help), and a command's own return value (None) otherwise.
        args, _DEBUG["on"] = _take_debug(sys.argv[1:])
        code = app(args=args, standalone_mode=False, prog_name="score-bench")
        if code == 130:
            _error_line("interrupted")
        if isinstance(code, int) and code:
            sys.exit(code)
    except _EXIT as done:
        sys.exit(done.exit_code)
    except _click_exceptions.ClickException as err:  # usage errors: click's own message and exit code (2)
        err.show()
        sys.exit(err.exit_code)
    except _ABORT:
        _error_line("interrupted")
        sys.exit(130)
    except BaseException as err:  # noqa: BLE001 - the boundary: classified, never swallowed silently
        if isinstance(err, SystemExit):
            raise
        message, code = describe_failure(err)
        if code == 1 and _debug():
            traceback.print_exception(err)
        _error_line(message)
        sys.exit(code)


def describe_failure(err: BaseException) -> tuple[str, int]:
    """(one-line message, exit code) for an exception that reached the command line."""
    if isinstance(err, ScoreBenchError):
        return str(err), 2
    if isinstance(err, OSError):
        where = " -> ".join(str(name) for name in (err.filename, err.filename2) if name is not None)
        reason = err.strerror or str(err)
        return (f"{where}: {reason}" if where else f"cannot read or write a file: {reason}"), 2
    if isinstance(err, MemoryError):
        return "out of memory; try a smaller --batch-size or --max-new-tokens", 2
    return f"internal error (a bug, please report): {type(err).__name__}: {err}", 1


def _debug() -> bool:
    return _DEBUG["on"] or os.environ.get("SCORE_BENCH_DEBUG", "") not in ("", "0")


def _error_line(message: str) -> None:
    text = " ".join(str(message).split()) or "failed"
    console.print(Text.assemble(("error:", "red"), " ", text), soft_wrap=True)
