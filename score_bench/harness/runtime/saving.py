"""Saving what a training run keeps (its state, checkpoints and log) when the disk fills: one line naming the path
and saying what is kept, instead of whatever the writer raised (torch's zip writer and safetensors report a full
disk as a RuntimeError or their own error, with the OSError only in the chain or the text)."""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from score_bench.harness.contracts.errors import ScoreBenchError

__all__ = ["saving", "disk_full", "append_whole"]

_FULL = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "os error 28", "os error 122")
"""How a full disk reads in the text of an error that carries no errno (safetensors' Rust writer)."""


@contextmanager
def saving(path: Path, what: str, kept: str) -> Iterator[None]:
    """Run a save of `what` to `path`; a full disk becomes a ScoreBenchError naming both and saying `kept` (what
    is still there, e.g. "the state saved before is kept"). Other errors pass unchanged."""
    try:
        yield
    except Exception as err:
        if disk_full(err):
            raise ScoreBenchError(f"no space left on device while saving {what} to {path}; {kept}") from err
        raise


def disk_full(err: BaseException | None) -> bool:
    """Whether `err`, or an error in its chain of causes and contexts, says the disk (or the quota) is full."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _FULL:
            return True
        if any(text in str(err) for text in _FULL_TEXTS):
            return True
        err = err.__cause__ or err.__context__
    return False


def append_whole(path: Path, data: bytes) -> None:
    """Append `data` to `path` with one write and an fsync, whole or not at all: a write that fails (a full disk)
    is cut off again, so the file ends where it ended before. A kill mid-write can still leave a prefix, which
    readers of append-only logs cut off (samples_log.recover_rows)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
