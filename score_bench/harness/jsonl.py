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
                except RecursionError:
                    raise InputError(f"{path}:{number}: JSON nested too deeply to read") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{number}: expected a JSON object")
                rows.append((number, row))
    except UnicodeDecodeError as err:
        raise InputError(f"{what} {path} is not UTF-8 ({err.reason})") from None
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror or err}") from None
    if not rows:
        raise InputError(f"{what} is empty: {path}")
    return rows


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a user-supplied file; a missing, unreadable or non-UTF-8 file is an InputError
    naming `what` and the path."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{what} {path} is not UTF-8 ({err.reason})") from None
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror or err}") from None


def read_json(path: Path, what: str):
    """The JSON value in a user-supplied file, with read_text's errors and bad or too-deep JSON as InputError."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{what} {path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    except RecursionError:
        raise InputError(f"{what} {path}: JSON nested too deeply to read") from None
