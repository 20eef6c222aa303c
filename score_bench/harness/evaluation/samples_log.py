"""DIR/samples.jsonl of a sampling run (`eval`, `scale`): one row per (problem, sample) conversation, appended
one fsynced write per chunk the moment it is graded, and read back after a kill to resume where it stopped."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.evaluation.edit_distance import edit_ratio
from score_bench.harness.evaluation.result_schema import SCHEMA_VERSION
from score_bench.harness.generation.rollout import Trace
from score_bench.harness.runtime.input_files import read_bytes
from score_bench.harness.runtime.saving import append_whole

__all__ = ["SAMPLES_FILE", "sample_row", "row_memory_floor", "append_rows", "recover_rows"]

SAMPLES_FILE = "samples.jsonl"


def sample_row(trace: Trace) -> dict:
    """A graded conversation as a samples.jsonl row: messages, each attempt with its strict and flexible
    extraction and verdict, and the edit ratio between consecutive attempts."""
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
    return {"schema_version": SCHEMA_VERSION, "id": trace.problem.id, "sample": trace.sample, "messages": list(trace.messages), "attempts": attempts,
            "edit_ratio": [round(edit_ratio(a, b), 6) for a, b in zip(texts, texts[1:])]}


def row_memory_floor(turns: int) -> int:
    """Bytes a samples row of `turns` attempts takes in memory once read back, at the least: only its dicts and
    lists (as sys.getsizeof measures them in this Python), every text empty. A run holds all its rows when it
    computes its results, so this times its conversations is a floor on the memory it needs."""
    attempt = {"text": "", "extracted": None, "correct": False, "extracted_flexible": None,
               "correct_flexible": False, "status": "incorrect", "tokens": 0, "given": False}
    row = {"id": "", "sample": 0, "messages": [], "attempts": [attempt], "edit_ratio": []}
    containers = (row, row["messages"], row["attempts"], row["edit_ratio"])
    return sum(sys.getsizeof(c) for c in containers) + turns * sys.getsizeof(attempt)


def append_rows(path: Path, rows: list[dict]) -> None:
    """One write and an fsync per chunk: after a crash, a chunk's rows are all there, or a prefix of them."""
    append_whole(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8"))


_ROW_FIELDS = {"id": str, "sample": int, "messages": list, "attempts": list, "edit_ratio": list}
_ATTEMPT_FIELDS = {"text": str, "extracted": (str, type(None)), "correct": bool, "status": str, "tokens": int}
_LATER_ATTEMPT_FIELDS = {"extracted_flexible": (str, type(None)), "correct_flexible": bool, "given": bool,
                         "detail": str}
"""Attempt fields that rows written by earlier versions may lack (readers fall back to the strict fields)."""


def recover_rows(path: Path, attempts: Callable[[int], int] | None = None) -> dict[tuple[str, int], dict]:
    """Rows already written, keyed by (id, sample). A half-written last line (the run died mid-write) is cut off
    the file; any other unreadable line, or a row whose fields are not of sample_row's types (or, with
    `attempts`, whose sample k does not hold attempts(k) attempts), is an error naming the file and line, never
    silently skipped."""
    if not path.exists():
        return {}
    data = read_bytes(path, "samples file")
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
            os.fsync(handle.fileno())
    rows: dict[tuple[str, int], dict] = {}
    for number, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise InputError(f"{path} line {number} is not JSON; the file is damaged: use a new --output") from None
        wrong = _wrong_field(row) or _wrong_count(row, attempts)
        if wrong:
            raise InputError(f"{path} line {number} is not a sample row ({wrong}); the file is damaged: use a new "
                             "--output")
        key = (row["id"], row["sample"])
        if key in rows:
            raise InputError(f"{path} line {number} repeats problem '{key[0]}' sample {key[1]}")
        rows[key] = row
    return rows


def _wrong_field(row) -> str | None:
    """What in `row` is not of sample_row's types (the first such field), or None."""
    if not isinstance(row, dict):
        return f"{_shown(row)} is not an object"
    wrong = next(filter(None, (_wrong_type(row, name, kind, f"'{name}'") for name, kind in _ROW_FIELDS.items())),
                 None)
    if wrong or not row["attempts"]:
        return wrong or "'attempts' is empty"
    for number, attempt in enumerate(row["attempts"], start=1):
        if not isinstance(attempt, dict):
            return f"attempt {number} is {_shown(attempt)}, not an object"
        fields = [(name, kind, False) for name, kind in _ATTEMPT_FIELDS.items()]
        fields += [(name, kind, True) for name, kind in _LATER_ATTEMPT_FIELDS.items()]
        for name, kind, optional in fields:
            wrong = _wrong_type(attempt, name, kind, f"attempt {number} '{name}'", optional)
            if wrong:
                return wrong
    ratios = row["edit_ratio"]
    if len(ratios) != len(row["attempts"]) - 1 or any(isinstance(r, bool) or not isinstance(r, (int, float))
                                                      for r in ratios):
        return f"'edit_ratio' is not a list of {len(row['attempts']) - 1} number(s)"
    return None


_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", type(None): "null"}


def _wrong_type(holder: dict, name: str, kind, label: str, optional: bool = False) -> str | None:
    """Why holder[name] is not a `kind` (a bool is no integer: JSON's true is not a count), or None."""
    if name not in holder:
        return None if optional else f"{label} is missing"
    value, kinds = holder[name], kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
        return None
    return f"{label} is {_shown(value)}, not {' or '.join(_NAMES[k] for k in kinds)}"


def _shown(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong_count(row: dict, attempts: Callable[[int], int] | None) -> str | None:
    if attempts is None or len(row["attempts"]) == attempts(row["sample"]):
        return None
    return f"{len(row['attempts'])} attempt(s) where this run has {attempts(row['sample'])}"
