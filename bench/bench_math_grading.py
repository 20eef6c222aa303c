"""Time grading the 500 MATH500 reference solutions: our SymbolicVerifier vs math-verify called serially in one
process (parse + parse + verify per item, as a user would). Side by side in one run, alternating, several rounds.

    python bench/bench_math_grading.py [--rounds 3] [--data-dir DIR]

Target: ours >= 1.5x faster. Writes results/bench_math_grading.json.

Fairness: both sides grade the same 500 pairs (the answer the math task extracts from each `solution` vs the
gold `answer`; extraction is inside the timing on both sides), parse both inside \\boxed{} with the same
math-verify extraction config, and must agree on every verdict (the agreement count is printed). Parsing the
whole solution with math-verify's own extraction instead costs the serial side about the same. The serial
side keeps math-verify's default per-call timeouts (SIGALRM, usable in its main thread). "ours" runs with
its verdict memo and per-worker reference cache off, so it skips no repeated work (MATH500 has 500 problems
but only ~300 distinct answers); "ours_default" is the shipped configuration, with both on.

Every measurement runs in a fresh Python process, in one of two modes:
- steady: the process first grades 500 *train* solutions (untimed), then the 500 test ones (timed). This is
  how grading runs inside `score-bench eval` or training: one verifier for the whole run, its pool started
  early and its parser caches warm. Both sides are warmed on the same train items. Headline ratio.
- cold: from nothing, imports and pool start-up included: a one-off `score-bench grade` of 500 answers.
The machine is shared with other jobs, so its load average is recorded; wall-clock ratios move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5
SIDES = ("serial", "ours", "ours_default")
MODES = ("steady", "cold")
WARM_ITEMS = 500


def load(data_dir: Path, mode: str):
    """(task, timed [(problem, solution)], untimed warm-up pairs). Reading files is never timed."""
    from score_bench.tasks.math import MathTask

    task = MathTask(data_dir=data_dir)
    timed = [(p, p.metadata["solution"]) for p in task.problems("test")]
    warm = [(p, p.metadata["solution"]) for p in task.problems("train")[:WARM_ITEMS]] if mode == "steady" else []
    return task, timed, warm


def serial_grader(task):
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(boxed_match_priority=0)]  # what our workers use

    def grade(solutions) -> list[bool]:
        items = [(p, task.extract(p, s)) for p, s in solutions]
        return [bool(verify(parse("\\boxed{" + p.reference + "}", config), parse("\\boxed{" + a + "}", config)))
                for p, a in items]

    return grade, lambda: None


def our_grader(task, caches: bool):
    from score_bench.harness.grading.verifiers.symbolic import SymbolicConfig, SymbolicVerifier

    verifier = SymbolicVerifier(SymbolicConfig() if caches else SymbolicConfig(memo_size=0, gold_cache_size=0))

    def grade(solutions) -> list[bool]:
        items = [(p, task.extract(p, s)) for p, s in solutions]
        return [v.correct for v in verifier.verify_batch(items)]

    return grade, verifier.close


def run_side(side: str, mode: str, data_dir: Path) -> dict:
    task, timed, warm = load(data_dir, mode)
    start = time.perf_counter()  # cold: imports and pool start-up count
    grade, close = serial_grader(task) if side == "serial" else our_grader(task, caches=side == "ours_default")
    if warm:
        grade(warm)
        start = time.perf_counter()
    verdicts = grade(timed)
    seconds = time.perf_counter() - start
    close()
    return {"seconds": seconds, "verdicts": verdicts}


def measure(side: str, mode: str, data_dir: Path) -> dict:
    """One side in a fresh interpreter, so imports and start-up are paid as a user pays them."""
    done = subprocess.run([sys.executable, __file__, "--side", side, "--mode", mode, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{side} ({mode}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")), None) if cpuinfo.exists() else None
    return {"platform": platform.platform(), "cpu_model": model, "cpu_count": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="directory holding math/math500_test.jsonl and math/math_train12k.jsonl "
                             "(default: SCORE_BENCH_DATA_DIR, else ../shared/data beside the repo)")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from score_bench.harness.runtime import settings

    data_dir = args.data_dir or settings.data_dir() or ROOT.parent / "shared" / "data"
    if args.side:
        print(json.dumps(run_side(args.side, args.mode, data_dir)))
        return

    from score_bench.harness.runtime.provenance import provenance, write_json_atomic

    load_start = os.getloadavg()
    seconds = {mode: {side: [] for side in SIDES} for mode in MODES}
    verdicts = {}
    for index in range(args.rounds):
        for mode in MODES:
            for side in SIDES if index % 2 == 0 else tuple(reversed(SIDES)):
                result = measure(side, mode, data_dir)
                seconds[mode][side].append(result["seconds"])
                verdicts[(mode, side)] = result["verdicts"]
        print(f"round {index + 1}: " + "; ".join(
            f"{mode} " + ", ".join(f"{side} {seconds[mode][side][-1]:.2f} s" for side in SIDES) for mode in MODES),
            flush=True)

    median = {mode: {side: statistics.median(seconds[mode][side]) for side in SIDES} for mode in MODES}
    speedup = {mode: {side: median[mode]["serial"] / median[mode][side] for side in SIDES[1:]} for mode in MODES}
    serial_v = verdicts[("steady", "serial")]
    agree = {f"{mode}/{side}": sum(a == b for a, b in zip(serial_v, verdicts[(mode, side)]))
             for mode in MODES for side in SIDES}
    for mode in MODES:
        print(f"{mode:6s}: serial math-verify {median[mode]['serial']:.2f} s, ours {median[mode]['ours']:.2f} s "
              f"-> {speedup[mode]['ours']:.2f}x; ours default config {median[mode]['ours_default']:.2f} s "
              f"-> {speedup[mode]['ours_default']:.2f}x   (median of {args.rounds})")
    print(f"target {TARGET}x, headline = steady, caches off: {speedup['steady']['ours']:.2f}x")
    print(f"verdicts agree with serial: {min(agree.values())}/{len(serial_v)} in every run; "
          f"correct: {sum(serial_v)}/{len(serial_v)}")

    write_json_atomic(ROOT / "results" / "bench_math_grading.json", {
        "benchmark": "grade 500 MATH500 reference solutions (task-extracted answer vs gold answer)",
        "rounds": args.rounds,
        "seconds": seconds,
        "medians": median,
        "speedup": speedup,
        "headline_speedup": speedup["steady"]["ours"],
        "target_speedup": TARGET,
        "agreement": {"agree": agree, "total": len(serial_v), "correct": sum(serial_v)},
        "modes": {"steady": f"fresh process, {WARM_ITEMS} train solutions graded first (untimed)",
                  "cold": "fresh process, imports and pool start-up timed"},
        "sides": {"serial": "math_verify parse(\\boxed{gold}) + parse(\\boxed{answer}) + verify, default timeouts",
                  "ours": "SymbolicVerifier(SymbolicConfig(memo_size=0, gold_cache_size=0))",
                  "ours_default": "SymbolicVerifier() (verdict memo and per-worker reference cache on)"},
        "machine": {**machine(), "load_average_at_start": load_start, "load_average_at_end": os.getloadavg()},
        "provenance": provenance(),
    })


if __name__ == "__main__":
    main()
