"""Reading user-supplied JSONL: every bad line is an InputError naming the file and line number."""

from __future__ import annotations

import json
from pathlib import Path

from score_bench.harness.errors import InputError


def read_jsonl_objects(path: Path, what: str) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line of `path`; `what` names the file in errors
    ("samples file", "MATH data file"). A missing or empty file, bad JSON or a non-object line fails."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    rows = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise InputError(f"{path}:{number}: not valid JSON ({err.msg})") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{number}: expected a JSON object")
                rows.append((number, row))
    except UnicodeDecodeError as err:
        raise InputError(f"{what} {path} is not UTF-8 ({err.reason})") from None
    if not rows:
        raise InputError(f"{what} is empty: {path}")
    return rows
