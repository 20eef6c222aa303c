"""`score-bench view`: one self-contained HTML page for reading the samples of one or more runs.

The page holds everything inline (the data as JSON, the script and the style from harness/reports/viewer_assets/), so
it opens from disk with no server and no network. It shows each run's metrics with intervals, the attempt-1 →
attempt-2 transition counts as a 2×2 matrix whose cells filter the samples, and per sample the prompt,
attempt 1 and attempt 2 side by side with a word diff (computed here with difflib), the extracted answers,
verdicts and grading detail. Several runs are shown side by side on the (problem, sample) units they share.
The list is paged, so a page draws a fixed number of samples however many the runs hold.
"""

from __future__ import annotations

import difflib
import gzip
import json
import re
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.runtime.input_files import read_bytes, read_json
from score_bench.harness.runtime.provenance import provenance

__all__ = ["load_run", "report_html", "write_report", "check_report_output", "word_diff"]

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
REPORT_MARK = b'<meta name="generator" content="score-bench view">'
"""In the head of every page (viewer_assets/report.html): how `view` knows a file is its own earlier report."""
_MARK_WITHIN = 1024
"""Bytes of an existing file searched for the mark: the page's head, where the template puts it."""
DETAIL_CAP = 2000
"""Characters of grading detail kept per attempt: enough to read a failing assertion."""


def word_diff(a: str, b: str) -> list[list[str]]:
    """[op, text] segments turning a into b: "=" kept, "-" only in a, "+" only in b."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    segments: list[list[str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if op == "equal":
            segments.append(["=", "".join(ta[i1:i2])])
            continue
        if i2 > i1:
            segments.append(["-", "".join(ta[i1:i2])])
        if j2 > j1:
            segments.append(["+", "".join(tb[j1:j2])])
    return segments


def _samples_file(run: Path) -> Path:
    for name in ("samples.jsonl", "samples.jsonl.gz"):
        if (run / name).is_file():
            return run / name
    raise InputError(f"run directory {run} holds no samples.jsonl (is it an eval or scale run?)")


def _read_rows(path: Path) -> list[dict]:
    data = read_bytes(path, "samples file")
    rows = []
    try:
        text = (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("attempts"), list):
                raise InputError(f"{path} line {number} is not a sample row (id, sample, attempts)")
            rows.append(row)
    except (OSError, ValueError, EOFError, RecursionError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    return rows


def _prompt(messages: Sequence[dict]) -> str:
    """The conversation up to the first assistant turn, one "role: content" block per message."""
    shown = []
    for message in messages:
        if message.get("role") == "assistant":
            break
        shown.append(f"[{message.get('role')}] {message.get('content')}")
    return "\n\n".join(shown)


def load_run(run: Path) -> dict:
    """A run as the page's data: name, metrics, prompts by problem id, and compact sample rows."""
    run = Path(run)
    if not run.is_dir():
        raise InputError(f"run directory not found: {run}")
    rows = _read_rows(_samples_file(run))
    summary: dict = {}
    for name in ("results.json", "scale.json"):
        if (run / name).is_file():
            summary = read_json(run / name, "run file")
            if not isinstance(summary, dict):
                raise InputError(f"{run / name} is not a JSON object of results")
            break
    prompts: dict[str, str] = {}
    samples = []
    for row in rows:
        prompts.setdefault(str(row["id"]), _prompt(row.get("messages", [])))
        attempts = [{"text": a.get("text", ""), "extracted": a.get("extracted"), "correct": bool(a.get("correct")),
                     "status": a.get("status", "correct" if a.get("correct") else "incorrect"),
                     "detail": (a.get("detail") or "")[:DETAIL_CAP]} for a in row["attempts"]]
        entry = {"id": str(row["id"]), "sample": int(row.get("sample", 0)), "attempts": attempts}
        if len(attempts) >= 2:
            entry["diff"] = word_diff(attempts[0]["text"], attempts[1]["text"])
        samples.append(entry)
    metrics = summary.get("metrics") or summary.get("single_sample") or {}
    return {"name": run.name, "path": str(run), "metrics": metrics, "model": (summary.get("model") or {}).get("id"),
            "task": (summary.get("task") or {}).get("name"), "prompts": prompts, "samples": samples}


def check_report_output(output: Path, force: bool = False) -> None:
    """Refuse an `output` that is a directory or another kind of non-file, or a file that is not an earlier
    report (unless `force`): `view` never silently replaces a file it did not write."""
    if output.is_dir():
        raise InputError(f"--output {output} is a directory; give a file name such as report.html")
    if not output.exists():
        return
    if not output.is_file():
        raise InputError(f"--output {output} exists and is not a regular file; give another file name")
    with output.open("rb") as handle:
        head = handle.read(_MARK_WITHIN)
    if REPORT_MARK not in head and not force:
        raise InputError(f"--output {output} exists and is not a score-bench report; pass --force to replace it, "
                         "or give another file name")


def report_html(runs: Iterable[Path]) -> str:
    data = {"runs": [load_run(Path(run)) for run in runs], "generated_by": provenance().get("git", {})}
    if not data["runs"]:
        raise InputError("give at least one run directory")
    names = [run["name"] for run in data["runs"]]
    if len(set(names)) != len(names):
        data["runs"] = [{**run, "name": f"{run['name']} ({i + 1})"} for i, run in enumerate(data["runs"])]
    assets = resources.files("score_bench.harness.reports") / "viewer_assets"
    template = (assets / "report.html").read_text(encoding="utf-8")
    # "<" escaped inside the JSON so no sample text can close the script element.
    payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return (template.replace("/*STYLE*/", (assets / "viewer.css").read_text(encoding="utf-8"))
            .replace("/*SCRIPT*/", (assets / "viewer.js").read_text(encoding="utf-8"))
            .replace("/*DATA*/", payload))


def write_report(runs: Sequence[Path], output: Path, force: bool = False) -> Path:
    """Write the page atomically to `output` (all inputs are read before anything is written). An existing
    `output` is replaced only when it is an earlier report (it carries the page's generator mark) or `force`."""
    output = Path(output)
    check_report_output(output, force)
    html = report_html(runs)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(output)
    return output
