"""`score-bench eval` as a Python API: a multi-attempt self-correction evaluation that survives being killed.

DIR/eval_config.json pins what the run is (config, problems, weights); DIR/samples.jsonl grows by one fsynced
write per chunk (one backend batch of conversations) the moment it is graded, so a kill loses at most the batch
being generated; DIR/results.json is written atomically at the end from the samples file alone, so a
run resumed any number of times ends with the same metrics as one that never stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import Backend
from score_bench.harness.contracts.progress import Progress
from score_bench.harness.contracts.types import Problem
from score_bench.harness.evaluation import metrics
from score_bench.harness.evaluation.configs import EvalConfig
from score_bench.harness.evaluation.repair_set import read_marked_rows, repair_set_ids
from score_bench.harness.evaluation.result_schema import SCHEMA_VERSION
from score_bench.harness.evaluation.samples_log import SAMPLES_FILE, append_rows, recover_rows, sample_row
from score_bench.harness.evaluation.sampling_run import (CHUNK_BATCHES, CONFIG_FILE, check_conversations_fit,
                                                         check_same_run, fit_to_model, load_model, load_problems,
                                                         model_record, recorded_config, run_identity)
from score_bench.harness.generation.prompts import prompts_used
from score_bench.harness.generation.rollout import RolloutConfig, Trace, iter_rollout, plan
from score_bench.harness.runtime.guards import check_output_dir, check_output_not_model, output_lock
from score_bench.harness.runtime.input_files import read_json, read_text
from score_bench.harness.runtime.provenance import provenance, write_json_atomic

__all__ = ["run_eval", "load_first_attempts"]

RESULTS_FILE = "results.json"


def run_eval(config: EvalConfig, progress: Progress | None = None, *, backend: Backend | None = None) -> dict:
    """Evaluate, resuming from config.output when it holds part of the same run; returns results.json's content.

    `backend` replaces loading config.model (e.g. a model already in memory); config.model then only names it."""
    started = time.time()
    started_from = provenance()  # the code that evaluates is what was checked out now, not at the end
    check_output_not_model(Path(config.output), config.model)
    check_output_dir(Path(config.output))
    task, problems = load_problems(config)
    problems, first_attempts = _first_attempts(config, problems)
    check_conversations_fit(len(problems), config.samples, config.turns, "--samples, --turns or --limit")
    loading_started = time.time()
    if backend is None:
        backend = load_model(config, progress)
    load_s = time.time() - loading_started
    config = fit_to_model(config, task, problems, backend, config.turns, config.samples, progress)
    model_info = model_record(config, backend)
    identity = run_identity(config, problems, first_attempts, model_info)
    out = Path(config.output)
    check_same_run(out, identity)  # everything above writes nothing, so bad input leaves no trace
    with output_lock(out, "eval"):
        check_same_run(out, identity)  # again under the lock: another run may have started meanwhile
        if not (out / CONFIG_FILE).exists():
            write_json_atomic(out / CONFIG_FILE, identity)
        done = recover_rows(out / SAMPLES_FILE, attempts=lambda _: config.turns)
        units = {(p.id, k) for p, k in plan(problems, config.samples)}
        stray = next((key for key in done if key not in units), None)
        if stray is not None:
            raise InputError(f"{out / SAMPLES_FILE} holds a row for problem '{stray[0]}' sample {stray[1]}, "
                             f"which this run does not have; use a new --output")
        if len(done) == len(units) and (out / RESULTS_FILE).is_file():
            return read_json(out / RESULTS_FILE, "results file")  # finished: its results (and timing) stand
        rollout_config = RolloutConfig(turns=config.turns, samples=config.samples, params=config.generation_params(),
                                       chunk_size=config.batch_size * CHUNK_BATCHES)
        new_tokens = 0

        def write(traces: list[Trace]) -> None:  # runs in the grading thread, as soon as a chunk is graded
            nonlocal new_tokens
            append_rows(out / SAMPLES_FILE, [sample_row(trace) for trace in traces])
            new_tokens += sum(a.n_tokens for trace in traces for a in trace.attempts)

        rollout_started = time.time()
        for _ in iter_rollout(task, problems, backend, rollout_config, first_attempts=first_attempts,
                              skip=set(done), progress=progress, on_graded=write):
            pass
        rollout_s = time.time() - rollout_started
        rows = recover_rows(out / SAMPLES_FILE, attempts=lambda _: config.turns)
        results = _results(config, task, problems, rows, model_info, identity, started_from)
        results["resumed_rows"] = len(done)
        results["wall_time_s"] = round(time.time() - started, 3)
        results["timing"] = {"load_s": round(load_s, 3), "rollout_s": round(rollout_s, 3),
                             "tokens_this_run": new_tokens,
                             "tokens_per_s": round(new_tokens / rollout_s, 2) if rollout_s > 0 else None}
        write_json_atomic(out / RESULTS_FILE, results)
    return results


def _first_attempts(config: EvalConfig, problems: list[Problem]) -> tuple[list[Problem], dict[str, str] | None]:
    """The problems to run and their given first attempts. A repair set (harness.evaluation.repair_set) holds only some
    of a split's problems: the run keeps those, in the split's order; any other file must cover every problem."""
    if config.task_first_attempts:
        missing = [p.id for p in problems if p.fixed_first_attempt is None]
        if missing:
            raise InputError(f"task {config.task} gives no first attempt for problem '{missing[0]}'")
        return problems, {p.id: p.fixed_first_attempt for p in problems}  # type: ignore[misc]
    if config.first_attempts is None:
        return problems, None
    given = load_first_attempts(Path(config.first_attempts))
    subset = repair_set_ids(read_marked_rows(Path(config.first_attempts)))
    if subset is not None:
        problems = [p for p in problems if p.id in subset]
        if not problems:
            raise InputError(f"repair set {config.first_attempts} holds no problem of task {config.task} "
                             f"split '{config.split}'")
    missing = [p.id for p in problems if p.id not in given]
    if missing:
        raise InputError(f"first-attempts file {config.first_attempts} has no entry for problem '{missing[0]}' "
                         f"({len(missing)} of {len(problems)} missing)")
    return problems, {p.id: given[p.id] for p in problems}


def load_first_attempts(path: Path) -> dict[str, str]:
    """{problem id: attempt text} from JSON ({id: text}) or JSONL (rows with "id" and "text", or a samples.jsonl
    of an earlier eval, whose sample 0 attempt 1 is taken)."""
    text = read_text(path, "--first-attempt file")
    if path.suffix == ".json":
        try:
            mapping = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise InputError(f"first-attempts file '{path}' is not valid JSON: {str(err)[:200]}") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise InputError(f"first-attempts file '{path}' must hold a JSON object of id -> text")
        return {str(k): v for k, v in mapping.items()}
    given: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row.get("sample", 0) != 0:
                continue
            problem_id = str(row["id"])
            attempt = row["text"] if "text" in row else row["attempts"][0]["text"]
            if not isinstance(attempt, str):
                raise TypeError(attempt)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
            raise InputError(f"first-attempts file '{path}' line {number}: expected an object with "
                             f"\"id\" and \"text\"") from None
        if given.get(problem_id, attempt) != attempt:
            raise InputError(f"first-attempts file '{path}' gives two different attempts for '{problem_id}'")
        given[problem_id] = attempt
    return given


def _per_attempt(grid: list[list[dict]], read) -> list[list[list]]:
    """read(attempt row) for every [problem][sample][attempt]; rows written before flexible grading existed
    fall back to their strict fields."""
    return [[[read(a) for a in row["attempts"]] for row in cell] for cell in grid]


def _results(config: EvalConfig, task, problems: list[Problem], rows: dict[tuple[str, int], dict],
             model_info: dict, identity: dict, started_from: dict) -> dict:
    """results.json, computed from the samples file alone."""
    grid = [[rows[(p.id, k)] for k in range(config.samples)] for p in problems]
    correct = _per_attempt(grid, lambda a: a["correct"])
    flat = [row for cell in grid for row in cell]
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "repair" if config.first_attempts is not None or config.task_first_attempts else "eval",
        "metrics": metrics.summarize(
            correct, flexible=_per_attempt(grid, lambda a: a.get("correct_flexible", a["correct"])),
            extracted=_per_attempt(grid, lambda a: a["extracted"] is not None),
            extracted_flexible=_per_attempt(grid, lambda a: a.get("extracted_flexible", a["extracted"]) is not None),
            seed=config.seed),
        "per_turn_accuracy": [sum(c[t] for cell in correct for c in cell) / len(flat) for t in range(config.turns)],
    }
    if config.samples > 1:
        ks = sorted({k for k in (1, 2, 4, 8, 16, 32, 64, 128) if k <= config.samples} | {config.samples})
        results["pass_at_k"] = metrics.pass_at_k_by_turn(correct, ks)
    results["edit_ratio"] = {
        f"t{t + 1}_t{t + 2}": {"mean": sum(r["edit_ratio"][t] for r in flat) / len(flat),
                               "unchanged": sum(r["edit_ratio"][t] == 0 for r in flat) / len(flat)}
        for t in range(config.turns - 1)}
    results["counts"] = {"problems": len(problems), "samples": config.samples, "turns": config.turns,
                         "rows": len(flat), "grading_errors": sum(a["status"] == "error" for r in flat
                                                                  for a in r["attempts"])}
    results["model"] = model_info
    results["task"] = {"name": config.task, "split": config.split, "problems": len(problems),
                       "problems_sha256": identity["problems_sha256"],
                       **prompts_used(task, problems[0]),
                       "first_attempts": ("task" if config.task_first_attempts else
                                          identity["config"]["first_attempts"]),
                       "first_attempts_sha256": identity["first_attempts_sha256"]}
    results["generation"] = {**asdict(config.generation_params()), "backend": config.backend,
                             "batch_size": config.batch_size, "dtype": config.dtype, "device": config.device}
    results["seed"] = config.seed
    results["tokens_generated"] = sum(a["tokens"] for r in flat for a in r["attempts"])
    results["config"] = recorded_config(config, identity)
    results.update(started_from)
    return results
