"""Every reference solution passes every test of its problem run on its own: the per-test outcomes code votes
group by (harness.grading.verifiers.per_test_outcomes) split the tests without breaking them.

    SCORE_BENCH_DATA_DIR=../shared/data nice -n 10 python bench/check_split_tests.py [--tasks humaneval,mbpp]
        [--workers 1]

For each task (HumanEval's 164 problems, MBPP's test split): runs each reference's per-test outcomes in the
sandbox, one batch, and prints the problems, the tests run, how many problems have more than one test, any
reference that does not pass all of its tests (there should be none), and the wall time.
"""

from __future__ import annotations

import argparse
import sys
import time

from score_bench.harness.contracts.registry import load_task
from score_bench.harness.grading.verifiers.per_test_outcomes import per_test_outcomes, split_tests


def check(name: str, workers: int) -> bool:
    task = load_task(name, workers=workers)
    problems = task.problems("test")
    reference = {"humaneval": lambda p: p.question + p.metadata["canonical_solution"]}.get(
        name, lambda p: p.metadata["canonical_solution"])
    items = [(p, reference(p)) for p in problems]
    started = time.time()
    outcomes = per_test_outcomes(task.verifier.verify_batch, items)
    failing = [(p.id, o) for (p, _), o in zip(items, outcomes) if set(o) != {"correct"}]
    split = sum(len(split_tests(p.reference)) > 1 for p in problems)
    print(f"{name}: {len(problems)} problems, {sum(map(len, outcomes))} tests run one by one, {split} problems "
          f"with more than one test; references not passing all: {len(failing)} {failing[:5]}; "
          f"{time.time() - started:.1f} s")
    return not failing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="humaneval,mbpp")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    ok = [check(name, args.workers) for name in args.tasks.split(",")]
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
