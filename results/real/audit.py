"""Audit of the verifier on SmolLM2-135M-Instruct's runs: attempt verdicts drawn at random (seeded) from the run
directories under results/real/smollm2, the same number from each run (remainder to the first runs, by name), so
that the small runs are not drowned by arith's 1,000 attempts. Given first attempts (repair runs) are not drawn:
they are dataset text, not the model's.

Verdicts are those of `regrade.py` (the current verifiers). Each row shows the response's end, the strict and flexible extractions, the reference and both verdicts, beside a
judgement made by reading the whole response, kept in audit_judgements.json ({key: {"right": bool,
"format": bool, "note": str}}): `right` = the response's final answer is correct; `format` = it is stated in the
task's required format (arith "Answer: <n>", MATH \\boxed{}, code: a definition of the function; score-toy has no
format). The strict verdict should equal right and format, the flexible verdict should equal right.

Usage: python results/real/audit.py [--draw] writes audit.md (and with --draw, audit_draw.json, the drawn keys).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from score_bench.harness import registry

HERE = Path(__file__).resolve().parent
RUNS = HERE / "smollm2"
N, SEED = 60, 0
END_CHARS = 220


def grading_of(run: Path) -> tuple[Path, dict]:
    """The directory of the verdicts audited (regrade.py's: graded-ko/ for the Korean runs, against the built-in
    Korean set, else graded/) and the task options they were graded with."""
    options = json.loads((run / "eval_config.json").read_text(encoding="utf-8"))["config"]["task_options"]
    return (run / "graded-ko", {"language": "ko"}) if (run / "graded-ko").is_dir() else (run / "graded", options)


def attempts_of(run: Path) -> dict[str, dict]:
    """key -> attempt text, its verdicts and its problem's reference, for every generated attempt graded."""
    config = json.loads((run / "eval_config.json").read_text(encoding="utf-8"))["config"]
    graded, options = grading_of(run)
    task = registry.load_task(config["task"], **options)
    references = {p.id: p.reference for p in task.problems(config["split"])}
    grades = {g["id"]: g for g in map(json.loads, (graded / "grades.jsonl").read_text(encoding="utf-8").splitlines())}
    found = {}
    for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        grade = grades.get(row["id"])
        for number, attempt in enumerate(row["attempts"], start=1):
            if grade is None or attempt["given"]:
                continue
            verdicts = {name: grade[name][number - 1] for name in
                        ("correct", "extracted", "correct_flexible", "extracted_flexible")}
            found[f"{run.name}/{row['id']}/t{number}"] = {"text": attempt["text"], **verdicts,
                                                         "reference": references[row["id"]], "task": config["task"]}
    return found


def draw(runs: list[Path]) -> list[str]:
    """Each run's share drawn with its own generator (seed and run name), so one run's draw does not depend on
    the others'."""
    shares = [N // len(runs) + (i < N % len(runs)) for i in range(len(runs))]
    keys = []
    for run, share in zip(runs, shares):
        pool = sorted(attempts_of(run))
        keys += random.Random(f"{SEED}/{run.name}").sample(pool, min(share, len(pool)))
    return keys


def cell(text, limit: int | None = None) -> str:
    if text is None:
        return "—"
    text = str(text)
    if limit is not None and len(text) > limit:
        text = "…" + text[-limit:]
    return text.replace("|", "\\|").replace("\n", "⏎").replace("`", "'")


def reference_cell(attempt: dict) -> str:
    if attempt["task"] == "humaneval":  # the reference is test code: its first assert says enough
        asserts = [line.strip() for line in attempt["reference"].splitlines() if "assert" in line]
        return cell(asserts[0] if asserts else attempt["reference"], 90)
    return cell(attempt["reference"], 90)


def verdict(value: bool) -> str:
    return "✓" if value else "✗"


def main(argv: list[str]) -> None:
    runs = sorted(p for p in RUNS.iterdir() if (p / "graded" / "grades.jsonl").is_file())
    draw_file, judgements_file = HERE / "audit_draw.json", HERE / "audit_judgements.json"
    if "--draw" in argv:
        draw_file.write_text(json.dumps(draw(runs), indent=1) + "\n", encoding="utf-8")
    keys = json.loads(draw_file.read_text(encoding="utf-8"))
    runs = [run for run in runs if any(key.startswith(run.name + "/") for key in keys)]  # runs added later: not drawn
    judgements = json.loads(judgements_file.read_text(encoding="utf-8")) if judgements_file.is_file() else {}
    attempts = {}
    for run in runs:
        attempts.update(attempts_of(run))
    lines = ["| # | attempt | response (end) | strict extracted | flexible extracted | reference | strict | flexible "
             "| judged right | judged format | agrees | note |", "|" + "---|" * 12]
    disagreements = []
    for number, key in enumerate(keys, start=1):
        attempt, judged = attempts[key], judgements.get(key)
        if judged is None:
            agrees = "not judged"
        else:
            strict_ok = attempt["correct"] == (judged["right"] and judged["format"])
            flexible_ok = attempt["correct_flexible"] == judged["right"]
            agrees = "yes" if strict_ok and flexible_ok else (
                "**no: " + ", ".join(n for n, ok in (("strict", strict_ok), ("flexible", flexible_ok)) if not ok) + "**")
            if not (strict_ok and flexible_ok):
                disagreements.append((number, key, agrees, judged.get("note", "")))
        lines.append("| " + " | ".join([
            str(number), cell(key), cell(attempt["text"], END_CHARS), cell(attempt["extracted"], 60),
            cell(attempt["extracted_flexible"], 60), reference_cell(attempt), verdict(attempt["correct"]),
            verdict(attempt["correct_flexible"]),
            "—" if judged is None else verdict(judged["right"]), "—" if judged is None else verdict(judged["format"]),
            agrees, cell(judged.get("note", "") if judged else "")]) + " |")
    judged_count = sum(key in judgements for key in keys)
    header = [f"# Verifier audit: {len(keys)} attempts of SmolLM2-135M-Instruct, drawn with seed {SEED}", "",
              f"Drawn by `python results/real/audit.py --draw` from {', '.join(r.name for r in runs)} "
              f"({len(keys) // len(runs)}-{-(-len(keys) // len(runs))} per run); judged by reading the whole response "
              f"({judged_count} of {len(keys)} judged). ✓ = correct. The response column shows its last "
              f"{END_CHARS} characters (⏎ = newline).", "",
              f"**Disagreements: {len(disagreements)}**" + ("" if not disagreements else ":"), ""]
    header += [f"- #{n} `{key}` ({what[2:-2]}): {note}" for n, key, what, note in disagreements]
    (HERE / "audit.md").write_text("\n".join(header + [""] + lines) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'audit.md'}: {len(keys)} rows, {judged_count} judged, {len(disagreements)} disagreements")


if __name__ == "__main__":
    main(sys.argv[1:])
