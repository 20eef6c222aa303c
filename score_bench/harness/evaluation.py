"""`score-bench eval` as a Python API: a multi-attempt self-correction evaluation that survives being killed.

DIR/eval_config.json pins what the run is (config, problems, weights); DIR/samples.jsonl grows by one fsynced
write per chunk (one backend batch of conversations) the moment it is graded, so a kill loses at most the batch
being generated; DIR/results.json is written atomically at the end from the samples file alone, so a
run resumed any number of times ends with the same metrics as one that never stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from score_bench.harness import metrics
from score_bench.harness.checks import check_fields
from score_bench.harness.edit_distance import edit_ratio
from score_bench.harness.errors import InputError
from score_bench.harness.generation import Backend, GenerationParams
from score_bench.harness.jsonl import read_json
from score_bench.harness.guards import check_context, check_finite_weights, check_output_dir, output_lock
from score_bench.harness.progress import Progress, phase
from score_bench.harness.prompts import PromptOverride, prompts_used
from score_bench.harness.provenance import problems_hash, provenance, write_json_atomic
from score_bench.harness.registry import load_task
from score_bench.harness.repair_set import read_marked_rows, repair_set_ids
from score_bench.harness.rollout import RolloutConfig, Trace, iter_rollout, plan
from score_bench.harness.types import Problem

__all__ = ["EvalConfig", "run_eval", "load_first_attempts"]

CONFIG_FILE, SAMPLES_FILE, RESULTS_FILE = "eval_config.json", "samples.jsonl", "results.json"
CHUNK_BATCHES = 1
"""Backend batches per rollout chunk, the unit of resume: one, so a kill loses at most one batch of work
(grading of one chunk still overlaps generation of the next)."""


@dataclass(frozen=True)
class EvalConfig:
    model: str
    """A checkpoint directory or a Hugging Face Hub id."""
    task: str
    """A registered task name (`score-bench tasks` lists them)."""
    output: Path
    """Directory for eval_config.json, samples.jsonl and results.json; rerunning into it resumes."""
    split: str = "test"
    limit: int | None = None
    """Evaluate only the first N problems of the split."""
    turns: int = 2
    """Attempts per conversation: the paper's two, or more to see where correction saturates."""
    samples: int = 1
    """Conversations per problem; above 1, results add pass@k at each turn."""
    max_new_tokens: int = 512
    batch_size: int = 32
    temperature: float = 0.0
    """0 is greedy decoding, the paper's evaluation setting."""
    top_p: float = 1.0
    seed: int = 0
    """Seeds sampling and the bootstrap intervals."""
    stop: tuple[str, ...] = ()
    dtype: str = "auto"
    """auto (bf16 on CUDA, fp32 on CPU), float32 or bfloat16."""
    device: str = "auto"
    chat_template: Path | None = None
    """A Jinja chat template file, for models that ship none."""
    first_attempts: Path | None = None
    """Given first attempts (JSON {id: text}, or JSONL rows with id and text): evaluates repair alone."""
    task_first_attempts: bool = False
    """Use the task's own given first attempts (score-toy's original_answer) to evaluate repair alone."""
    task_options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for the task's constructor (e.g. a data path)."""
    correction_instruction: str | None = None
    """Replaces the task's correction instruction (prompts are task data; results record the one used)."""
    first_prompt_template: str | None = None
    """Replaces the attempt-1 user message; "{question}" marks where the problem goes."""
    system_prompt: str | None = None
    backend: str = "transformers"
    """transformers, vllm or openai (harness.backends)."""
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    """The backend's own options (e.g. vllm: tensor_parallel_size, max_model_len; openai: base_url,
    max_concurrency, request_timeout): see the backend's `load`. Part of the run's identity, like the rest."""
    prefix_cache_mb: float = 1024
    """Memory kept for reusing attempt k's KV cache in attempt k+1 (0 turns reuse off); speed only, so not part
    of the run's identity."""

    def generation_params(self) -> GenerationParams:
        return GenerationParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                top_p=self.top_p, seed=self.seed, stop=tuple(self.stop))


def run_eval(config: EvalConfig, progress: Progress | None = None, *, backend: Backend | None = None) -> dict:
    """Evaluate, resuming from config.output when it holds part of the same run; returns results.json's content.

    `backend` replaces loading config.model (e.g. a model already in memory); config.model then only names it."""
    started = time.time()
    started_from = provenance()  # the code that evaluates is what was checked out now, not at the end
    _check_numbers(config)
    check_output_dir(Path(config.output))
    task, problems = _load_problems(config)
    problems, first_attempts = _first_attempts(config, problems)
    loading_started = time.time()
    if backend is None:
        with phase(progress, f"loading {config.model}", None):
            from score_bench.harness.backends import load_backend

            backend = load_backend(config.backend, model=config.model, dtype=config.dtype, device=config.device,
                                   chat_template=config.chat_template, batch_size=config.batch_size,
                                   prefix_cache_mb=config.prefix_cache_mb, **dict(config.backend_options))
    load_s = time.time() - loading_started
    _check_backend(config, task, problems, backend)
    model_info = {"id": config.model, **(backend.describe() if hasattr(backend, "describe") else {})}
    identity = _identity(config, problems, first_attempts, model_info)
    out = Path(config.output)
    _check_existing(out, identity)  # everything above writes nothing, so bad input leaves no trace
    with output_lock(out, "eval"):
        _check_existing(out, identity)  # again under the lock: another run may have started meanwhile
        if not (out / CONFIG_FILE).exists():
            write_json_atomic(out / CONFIG_FILE, identity)
        done = _recover(out / SAMPLES_FILE)
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
            _append(out / SAMPLES_FILE, [_row(trace) for trace in traces])
            new_tokens += sum(a.n_tokens for trace in traces for a in trace.attempts)

        rollout_started = time.time()
        for _ in iter_rollout(task, problems, backend, rollout_config, first_attempts=first_attempts,
                              skip=set(done), progress=progress, on_graded=write):
            pass
        rollout_s = time.time() - rollout_started
        rows = _recover(out / SAMPLES_FILE)
        results = _results(config, task, problems, rows, model_info, identity, started_from)
        results["resumed_rows"] = len(done)
        results["wall_time_s"] = round(time.time() - started, 3)
        results["timing"] = {"load_s": round(load_s, 3), "rollout_s": round(rollout_s, 3),
                             "tokens_this_run": new_tokens,
                             "tokens_per_s": round(new_tokens / rollout_s, 2) if rollout_s > 0 else None}
        write_json_atomic(out / RESULTS_FILE, results)
    return results


def _check_numbers(config: EvalConfig) -> None:
    check_fields(config, "eval")
    if config.first_attempts is not None and config.task_first_attempts:
        raise InputError("give first attempts from a file or from the task, not both")
    if not all(isinstance(text, str) and text for text in config.stop):
        raise InputError("every stop string must be a non-empty string")


def _check_backend(config: EvalConfig, task, problems: list[Problem], backend: Backend) -> None:
    """Before anything is written: the weights are numbers, and every conversation renders and fits the
    model's context (a backend that exposes no transformers model and tokenizer is trusted)."""
    model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
    if model is None or tokenizer is None or not hasattr(model, "named_parameters"):
        return
    check_finite_weights(model, config.model)
    template = f"chat template '{config.chat_template}'" if config.chat_template else "the model's chat template"
    check_context(tokenizer, model.config, [task.first_prompt(p) for p in problems],
                  [{"role": "user", "content": task.correction_instruction}], config.max_new_tokens, config.turns,
                  config.model, template)


def _load_problems(config: EvalConfig) -> tuple[Any, list[Problem]]:
    try:
        task = load_task(config.task, **dict(config.task_options))
    except TypeError as err:
        raise InputError(f"bad option for task '{config.task}': {err}") from None
    overrides = (config.correction_instruction, config.first_prompt_template, config.system_prompt)
    if any(o is not None for o in overrides):
        task = PromptOverride(task, *overrides)
    if config.split not in task.splits:
        raise InputError(f"unknown split '{config.split}' for task {config.task}; available: {', '.join(task.splits)}")
    problems = task.problems(config.split)[:config.limit]
    if not problems:
        raise InputError(f"task {config.task} has no problems in split '{config.split}'")
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise InputError(f"task {config.task} split '{config.split}' repeats problem ids; each must be unique")
    return task, problems


def _first_attempts(config: EvalConfig, problems: list[Problem]) -> tuple[list[Problem], dict[str, str] | None]:
    """The problems to run and their given first attempts. A repair set (harness.repair_set) holds only some of
    a split's problems: the run keeps those, in the split's order; any other file must cover every problem."""
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
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.reason if isinstance(err, UnicodeDecodeError) else err.strerror or err
        raise InputError(f"cannot read first-attempts file '{path}': {reason}") from None
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


def _identity(config: EvalConfig, problems: list[Problem], first_attempts: dict[str, str] | None,
              model_info: dict) -> dict:
    """Everything that decides the samples: a run may resume only into a directory with the same identity."""
    settings = asdict(config)
    settings.pop("output")
    settings.pop("prefix_cache_mb")
    for name in ("chat_template", "first_attempts"):
        if settings[name] is not None:
            settings[name] = str(Path(settings[name]).resolve())
    if Path(config.model).expanduser().is_dir():
        settings["model"] = str(Path(config.model).expanduser().resolve())
    given = None
    if first_attempts is not None:
        given = hashlib.sha256(json.dumps(first_attempts, sort_keys=True).encode()).hexdigest()
    return json.loads(json.dumps({"config": settings, "problems_sha256": problems_hash(problems),
                                  "first_attempts_sha256": given,
                                  "weights_sha256": model_info.get("weights_sha256")}, default=str))


def _check_existing(out: Path, identity: dict) -> None:
    stored_path = out / CONFIG_FILE
    if not stored_path.exists():
        if (out / SAMPLES_FILE).exists():
            raise InputError(f"{out} holds samples but no {CONFIG_FILE}; use a new --output")
        return
    try:
        stored = json.loads(stored_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise InputError(f"cannot read {stored_path}: {str(err)[:200]}") from None
    if stored != identity:
        raise InputError(f"{out} holds a different run ({_first_difference(stored, identity)}); "
                         f"rerun with the same settings to resume, or use a new --output")


def _first_difference(stored: dict, current: dict, prefix: str = "") -> str:
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            if a != b:
                return _first_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            return f"{prefix}{key}: {json.dumps(a)} there, {json.dumps(b)} now"
    return "unknown difference"


def _recover(path: Path) -> dict[tuple[str, int], dict]:
    """Rows already written, keyed by (id, sample). A half-written last line (the run died mid-write) is cut off
    the file; any other unreadable line is an error, never silently skipped."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
            os.fsync(handle.fileno())
    rows: dict[tuple[str, int], dict] = {}
    for number, line in enumerate(data[:end].splitlines(), start=1):
        try:
            row = json.loads(line)
            key = (row["id"], row["sample"])
            hash(key)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise InputError(f"{path} line {number} is not a sample row; the file is damaged") from None
        if key in rows:
            raise InputError(f"{path} line {number} repeats problem '{key[0]}' sample {key[1]}")
        rows[key] = row
    return rows


def _append(path: Path, rows: list[dict]) -> None:
    """One write and an fsync per chunk: after a crash, a chunk's rows are all there, or a prefix of them."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _row(trace: Trace) -> dict:
    attempts = []
    for attempt in trace.attempts:
        flexible = attempt.flexible_verdict or attempt.verdict
        entry = {"text": attempt.text, "extracted": attempt.extracted, "correct": attempt.correct,
                 "extracted_flexible": flexible.extracted, "correct_flexible": flexible.correct,
                 "status": attempt.verdict.status.value, "tokens": attempt.n_tokens, "given": attempt.given}
        if attempt.verdict.detail:
            entry["detail"] = attempt.verdict.detail
        attempts.append(entry)
    texts = [a.text for a in trace.attempts]
    return {"id": trace.problem.id, "sample": trace.sample, "messages": list(trace.messages), "attempts": attempts,
            "edit_ratio": [round(edit_ratio(a, b), 6) for a, b in zip(texts, texts[1:])]}


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
    results["config"] = identity["config"]
    results.update(started_from)
    return results
