"""How long-running library code reports progress without printing: the CLI plugs rich in behind this."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None) -> object:
        """Begin a phase; returns a handle passed back to advance/finish."""
        ...

    def advance(self, handle: object, amount: int = 1, status: str = "") -> None: ...

    def finish(self, handle: object) -> None: ...

    def note(self, message: str) -> None:
        """One line the user should read (e.g. a setting the run chose), between the phases."""
        ...


class SilentProgress:
    """The default for library callers (notebooks, tests): report nothing."""

    def start(self, description: str, total: int | None) -> object:
        return None

    def advance(self, handle: object, amount: int = 1, status: str = "") -> None:
        pass

    def finish(self, handle: object) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@contextmanager
def phase(progress: Progress | None, description: str, total: int | None) -> Iterator["_Phase"]:
    """`with phase(p, "grading", n) as step: ... step(1)` — reports to `p`, or to nobody when p is None."""
    progress = progress or SilentProgress()
    handle = progress.start(description, total)
    try:
        yield _Phase(progress, handle)
    finally:
        progress.finish(handle)


def note(progress: Progress | None, message: str) -> None:
    """Tell `progress` one line, or nobody when it is None."""
    (progress or SilentProgress()).note(message)


class _Phase:
    def __init__(self, progress: Progress, handle: object):
        self._progress, self._handle = progress, handle

    def __call__(self, amount: int = 1, status: str = "") -> None:
        self._progress.advance(self._handle, amount, status)
