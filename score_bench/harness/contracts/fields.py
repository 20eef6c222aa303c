"""Config fields: a field's valid range is declared beside it, in its annotation (`steps: Annotated[int,
AT_LEAST_ONE] = 400`), and checked in one place, when the config is built (Settings.__post_init__): every number's
type (an int is not a bool, a float is finite) and range, every Literal's choices. A bad value fails at once by
name, from the command line and the Python API alike, instead of as a traceback minutes into a run (or, worse, as
a run on garbage).

A config may nest settings (a config's `generation`): its fields are named flat outside Python, on the command line,
in YAML and in the files a run writes, so each name is unique across a config (flat_fields, plain_values, build,
with_values).

Also here: turning the strings of `--set key=value`, a YAML file or `--task-option key=value` into a field's type
(coerce), and typing a task's constructor options (task_options).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import math
import textwrap
import types
import typing
from functools import cache
from typing import Any, ClassVar, Literal, Mapping

from score_bench.harness.contracts.errors import InputError

__all__ = ["Range", "POSITIVE", "NON_NEGATIVE", "AT_LEAST_ONE", "SHARE", "SEED", "MAX_SEED", "Settings",
           "check_settings", "valid_range", "FlatField", "flat_fields", "field_docs", "plain_values", "build",
           "with_values",
           "check_number", "coerce", "task_options"]

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
SEED = Range(0, MAX_SEED)


@dataclasses.dataclass(frozen=True)
class FlatField:
    """A field as named outside Python: `field` of the config itself, or of its nested settings `parent`."""

    name: str
    field: dataclasses.Field
    hint: Any
    """The field's type, as annotated (a range in Annotated metadata included)."""
    parent: str | None
    """The field of the config that holds the nested settings (e.g. "generation"), or None."""
    default: Any
    """The config's default for it (a nested field's: the config's default settings'); dataclasses.MISSING when
    it must be given."""


    @property
    def type(self) -> Any:
        """The field's type without its Annotated metadata."""
        return _unannotated(self.hint)[0]


def _nested(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Settings) and dataclasses.is_dataclass(hint)


def _default(item: dataclasses.Field) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return dataclasses.MISSING


@cache
def flat_fields(config_class: type) -> dict[str, FlatField]:
    """Every field of `config_class` by its flat name, in declaration order, nested settings' fields in place of
    the field that holds them."""
    hints = _hints(config_class)
    found: list[FlatField] = []
    for item in dataclasses.fields(config_class):
        hint = _unannotated(hints[item.name])[0]
        if not _nested(hint):
            found.append(FlatField(item.name, item, hints[item.name], None, _default(item)))
            continue
        nested_default, nested_hints = _default(item), _hints(hint)
        for inner in dataclasses.fields(hint):
            default = (getattr(nested_default, inner.name) if nested_default is not dataclasses.MISSING
                       else _default(inner))
            found.append(FlatField(inner.name, inner, nested_hints[inner.name], item.name, default))
    flat = {entry.name: entry for entry in found}
    if len(flat) != len(found):
        raise TypeError(f"{config_class.__name__} names a field twice once its nested settings are flat")
    return flat


@cache
def field_docs(config_class: type) -> dict[str, str]:
    """Each field's documentation by flat name: the string literal under the field (an attribute docstring, as
    Sphinx and simple-parsing read them), a redeclared field's from the class that redeclares it; "" for none."""
    own: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                own[node.target.id] = inspect.cleandoc(after.value.value)
    hints = _hints(config_class)
    return {name: (field_docs(_unannotated(hints[entry.parent])[0]) if entry.parent else own).get(name, "")
            for name, entry in flat_fields(config_class).items()}


def plain_values(config: Any) -> dict[str, Any]:
    """The config as one flat mapping of field names to values (dataclasses.asdict, nested settings merged into
    the top level): what the files a run writes record."""
    values: dict[str, Any] = {}
    for name, value in dataclasses.asdict(config).items():
        inner = getattr(config, name)
        values.update(value if isinstance(inner, Settings) else {name: value})
    return values


def build(config_class: type, values: Mapping[str, Any]) -> Any:
    """`config_class` from flat field values (the rest its defaults)."""
    return _assemble(config_class, values, lambda parent: _default(
        next(f for f in dataclasses.fields(config_class) if f.name == parent)))


def with_values(config: Any, **values: Any) -> Any:
    """`config` with flat field values replaced (dataclasses.replace, reaching into nested settings)."""
    return dataclasses.replace(config, **_assemble(type(config), values, lambda parent: getattr(config, parent),
                                                   construct=False))


def _assemble(config_class: type, values: Mapping[str, Any], nested_base, construct: bool = True):
    flat = flat_fields(config_class)
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        where = flat[name].parent
        if where is None:
            top[name] = value
        else:
            nested.setdefault(where, {})[name] = value
    for parent, given in nested.items():
        top[parent] = dataclasses.replace(nested_base(parent), **given)
    return config_class(**top) if construct else top


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


class Settings:
    """The base of every config dataclass: building one checks each field against its annotation (check_settings).
    A config with rules across fields adds them in its own __post_init__, after calling this one."""

    label: ClassVar[str] = ""
    """How errors name the config ("eval setting 'limit' must be >= 1, got 0"); its class name when empty."""

    def __post_init__(self) -> None:
        check_settings(self)


@cache
def _hints(config_class: type) -> dict[str, Any]:
    return typing.get_type_hints(config_class, include_extras=True)


def _unannotated(hint: Any) -> tuple[Any, Range | None]:
    """(the type, the Range its Annotated metadata declares, if any)."""
    if typing.get_origin(hint) is typing.Annotated:
        allowed = next((m for m in hint.__metadata__ if isinstance(m, Range)), None)
        return hint.__origin__, allowed
    return hint, None


def valid_range(config_class: type, name: str) -> Range | None:
    """The range declared beside field `name` of `config_class` (None: any finite number)."""
    return _unannotated(_hints(config_class)[name])[1]


def check_settings(config: Any) -> None:
    """Check every field of dataclass `config` against its annotation: a number's type, finiteness and declared
    range; a Literal's choices. Raises InputError naming the first bad field (and the config, by its label)."""
    who = getattr(config, "label", "") or type(config).__name__
    hints = _hints(type(config))
    for item in dataclasses.fields(config):
        hint, allowed = _unannotated(hints[item.name])
        value = getattr(config, item.name)
        kind, optional = _numeric_kind(hint)
        if _nested(hint) and not isinstance(value, hint):
            raise InputError(f"{who} setting '{item.name}' must be a {hint.__name__}, got {value!r}")
        if kind is not None:
            check_number(item.name, value, kind, allowed, optional=optional, who=who)
        elif typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
            raise InputError(f"{who} setting '{item.name}' must be one of "
                             f"{', '.join(map(str, typing.get_args(hint)))}, got {value!r}")


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
        if origin is tuple:  # a YAML list, or one string from the command line
            return (value,) if isinstance(value, str) else tuple(value)
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
