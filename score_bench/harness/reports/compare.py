"""Side-by-side comparison of runs on the same problems, with paired tests (never two means eyeballed).

A run is a directory (or its results.json) written by `eval` (samples.jsonl beside it) or `grade`
(grades.jsonl beside it); the per-problem correctness in those files is what makes the tests paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.evaluation.metrics import mcnemar, paired_bootstrap
from score_bench.harness.runtime.input_files import read_json, read_jsonl_objects

TABLE_METRICS = ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "acc_t1_flexible", "acc_t2_flexible",
                 "delta_flexible", "extraction_rate_t1", "extraction_rate_t2")
HEADERS = {"acc_t1": "Acc@t1 [95% CI]", "acc_t2": "Acc@t2 [95% CI]", "delta": "Δ(t1,t2) [95% CI]",
           "delta_i2c": "Δ i→c", "delta_c2i": "Δ c→i", "acc_t1_flexible": "flexible Acc@t1",
           "acc_t2_flexible": "flexible Acc@t2", "delta_flexible": "flexible Δ",
           "extraction_rate_t1": "extracted@t1", "extraction_rate_t2": "extracted@t2"}
"""Strict accuracy is the headline; flexible accuracy and the share of attempts with an extracted answer sit
beside it, so an unparsed answer is not read as a wrong one. Runs written before flexible grading show n/a."""
TESTED = {"acc_final": "final accuracy", "delta": "Δ(t1,t2)", "acc_final_flexible": "flexible final accuracy",
          "delta_flexible": "flexible Δ(t1,t2)"}
TESTS = {"mcnemar": "McNemar", "paired_bootstrap": "paired bootstrap"}
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Run:
    name: str
    path: Path
    task: str
    metrics: dict
    ids: tuple[str, ...]
    correct: np.ndarray
    """[problem, sample, attempt], problems in the order of `ids`."""
    flexible: np.ndarray | None = None
    """The same under flexible extraction; None for runs graded before it existed."""


def _per_problem_rows(directory: Path) -> list[tuple[str, list[bool], list[bool] | None]]:
    """(id, strict correctness per attempt, flexible correctness per attempt or None) per row."""
    samples, grades = directory / "samples.jsonl", directory / "grades.jsonl"
    def flexible_of(attempts: list) -> list | None:
        return [a["correct_flexible"] for a in attempts] if all("correct_flexible" in a for a in attempts) else None

    for path, correct_of, flexible_of_row in (
            (samples, lambda row: [attempt["correct"] for attempt in row["attempts"]],
             lambda row: flexible_of(row["attempts"])),
            (grades, lambda row: row["correct"], lambda row: row.get("correct_flexible"))):
        if not path.is_file():
            continue
        rows = []
        for number, row in read_jsonl_objects(path, "run file"):
            try:
                correct = correct_of(row)
                flexible = flexible_of_row(row)
                problem_id = row["id"]
                if not isinstance(problem_id, str) or not all(isinstance(c, bool) for c in correct) or not correct:
                    raise TypeError
                if flexible is not None and (len(flexible) != len(correct)
                                             or not all(isinstance(c, bool) for c in flexible)):
                    raise TypeError
            except (KeyError, TypeError, IndexError):
                raise InputError(f"{path}:{number}: not a row of an eval or grade run (needs an id and "
                                 "per-attempt correctness)") from None
            rows.append((problem_id, list(correct), None if flexible is None else list(flexible)))
        return rows
    raise InputError(f"{directory}: no samples.jsonl or grades.jsonl beside results.json; paired tests need them")


def load_run(path: Path, name: str | None = None) -> Run:
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    results_file = directory / "results.json"
    if not results_file.is_file():
        raise InputError(f"{path}: not a run directory or results.json (no {results_file})")
    results = read_json(results_file, "results file")
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
        raise InputError(f"{results_file}: not a results file of score-bench (no \"metrics\" object)")
    rows = _per_problem_rows(directory)
    grouped: dict[str, list[list[bool]]] = {}
    grouped_flexible: dict[str, list[list[bool]]] = {}
    for problem_id, correct, flexible in rows:
        grouped.setdefault(problem_id, []).append(correct)
        grouped_flexible.setdefault(problem_id, []).append(flexible)
    ids = tuple(sorted(grouped))
    samples = {len(grouped[i]) for i in ids}
    if len(samples) > 1:
        raise InputError(f"{directory}: problems have unequal numbers of samples ({min(samples)} to "
                         f"{max(samples)}); paired tests need the same number for every problem")
    if len({len(c) for i in ids for c in grouped[i]}) > 1:
        raise InputError(f"{directory}: rows have unequal numbers of attempts")
    correct = np.array([grouped[i] for i in ids], dtype=bool)
    flexible = (np.array([grouped_flexible[i] for i in ids], dtype=bool)
                if all(f is not None for _, _, f in rows) else None)
    task = results.get("task", {})
    task_name = task.get("name", "?") if isinstance(task, dict) else str(task)
    return Run(name or directory.name, directory, task_name, results["metrics"], ids, correct, flexible)


def _paired(a: Run, b: Run) -> dict:
    """Tests of b against a on the final attempt's accuracy (McNemar with one sample per problem, else paired
    bootstrap) and on Δ; strict, and flexible too when both runs carry it."""
    tests = _paired_arrays(a.correct, b.correct, "")
    if a.flexible is not None and b.flexible is not None:
        tests.update(_paired_arrays(a.flexible, b.flexible, "_flexible"))
    for test in tests.values():
        significant = test["p_value"] < SIGNIFICANCE and test["difference"] != 0
        test["better"] = (b.name if test["difference"] > 0 else a.name) if significant else None
    return tests


def _paired_arrays(a: np.ndarray, b: np.ndarray, suffix: str) -> dict:
    tests = {}
    last = min(a.shape[2], b.shape[2]) - 1
    if a.shape[1] == 1 and b.shape[1] == 1:
        result = mcnemar(a[:, 0, last], b[:, 0, last])
        diff = float(b[:, 0, last].mean() - a[:, 0, last].mean())
        tests["acc_final" + suffix] = {"test": "mcnemar", "difference": diff, **result}
    else:
        tests["acc_final" + suffix] = {"test": "paired_bootstrap",
                                       **paired_bootstrap(a[:, :, :last + 1], b[:, :, :last + 1], f"acc_t{last + 1}")}
    if last >= 1:
        tests["delta" + suffix] = {"test": "paired_bootstrap", **paired_bootstrap(a, b, "delta")}
    return tests


def compare_runs(paths: list[Path], names: list[str] | None = None) -> dict:
    """{"runs": [{"name", "path", "task", "metrics"}], "pairs": [{"a", "b", "tests": {...}}]}; refuses runs
    on different tasks or problems."""
    if len(paths) < 1:
        raise InputError("compare needs at least one run")
    runs = [load_run(p, n) for p, n in zip(paths, names or [None] * len(paths))]
    if len({run.name for run in runs}) < len(runs):  # same directory name in different places
        runs = [load_run(run.path, str(run.path)) for run in runs]
    first = runs[0]
    for run in runs[1:]:
        if run.task != first.task:
            raise InputError(f"runs are on different tasks: {first.name} on '{first.task}', {run.name} on '{run.task}'")
        if run.ids != first.ids:
            only = sorted(set(run.ids) ^ set(first.ids))
            raise InputError(f"runs {first.name} and {run.name} are on different problems "
                             f"({len(only)} ids differ, e.g. {only[0]!r})")
    return {
        "runs": [{"name": r.name, "path": str(r.path), "task": r.task, "metrics": r.metrics} for r in runs],
        "pairs": [{"a": a.name, "b": b.name, "tests": _paired(a, b)} for a, b in combinations(runs, 2)],
    }


def _cell(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    ci = entry.get("ci95")
    return f"{entry['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{entry['value']:.3f}"


def as_rows(comparison: dict) -> tuple[list[str], list[list[str]]]:
    header = ["run", *(HEADERS[m] for m in TABLE_METRICS)]
    return header, [[run["name"], *(_cell(run["metrics"].get(m)) for m in TABLE_METRICS)]
                    for run in comparison["runs"]]


def pair_rows(comparison: dict) -> tuple[list[str], list[list[str]]]:
    header = ["a", "b", "test on", "b − a", "p", "better"]
    rows = []
    for pair in comparison["pairs"]:
        for metric, test in pair["tests"].items():
            rows.append([pair["a"], pair["b"], f"{TESTED.get(metric, metric)} ({TESTS.get(test['test'], test['test'])})", f"{test['difference']:+.3f}",
                         f"{test['p_value']:.3g}", test["better"] or "—"])
    return header, rows


def to_markdown(comparison: dict) -> str:
    lines = []
    for header, rows in (as_rows(comparison), pair_rows(comparison)):
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)
