"""`score-bench demo`: the paper's story at laptop scale, end to end, in one command.

Builds the embedded base model if missing, trains pair-sft, star and score on arith with the laptop preset,
evaluates the base model, both baselines, SCoRe's Stage I checkpoint and the final SCoRe model on the same test
problems, and writes summary.json (runs, metrics, paired tests, the commands run, timings, provenance),
comparison.md and the plots.

Every step (the base model build, each training and evaluation) is the documented CLI command run as a
subprocess (recorded in summary.json, so any step can be rerun by hand), `jobs` at a time with one torch thread
each: on a 2-core CPU two one-thread jobs side by side finish sooner than one two-thread job after another
(torch's second thread mostly waits for a core). Jobs start as soon as what they need exists. Every command runs
with its CPU kernels pinned to AVX2 (harness.runtime.cpu_kernels), so the numbers are the same on any x86-64 CPU.
Rerunning resumes: finished trainings are kept, killed ones continue from their saved state, evaluations resume row by
row.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from score_bench.harness.contracts.errors import InputError, ScoreBenchError
from score_bench.harness.contracts.progress import Progress, SilentProgress, phase
from score_bench.harness.runtime.cpu_kernels import PINNED
from score_bench.harness.runtime.provenance import provenance, write_json_atomic
from score_bench.harness.training.outputs import CONFIG_FILE, LOG_FILE

__all__ = ["DemoConfig", "Job", "demo_jobs", "run_demo", "RUN_NAMES"]

TASK = "arith"
PRESET = "laptop"
EVAL_MAX_NEW_TOKENS = 64
RUN_NAMES = ("base", "pair-sft", "star", "score-stage1", "score")
"""The evaluated runs, in the order of the table and the plots."""

QUICK_TRAINING = {
    "score": {"stage1_steps": 4, "stage2_steps": 2, "batch_size": 8, "eval_every": 3, "eval_problems": 20},
    "pair-sft": {"sampling_batches": 6, "updates": 6, "batch_size": 2, "sft_batch_size": 8, "eval_every": 3,
                 "eval_problems": 20},
    "star": {"sampling_batches": 6, "updates": 6, "batch_size": 8, "sft_batch_size": 8, "eval_every": 3,
             "eval_problems": 20},
}
"""--quick: the laptop preset with a few steps each (same code path, seconds instead of minutes)."""
QUICK_BASE_STEPS = 60
QUICK_EVAL_PROBLEMS = 50


@dataclass(frozen=True)
class DemoConfig:
    base_model: Path = Path("models/base-seed0")
    """Built here (seed 0) when missing; an existing one is used as it is."""
    runs_dir: Path = Path("runs/demo")
    """Checkpoints, training logs, evaluation runs and one log file per job."""
    results_dir: Path = Path("results/demo")
    """summary.json, comparison.md, the plots, and copies of the training logs and results.json files."""
    seed: int = 0
    """Training seed of every trainer (the base model's seed is its own: it is built with seed 0)."""
    quick: bool = False
    """A few steps per trainer and 50 test problems, on a base model pre-trained for QUICK_BASE_STEPS steps:
    checks the whole pipeline in minutes (CI). Its numbers mean nothing."""
    jobs: int = 2
    """Subprocesses at a time, one torch thread each."""

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise InputError(f"demo jobs must be at least 1, got {self.jobs}")


@dataclass
class Job:
    """One CLI command of the demo: the jobs it waits for, its size, and how to read its progress from its files."""

    name: str
    command: list[str]
    needs: tuple[str, ...]
    total: int
    """Units of work (training steps or evaluated problems) for the progress bar."""
    done: Callable[[], int] = field(repr=False, default=lambda: 0)
    """Units finished so far, read from the job's own output files."""
    finished: Callable[[], bool] = field(repr=False, default=lambda: False)
    """True when a previous demo already completed this job (it is then skipped)."""


def _count_rows(path: Path, keep: Callable[[dict], bool]) -> int:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return 0
    count = 0
    for line in lines:
        try:
            count += bool(keep(json.loads(line)))
        except (json.JSONDecodeError, TypeError):  # a row being written right now
            pass
    return count


def _cli() -> list[str]:
    return [sys.executable, "-m", "score_bench"]


def _training_job(config: DemoConfig, trainer: str) -> Job:
    from score_bench.harness.contracts import registry
    from score_bench.harness.training.config import build_config

    output = config.runs_dir / trainer
    overrides: dict[str, Any] = {"seed": config.seed, **(QUICK_TRAINING[trainer] if config.quick else {})}
    trainer_cls = registry.load(registry.TRAINERS, trainer)
    resolved = build_config(trainer_cls.config_class, trainer_cls.presets, PRESET,
                            {**overrides, "task": TASK, "model": str(config.base_model), "output": str(output)})
    steps = (resolved.stage1_steps + resolved.stage2_steps) if trainer == "score" else resolved.updates
    command = [*_cli(), "train", "--task", TASK, "--trainer", trainer, "--model", str(config.base_model),
               "--output", str(output), "--preset", PRESET]
    for key, value in overrides.items():
        command += ["--set", f"{key}={value}"]
    return Job(f"train {trainer}", command, ("base model",), steps,
               done=lambda: _count_rows(output / LOG_FILE, lambda row: row.get("kind") != "eval" and
                                        row.get("loss", 0) is not None),
               finished=lambda: _finished_training(output, resolved))


def _finished_training(output: Path, resolved: Any) -> bool:
    """True when OUTPUT holds the final checkpoint of this very config; a different finished run is refused."""
    written = output / CONFIG_FILE
    if not written.is_file():
        return False
    from score_bench.harness.training.resume import config_changes

    stored = json.loads(written.read_text(encoding="utf-8")).get("config")
    if not isinstance(stored, dict) or config_changes(stored, resolved):
        raise InputError(f"{output} holds a finished run with a different config; delete it or use another --runs-dir")
    return True


def _eval_job(config: DemoConfig, name: str, model: Path, needs: str) -> Job:
    output = config.runs_dir / "eval" / name
    limit = QUICK_EVAL_PROBLEMS if config.quick else None
    command = [*_cli(), "eval", "--model", str(model), "--task", TASK, "--split", "test",
               "--max-new-tokens", str(EVAL_MAX_NEW_TOKENS), "--seed", str(config.seed), "--output", str(output)]
    if limit:
        command += ["--limit", str(limit)]
    from score_bench.tasks.arith import ArithTask

    total = limit or len(ArithTask().problems("test"))
    return Job(f"eval {name}", command, (needs,), total,
               done=lambda: _count_rows(output / "samples.jsonl", lambda row: True))


def _base_model_job(config: DemoConfig) -> Job:
    """Builds the base model (seed 0) unless a complete one is there (card.json is written last)."""
    base = config.base_model
    command = [*_cli(), "base-model", "--output", str(base), "--seed", "0"]
    if config.quick:
        command += ["--steps", str(QUICK_BASE_STEPS), "--eval-problems", str(QUICK_EVAL_PROBLEMS)]
    return Job("base model", command, (), 1, done=lambda: int((base / "card.json").is_file()),
               finished=lambda: (base / "card.json").is_file())


def demo_jobs(config: DemoConfig) -> list[Job]:
    """The demo's commands in priority order (longest first among those ready), with what each needs."""
    runs = config.runs_dir
    return [
        _base_model_job(config),
        _training_job(config, "score"),
        _training_job(config, "pair-sft"),
        _training_job(config, "star"),
        _eval_job(config, "base", config.base_model, "base model"),
        _eval_job(config, "score-stage1", runs / "score" / "stage1", "train score"),
        _eval_job(config, "score", runs / "score", "train score"),
        _eval_job(config, "pair-sft", runs / "pair-sft", "train pair-sft"),
        _eval_job(config, "star", runs / "star", "train star"),
    ]


def run_demo(config: DemoConfig, progress: Progress | None = None) -> dict:
    """Run the whole demo (resuming what a previous run left); return summary.json's content."""
    started = time.monotonic()
    started_from = provenance()  # the code the commands start from; a commit made while the demo runs is not in it
    progress = progress or SilentProgress()
    _check_base_model(config.base_model)
    jobs = demo_jobs(config)
    (config.runs_dir / "logs").mkdir(parents=True, exist_ok=True)
    seconds = _run_jobs(jobs, config, progress)
    with phase(progress, "comparison, summary and plots", None):
        summary = _write_results(config, jobs, seconds, started_from)
    summary["wall_time_s"] = round(time.monotonic() - started, 1)
    write_json_atomic(config.results_dir / "summary.json", summary)
    return summary


def _check_base_model(base: Path) -> None:
    """A base model directory is complete (card.json is written last), absent or empty (it is built then)."""
    if not (base / "card.json").is_file() and base.exists() and any(base.iterdir()):
        raise InputError(f"{base} holds an incomplete base model (no card.json); delete it and run the demo again")


def _run_jobs(jobs: list[Job], config: DemoConfig, progress: Progress) -> dict[str, float]:
    """Run `jobs` as subprocesses, config.jobs at a time, each once what it needs has finished; a failure stops
    the others and raises with the failed job's log. Returns seconds per job (0 for one skipped as done)."""
    env = {**os.environ, **PINNED, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    handles: dict[str, object] = {}  # a bar appears when its job starts, so its clock is the job's
    shown = {job.name: 0 for job in jobs}
    finished: set[str] = set()
    seconds: dict[str, float] = {}
    for job in jobs:
        if job.finished():
            finished.add(job.name)
            seconds[job.name] = 0.0
            handles[job.name] = progress.start(job.name, job.total)
            progress.advance(handles[job.name], job.total, f"{job.name} (done before)")
    pending = [job for job in jobs if job.name not in finished]
    processes: dict[str, subprocess.Popen] = {}
    running: dict[Future, Job] = {}

    def execute(job: Job) -> tuple[int, float]:
        begun = time.monotonic()
        with open(config.runs_dir / "logs" / f"{job.name.replace(' ', '-')}.log", "w", encoding="utf-8") as log:
            process = subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT, env=env)
            processes[job.name] = process
            code = process.wait()
        return code, round(time.monotonic() - begun, 1)

    with ThreadPoolExecutor(max_workers=config.jobs) as pool:
        try:
            while pending or running:
                while len(running) < config.jobs:
                    ready = next((job for job in pending if set(job.needs) <= finished), None)
                    if ready is None:
                        break
                    pending.remove(ready)
                    handles[ready.name] = progress.start(ready.name, ready.total)
                    running[pool.submit(execute, ready)] = ready
                done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
                for job in running.values():
                    _show(progress, handles[job.name], job, shown)
                for future in done:
                    job = running.pop(future)
                    code, took = future.result()
                    if code != 0:
                        log = config.runs_dir / "logs" / f"{job.name.replace(' ', '-')}.log"
                        raise ScoreBenchError(f"demo step '{job.name}' failed (exit {code}): "
                                              f"{_last_line(log)} (full log: {log})")
                    progress.advance(handles[job.name], job.total - shown[job.name], f"{job.name} ({took:.0f} s)")
                    shown[job.name] = job.total
                    seconds[job.name] = took
                    finished.add(job.name)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for handle in handles.values():
                progress.finish(handle)
    return seconds


def _show(progress: Progress, handle: object, job: Job, shown: dict[str, int]) -> None:
    now = min(job.done(), job.total)
    if now > shown[job.name]:
        progress.advance(handle, now - shown[job.name])
        shown[job.name] = now


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _write_results(config: DemoConfig, jobs: list[Job], seconds: dict[str, float], started_from: dict) -> dict:
    """summary.json's content, comparison.md, copies of the logs and results, and the plots."""
    from score_bench.harness.reports.compare import compare_runs, to_markdown
    from score_bench.harness.reports.plots import plot_training_curves, plot_transitions

    out, runs = config.results_dir, config.runs_dir
    out.mkdir(parents=True, exist_ok=True)
    evals = {name: runs / "eval" / name for name in RUN_NAMES}
    comparison = compare_runs(list(evals.values()), names=list(RUN_NAMES))
    (out / "comparison.md").write_text(to_markdown(comparison), encoding="utf-8")
    for name, directory in evals.items():
        _copy(directory / "results.json", out / "eval" / f"{name}.json")
    logs = {trainer: runs / trainer / LOG_FILE for trainer in ("score", "pair-sft", "star")}
    for trainer, log in logs.items():
        _copy(log, out / "training_logs" / f"{trainer}.jsonl")
    plots = {"training_curves": plot_training_curves(logs, out / "training_curves.png"),
             "transitions": plot_transitions(evals, out / "transitions.png")}
    return {
        "runs": [{"name": run["name"], "metrics": run["metrics"], "path": run["path"],
                  "weights_sha256": _weights_sha256(evals[run["name"]])} for run in comparison["runs"]],
        "pairs": comparison["pairs"],
        "task": TASK, "preset": PRESET, "seed": config.seed, "quick": config.quick,
        "config": {key: str(value) if isinstance(value, Path) else value for key, value in asdict(config).items()},
        "commands": {job.name: " ".join(job.command[2:]).replace("score_bench", "score-bench", 1)
                     for job in jobs},
        "seconds": seconds,
        "plots": {name: str(path) for name, path in plots.items()},
        **started_from,
    }


def _weights_sha256(run: Path) -> str | None:
    """The evaluated model's weight hash, as its results.json records it."""
    return json.loads((run / "results.json").read_text(encoding="utf-8")).get("model", {}).get("weights_sha256")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
