"""DIR/samples.jsonl of a sampling run (`eval`, `scale`): one row per (problem, sample) conversation, appended
one fsynced write per chunk the moment it is graded, and read back after a kill to resume where it stopped."""

from __future__ import annotations

import json
import os
from pathlib import Path

from score_bench.harness.edit_distance import edit_ratio
from score_bench.harness.errors import InputError
from score_bench.harness.result_schema import SCHEMA_VERSION
from score_bench.harness.rollout import Trace

__all__ = ["SAMPLES_FILE", "sample_row", "append_rows", "recover_rows"]

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


def append_rows(path: Path, rows: list[dict]) -> None:
    """One write and an fsync per chunk: after a crash, a chunk's rows are all there, or a prefix of them."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_rows(path: Path) -> dict[tuple[str, int], dict]:
    """Rows already written, keyed by (id, sample). A half-written last line (the run died mid-write) is cut off
    the file; any other unreadable line is an error, never silently skipped."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(end)
            os.fsync(handle.fileno())
    rows: dict[tuple[str, int], dict] = {}
    for number, line in enumerate(data[:end].splitlines(), start=1):
        try:
            row = json.loads(line)
            key = (row["id"], row["sample"])
            hash(key)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise InputError(f"{path} line {number} is not a sample row; the file is damaged") from None
        if key in rows:
            raise InputError(f"{path} line {number} repeats problem '{key[0]}' sample {key[1]}")
        rows[key] = row
    return rows
