"""The hostile-input suite's tools: the CLI run in-process (as the console script runs it, through cli.main),
and a hash of every file under a directory, to show a refused command wrote and changed nothing."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


_BAR_COUNTS = re.compile(r"\s\d+/\d+ \d+:\d\d:\d\d")
"""A rich progress row's "done/total elapsed" columns."""


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """stderr without the progress bars a command drew before it failed (their lines hold the bar, or, for a
        bar still empty, its count and elapsed time)."""
        return [line for line in self.stderr.splitlines()
                if line.strip() and "━" not in line and not _BAR_COUNTS.search(line)]


@pytest.fixture
def cli(capsys, monkeypatch):
    """run(*args) -> Result: `score-bench ARGS` through cli.main, the console-script entry."""
    from score_bench import cli as cli_module

    def run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["score-bench", *map(str, args)])
        capsys.readouterr()
        try:
            cli_module.main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def refused(done: Result, *parts) -> str:
    """The one error line of a command that must have been refused (exit 2, one line, no traceback), checked to
    hold every one of `parts` (what it must name)."""
    assert done.code == 2, done.stderr + done.stdout
    assert len(done.error_lines) == 1, done.stderr
    line = done.error_lines[0]
    assert line.startswith("error:") and "Traceback" not in line and "internal error" not in line, line
    for part in parts:
        assert str(part) in line, line
    return line


@pytest.fixture
def expect_refused():
    """expect_refused(result, *parts) -> the error line: exit 2, one line holding every part."""
    return refused


@pytest.fixture
def train_args():
    """train_args(model, output, *sets, extra=()) -> the argv of `score-bench train` of the score trainer's smoke
    preset on arith in one torch thread, with a `--set` per item of `sets` and `extra` options."""

    def build(model, output, *sets, extra=()) -> list:
        args = ["train", "--task", "arith", "--trainer", "score", "--model", model, "--preset", "smoke",
                "--threads", "1", "--output", output, *extra]
        for item in sets:
            args += ["--set", item]
        return args

    return build


def _snapshot(root: Path) -> dict[str, str]:
    """{relative path: sha256 of the bytes (size and mtime above _HASHED_BYTES), "dir", the target of a symlink or
    the kind of a special file} for everything under `root` (hidden files included). Symlinks, FIFOs and devices
    are never opened: reading one a test planted (/dev/zero, a FIFO) would never end."""
    root = Path(root)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): _entry(p) for p in sorted(root.rglob("*"))}


_HASHED_BYTES = 64 << 20
"""Files up to this size are hashed; a larger one (a sparse file planted to be too large to read) is known by its
size and modification time: hashing it would read gigabytes of zeros."""


def _entry(path: Path) -> str:
    if path.is_symlink():
        return f"symlink to {os.readlink(path)}"
    mode = path.lstat().st_mode
    if stat.S_ISDIR(mode):
        return "dir"
    if not stat.S_ISREG(mode):
        return f"special file {stat.S_IFMT(mode):o}"
    info = path.stat()
    if info.st_size > _HASHED_BYTES:
        return f"{info.st_size} bytes, modified at {info.st_mtime_ns} ns"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def snapshot():
    """snapshot(root) -> {relative path: sha256 or "dir"} of everything under root."""
    return _snapshot


@pytest.fixture(scope="session")
def model_variants(tiny_model, tmp_path_factory):
    """Broken copies of the tiny model, by name: what a user might point --model at."""
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("broken-models")

    def copy(name: str) -> Path:
        target = root / name
        shutil.copytree(tiny_model, target)
        return target

    variants = {"empty": root / "empty"}
    variants["empty"].mkdir()
    nan = copy("all-nan")
    weights = load_file(nan / "model.safetensors")
    save_file({k: v.float().fill_(float("nan")) for k, v in weights.items()}, nan / "model.safetensors",
              metadata={"format": "pt"})
    variants["all-nan"] = nan
    truncated = copy("truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[:len(data) // 2])
    variants["truncated"] = truncated
    bad_config = copy("config-not-json")
    (bad_config / "config.json").write_text("{not json", encoding="utf-8")
    variants["config-not-json"] = bad_config
    no_tokenizer = copy("no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        (no_tokenizer / name).unlink(missing_ok=True)
    variants["no-tokenizer"] = no_tokenizer
    return variants
