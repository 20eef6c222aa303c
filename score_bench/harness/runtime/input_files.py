"""Reading user-supplied files: only regular files of bounded size are read (a device such as /dev/zero, a FIFO
or a directory would hang or exhaust memory), and every bad file or line is an InputError naming the file (and
the line)."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

from score_bench.harness.contracts.errors import InputError

__all__ = ["SETTINGS_FILE_BYTES", "physical_memory", "read_bytes", "read_text", "read_json", "read_jsonl_objects"]

SETTINGS_FILE_BYTES = 16 << 20
"""The most read of a settings file (a --config YAML, a --chat-template): real ones are a few KB, the longest chat
templates in use (with tool calling) tens of KB; a fixed cap, since a data file's bound (the machine's memory) would
let a settings file take minutes to parse before anything is said."""


def physical_memory() -> int:
    """The machine's physical memory in bytes (os.sysconf): no file larger than it can be read whole."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_bytes(path: Path, what: str, limit: int | None = None) -> bytes:
    """The bytes of a user-supplied regular file of at most `limit` bytes (default: the machine's physical memory,
    beyond which no file can be read whole); anything else (missing, unreadable, not a regular file, too large) is
    an InputError naming `what` (e.g. "--samples file") and the path. The file is opened without blocking (a FIFO
    would wait for a writer) and checked on the open descriptor."""
    path = Path(path)
    limit = physical_memory() if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        mode, size = info.st_mode, info.st_size
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a file")
            raise InputError(f"{what} {path} is {kind}, not a regular file")
        if size > limit:
            raise InputError(f"{what} {path} is {size:,} bytes, above the {limit:,} bytes read at most")
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read(size + 1)  # read(n) allocates n bytes at once: the size, not the limit
    except OSError as err:
        raise InputError(f"cannot read {what} {path}: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > size:
        raise InputError(f"{what} {path} changed while it was read (it is not a file of fixed size)")
    return data


def read_text(path: Path, what: str, encoding: str = "utf-8", limit: int | None = None) -> str:
    """The text of a user-supplied file (read_bytes' checks and `limit`; newlines translated as open() does); a
    file that is not valid `encoding` is an InputError naming `what` and the path."""
    data = read_bytes(path, what, limit)
    try:
        return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()
    except UnicodeDecodeError as err:
        raise InputError(f"{what} {path} is not UTF-8 ({err.reason})") from None


def read_jsonl_objects(path: Path, what: str) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line of `path`; `what` names the file in errors
    ("--samples file", "MATH data file"). A missing or empty file, bad JSON or a non-object line fails."""
    path = Path(path)
    rows = []
    for number, line in enumerate(read_text(path, what).split("\n"), start=1):
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
    if not rows:
        raise InputError(f"{what} is empty: {path}")
    return rows


def read_json(path: Path, what: str):
    """The JSON value in a user-supplied file, with read_text's errors and bad or too-deep JSON as InputError."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{what} {path} is not valid JSON ({err.msg}, line {err.lineno})") from None
    except RecursionError:
        raise InputError(f"{what} {path}: JSON nested too deeply to read") from None
