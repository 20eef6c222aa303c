"""Committed results read the same on any machine: no absolute path of the machines that made them remains under
results/, in README.md or docs/ (gzipped files included), and every result directory says what made it (its own
README.md or command.txt, or a README above it that names it)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
MACHINE_PATH = re.compile(rb"/(work|tmp|home|root)/")  # as `grep -rE '/(work|tmp|home|root)/'` matches
DOCS = ("README.md", "command.txt")


def _files(*roots: Path):
    for root in roots:
        yield from ([root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()))


def test_no_machine_path_in_results_readme_or_docs():
    found = []
    for path in _files(RESULTS, ROOT / "README.md", ROOT / "docs"):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        found += [f"{path.relative_to(ROOT)}: {m.group(0).decode()}" for m in MACHINE_PATH.finditer(data)]
    assert found == []


def _documented(directory: Path) -> bool:
    """Its own README.md or command.txt, or a README.md above it naming it or a directory it lies in."""
    if any((directory / name).is_file() for name in DOCS):
        return True
    for named in [directory, *(p for p in directory.parents if p.is_relative_to(RESULTS) and p != RESULTS)]:
        for above in (p for p in named.parents if p.is_relative_to(RESULTS)):
            readme = above / "README.md"
            if readme.is_file() and str(named.relative_to(above)) in readme.read_text(encoding="utf-8"):
                return True
    return False


def test_every_result_directory_says_what_made_it():
    directories = sorted({p.parent for p in _files(RESULTS) if p.name not in DOCS} - {RESULTS})
    assert len(directories) > 30
    assert [str(d.relative_to(RESULTS)) for d in directories if not _documented(d)] == []
    index = (RESULTS / "README.md").read_text(encoding="utf-8")
    loose = [p.name for p in RESULTS.iterdir() if p.is_file() and p.name not in DOCS + ("portable_paths.py",)]
    assert [name for name in loose if f"`{name}`" not in index] == []
