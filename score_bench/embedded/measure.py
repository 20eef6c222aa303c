"""Measure a built base model exactly as `score-bench eval` would: greedy, two attempts, the task's test split,
through the shared rollout, the transformers backend and the metrics with bootstrap intervals."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Iterable

from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.contracts.progress import Progress
from score_bench.harness.evaluation.configs import EvalConfig
from score_bench.harness.evaluation.eval_run import run_eval
from score_bench.harness.evaluation.samples_log import SAMPLES_FILE
from score_bench.harness.runtime.input_files import read_jsonl_objects


def measure(model_dir: Path, task: str, task_options: dict, n_problems: int, max_new_tokens: int,
            progress: Progress | None = None, describe: Callable[[Iterable[dict]], dict] | None = None) -> dict:
    """Acc@t1, Acc@t2, Δ and the transition rates with 95% bootstrap intervals, plus what was evaluated, and
    `describe`(the samples.jsonl rows) as "samples" when given."""
    with tempfile.TemporaryDirectory(prefix="score-bench-card-") as scratch:
        config = EvalConfig(model=str(model_dir), task=task, output=Path(scratch) / "eval",
                            task_options={**task_options, "n_test": n_problems},
                            generation=GenerationSettings(max_new_tokens=max_new_tokens), batch_size=64, device="cpu",
                            dtype="float32")
        results = run_eval(config, progress)
        if describe:
            rows = read_jsonl_objects(Path(scratch) / "eval" / SAMPLES_FILE, "samples file")
            described = describe(row for _, row in rows)
    keep = ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i")
    return {
        "how": "score_bench.harness.evaluation.eval_run.run_eval: greedy, 2 attempts, the transformers backend",
        "split": "test", "problems": results["counts"]["problems"],
        "problems_sha256": results["task"]["problems_sha256"],
        "metrics": {name: results["metrics"][name] for name in keep},
        "edit_ratio": results["edit_ratio"],
        "grading_errors": results["counts"]["grading_errors"],
        **({"max_new_tokens": max_new_tokens, "task_options": task_options, "samples": described}
           if describe else {}),
    }
