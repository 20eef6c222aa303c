"""Validation of config numbers, shared by the CLI and the Python API: every field checked for its type
(an int is not a bool, a float is finite) and its range before anything is loaded or written, so a bad value
fails at once by name instead of as a traceback minutes into a run (or, worse, as a run on garbage).

Ranges are keyed by field name: the same name means the same thing in every config (eval, the trainers,
the base-model build), so one table serves them all and a new trainer's `learning_rate` is checked for free.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import types
import typing
from typing import Any, Callable, Literal, Mapping

from score_bench.harness.contracts.errors import InputError

__all__ = ["Range", "RANGES", "check_number", "check_fields", "coerce", "task_options", "MAX_SEED"]

MAX_SEED = 2**63 - 1
"""numpy's and torch's generators take seeds in [0, 2**64); one bit is kept for the per-row offsets."""


@dataclasses.dataclass(frozen=True)
class Range:
    """low/high bounds (None: unbounded), each inclusive unless marked open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        return "a finite number"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


POSITIVE, NON_NEGATIVE, AT_LEAST_ONE = Range(0, low_open=True), Range(0), Range(1)
SHARE = Range(0, 1)

RANGES: dict[str, Range] = {
    # generation
    "temperature": NON_NEGATIVE, "top_p": Range(0, 1, low_open=True), "max_new_tokens": AT_LEAST_ONE,
    "batch_size": AT_LEAST_ONE, "generation_batch_size": AT_LEAST_ONE, "limit": AT_LEAST_ONE,
    "turns": AT_LEAST_ONE, "samples": AT_LEAST_ONE, "samples_per_problem": AT_LEAST_ONE,
    "seed": Range(0, MAX_SEED), "threads": AT_LEAST_ONE, "prefix_cache_mb": NON_NEGATIVE,
    # optimisation
    "learning_rate": POSITIVE, "weight_decay": NON_NEGATIVE, "grad_clip": NON_NEGATIVE,
    "adam_beta1": Range(0, 1, high_open=True), "adam_beta2": Range(0, 1, high_open=True),
    "alpha": NON_NEGATIVE, "beta1": NON_NEGATIVE, "beta2": NON_NEGATIVE, "stage2_attempt1_kl": NON_NEGATIVE,
    "min_lr_ratio": SHARE, "warmup_steps": NON_NEGATIVE,
    # budgets
    "steps": AT_LEAST_ONE, "stage1_steps": NON_NEGATIVE, "stage2_steps": NON_NEGATIVE,
    "sampling_batches": NON_NEGATIVE, "updates": NON_NEGATIVE, "sft_batch_size": AT_LEAST_ONE,
    "eval_every": NON_NEGATIVE, "save_every": NON_NEGATIVE, "eval_problems": NON_NEGATIVE,
    "max_minutes": POSITIVE,
    # shares
    "careless_share": SHARE, "copy_share": SHARE, "two_attempt_share": SHARE,
}


def check_number(name: str, value: Any, kind: type, allowed: Range | None = None, *, optional: bool = False,
                 who: str = "") -> Any:
    """`value` if it is a `kind` (int: a real int, not a bool; float: an int or float, finite) within `allowed`;
    otherwise an InputError naming `name` (and `who`, e.g. "score trainer", when given)."""
    label = f"{who} setting '{name}'" if who else f"'{name}'"
    if value is None:
        if optional:
            return None
        raise InputError(f"{label} needs a value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{label} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if kind is int and not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise InputError(f"{label} must be an integer, got {value!r}")
        value = int(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{label} must be a finite number, got {value!r}")
    if allowed is not None and not allowed.holds(value):
        raise InputError(f"{label} must be {allowed.describe()}, got {value!r}")
    return value


def _numeric_kind(hint: Any) -> tuple[type | None, bool]:
    """(int or float or None, whether None is allowed) for a field's type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        kind, _ = _numeric_kind(inner[0]) if len(inner) == 1 else (None, False)
        return kind, type(None) in args
    return (hint if hint in (int, float) else None), False


def check_fields(config: Any, who: str = "", extra: dict[str, Range] | None = None,
                 skip: Callable[[str], bool] = lambda name: False) -> None:
    """Check every int and float field of dataclass `config`: its type, finiteness and, when its name is in
    RANGES (or `extra`, which wins), its range. Raises InputError on the first bad field."""
    hints = typing.get_type_hints(type(config))
    ranges = {**RANGES, **(extra or {})}
    for item in dataclasses.fields(config):
        if skip(item.name):
            continue
        kind, optional = _numeric_kind(hints.get(item.name))
        if kind is None:
            continue
        check_number(item.name, getattr(config, item.name), kind, ranges.get(item.name), optional=optional,
                     who=who)


def coerce(key: str, value: Any, hint: Any) -> Any:
    """`value` as type `hint` (int, float, bool, str, Literal, Optional of those, dict from JSON): how a
    `--set key=value`, a YAML field or a `--task-option key=value` string becomes the field's type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return coerce(key, value, inner[0]) if len(inner) == 1 else value
    if origin is Literal:
        if value not in args:
            raise InputError(f"setting '{key}' must be one of {', '.join(map(str, args))}, got '{value}'")
        return value
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "1", "yes"):
                return True
            if str(value).lower() in ("false", "0", "no"):
                return False
            raise ValueError(value)
        if hint in (int, float) and isinstance(value, bool):  # YAML's `true` is not a step count
            raise ValueError(value)
        if hint is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if hint is float:
            return float(value)
        if hint is str:
            return str(value)
        if origin is dict or hint is dict:  # a JSON object (or YAML mapping) of named options
            loaded = json.loads(value) if isinstance(value, str) else value
            if not isinstance(loaded, dict) or not all(isinstance(name, str) for name in loaded):
                raise ValueError(value)
            return dict(loaded)
    except (TypeError, ValueError, RecursionError):
        raise InputError(f"setting '{key}' expects {getattr(hint, '__name__', hint)}, got '{value}'") from None
    return value


def task_options(task: str, given: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`given` as keyword arguments for task `task`'s constructor, each value converted to (or checked against)
    the parameter's annotated type: a string as `--task-option` gives it, a JSON value as a config's task_options
    holds it. An option the task does not take is an error naming the option (as `labels` spells it on
    the command line, e.g. "--data-dir") and the task: never silently dropped."""
    from score_bench.harness.contracts import registry

    factory = registry.load(registry.TASKS, task)
    parameters = inspect.signature(factory).parameters
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # an annotation that does not resolve: take the strings as given
        hints = {}
    labels = labels or {}
    typed = {}
    for key, value in given.items():
        label = labels.get(key, f"'{key}'")
        if key not in parameters or parameters[key].kind in (inspect.Parameter.VAR_POSITIONAL,
                                                             inspect.Parameter.POSITIONAL_ONLY):
            takes = ", ".join(name for name, p in parameters.items()
                              if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)) or "no options"
            raise InputError(f"task '{task}' does not accept option {label} (it takes: {takes})")
        typed[key] = coerce(key, value, hints[key]) if key in hints else value
    return typed
