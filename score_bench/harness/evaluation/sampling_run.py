"""What `eval` and `scale` share before and around sampling (their settings are harness.evaluation.configs):
loading the task's problems and the model, checking the run fits the model and the machine, and the run's identity
in DIR/eval_config.json, which decides whether a rerun into the same directory may resume it. Every check here
writes nothing, so bad input leaves no trace."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import plain_values, with_values
from score_bench.harness.contracts.generation import DEFAULT_MAX_NEW_TOKENS, Backend
from score_bench.harness.contracts.progress import Progress, note, phase
from score_bench.harness.contracts.registry import load_task
from score_bench.harness.contracts.types import Problem, check_unique
from score_bench.harness.evaluation.configs import SamplingConfig
from score_bench.harness.evaluation.samples_log import SAMPLES_FILE, row_memory_floor
from score_bench.harness.generation.backends import TRANSPORT_OPTIONS
from score_bench.harness.generation.prompts import PromptOverride
from score_bench.harness.runtime.device_memory import check_kv_fits, device_memory
from score_bench.harness.runtime.guards import check_context, check_finite_weights, fitting_max_new_tokens
from score_bench.harness.runtime.input_files import SETTINGS_FILE_BYTES, read_bytes, read_json
from score_bench.harness.runtime.provenance import problems_hash

__all__ = ["CONFIG_FILE", "CHUNK_BATCHES", "check_conversations_fit", "load_problems", "load_model", "fit_to_model",
           "model_record", "run_identity", "recorded_config", "check_same_run"]

CONFIG_FILE = "eval_config.json"
CHUNK_BATCHES = 1
"""Backend batches per rollout chunk, the unit of resume: one, so a kill loses at most one batch of work
(grading of one chunk still overlaps generation of the next)."""


Config = TypeVar("Config", bound=SamplingConfig)


def check_conversations_fit(problems: int, samples: int, turns: int, lower: str) -> None:
    """Refuse, before a model loads, a run whose samples rows cannot all fit in this machine's memory (the results
    are computed from all of them at once): problems x samples conversations of `turns` attempts, each row at
    least samples_log.row_memory_floor bytes. `lower` names the options that set these numbers."""
    conversations = problems * samples
    floor = row_memory_floor(turns)
    available, holder = device_memory("cpu")
    if conversations * floor > available:
        raise InputError(f"{problems:,} problem(s) x {samples:,} sample(s) of {turns:,} attempt(s) make "
                         f"{conversations:,} conversations, whose sample rows alone need at least "
                         f"{conversations * floor / 2**30:,.1f} GiB in memory ({floor:,} bytes each with empty "
                         f"texts) but {holder} has {available / 2**30:,.1f} GiB; lower {lower}")


def load_problems(config: SamplingConfig) -> tuple[Any, list[Problem]]:
    """The task (with any prompt overrides) and the problems of the split to run, ids unique."""
    task = load_task(config.task, **dict(config.task_options))
    overrides = (config.correction_instruction, config.first_prompt_template, config.system_prompt)
    if any(o is not None for o in overrides):
        task = PromptOverride(task, *overrides)
    if config.split not in task.splits:
        raise InputError(f"unknown split '{config.split}' for task {config.task}; available: {', '.join(task.splits)}")
    problems = task.problems(config.split)[:config.limit]
    if not problems:
        raise InputError(f"task {config.task} has no problems in split '{config.split}'")
    check_unique((p.id, f"task {config.task} split '{config.split}' problem {i + 1}") for i, p in enumerate(problems))
    return task, problems


def load_model(config: SamplingConfig, progress: Progress | None = None) -> Backend:
    """The backend that samples from config.model, loaded under a progress phase."""
    with phase(progress, f"loading {config.model}", None):
        from score_bench.harness.generation.backends import load_backend

        return load_backend(config.backend, model=config.model, dtype=config.dtype, device=config.device,
                            chat_template=config.chat_template, batch_size=config.batch_size,
                            prefix_cache_mb=config.prefix_cache_mb, **dict(config.backend_options))


def fit_to_model(config: Config, task, problems: list[Problem], backend: Backend, turns: int, samples: int,
                 progress: Progress | None = None) -> Config:
    """`config` with max_new_tokens settled, checked before anything is written: the weights are numbers, every
    conversation of `turns` attempts renders and fits the backend's context, and the KV cache of a generation
    batch (batch_size of the problems x `samples` conversations) fits the model's device. A backend without a
    local tokenizer, e.g. a served endpoint, is trusted with all of it but the context it reports. A
    max_new_tokens not given becomes the most that fits, at most DEFAULT_MAX_NEW_TOKENS, told to `progress` in
    one line; a given one that does not fit is refused."""
    model, tokenizer = backend.local_model, backend.tokenizer
    if tokenizer is None:
        served, _ = backend.context
        config = _settled(config, DEFAULT_MAX_NEW_TOKENS, "the default; the endpoint's context is not checked here"
                          if served is None else f"the default; checked against the {served} tokens of context the "
                          "endpoint serves, prompts not counted", progress)
        max_new_tokens = config.generation.max_new_tokens
        if served is not None and turns * max_new_tokens > served:
            raise InputError(f"{turns} attempt(s) of max_new_tokens {max_new_tokens} need more than the "
                             f"{served} tokens of context that {config.model} is served with; lower "
                             "--max-new-tokens or --turns")
        return config
    if model is not None:
        check_finite_weights(model, config.model)
    template = f"chat template '{config.chat_template}'" if config.chat_template else "the model's chat template"
    prompts = [task.first_prompt(p) for p in problems]
    instruction = [{"role": "user", "content": task.correction_instruction}]
    if config.generation.max_new_tokens is None:
        fitting = fitting_max_new_tokens(tokenizer, backend.context, prompts, instruction, turns,
                                         DEFAULT_MAX_NEW_TOKENS, config.model, template)
        limit, limit_name = backend.context
        if not limit:
            why = "the default; the model states no context length"
        elif fitting < DEFAULT_MAX_NEW_TOKENS:
            why = (f"the most that fits {turns} attempt(s) after the longest prompt in the context of {limit} "
                   f"tokens ({limit_name})")
        else:
            why = f"the default; the context of {limit} tokens has room for it"
        config = _settled(config, fitting, why, progress)
    tokens = check_context(tokenizer, backend.context, prompts, instruction, config.generation.max_new_tokens,
                           turns, config.model, template)
    if model is not None:
        check_kv_fits(model, min(config.batch_size, len(problems) * samples), tokens)
    return config


def _settled(config: Config, value: int, why: str, progress: Progress | None) -> Config:
    if config.generation.max_new_tokens is not None:
        return config
    note(progress, f"max_new_tokens not given: using {value} ({why}); give --max-new-tokens to choose")
    return with_values(config, max_new_tokens=value)


def model_record(config: SamplingConfig, backend: Backend) -> dict:
    """What results record about the model: its name as the user gave it (a local directory never as this
    machine's resolved path, so results read the same anywhere) and what the backend reports (weights hash,
    architecture, engine)."""
    described = dict(backend.describe())
    if Path(config.model).expanduser().is_dir():
        described.pop("source", None)
    return {"id": config.model, **described}


PATH_HASHES = {"model": "weights_sha256", "chat_template": "chat_template_sha256",
               "first_attempts": "first_attempts_sha256"}
"""Settings that are paths, and the hash of what they hold: with the hash recorded, the path as spelled does not
decide whether a rerun is the same run, so a moved checkout (or another spelling of a path) resumes."""


def run_identity(config: SamplingConfig, problems: list[Problem], first_attempts: dict[str, str] | None,
                 model_info: dict) -> dict:
    """Everything that decides the samples: a run may resume only into a directory with the same identity.
    Paths are recorded as given; a local model is identified by its weights' hash (see PATH_HASHES)."""
    settings = plain_values(config)
    settings.pop("output")
    settings.pop("prefix_cache_mb")
    settings["backend_options"] = {name: value for name, value in settings["backend_options"].items()
                                   if name not in TRANSPORT_OPTIONS}
    given = None
    if first_attempts is not None:
        given = hashlib.sha256(json.dumps(first_attempts, sort_keys=True).encode()).hexdigest()
    template = None
    if config.chat_template is not None and Path(config.chat_template).is_file():
        template = hashlib.sha256(read_bytes(config.chat_template, "--chat-template file",
                                             SETTINGS_FILE_BYTES)).hexdigest()
    return json.loads(json.dumps({"config": settings, "problems_sha256": problems_hash(problems),
                                  "first_attempts_sha256": given, "chat_template_sha256": template,
                                  "weights_sha256": model_info.get("weights_sha256")}, default=str))


def recorded_config(config: SamplingConfig, identity: dict) -> dict:
    """The config results.json records: the identity's, with the backend options as given (transport included)."""
    return {**identity["config"], "backend_options": json.loads(json.dumps(dict(config.backend_options),
                                                                           default=str))}


def _comparable(identity: dict) -> dict:
    """The identity as compared for a resume: a path setting counts by its content hash when one is recorded."""
    settings = dict(identity.get("config") or {})
    for name, digest in PATH_HASHES.items():
        if identity.get(digest) is not None:
            settings.pop(name, None)
    return {**identity, "config": settings}


def check_same_run(out: Path, identity: dict) -> None:
    """Refuse a directory that holds another run (a different identity, or samples with none)."""
    stored_path = out / CONFIG_FILE
    if not stored_path.exists():
        if (out / SAMPLES_FILE).exists():
            raise InputError(f"{out} holds samples but no {CONFIG_FILE}; use a new --output")
        return
    stored = read_json(stored_path, "run identity file")
    if not isinstance(stored, dict) or _comparable(stored) != _comparable(identity):
        difference = _first_difference(_comparable(stored), _comparable(identity)) if isinstance(stored, dict) \
            else "not a run identity"
        raise InputError(f"{out} holds a different run ({difference}); "
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
