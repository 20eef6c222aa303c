"""score-bench: evaluate and train LLM self-correction (SCoRe, Kumar et al. 2024) on verifiable tasks.

The public Python API, the same calls the command line makes (each imported on first use, so `import
score_bench` stays fast: the modules behind it load torch and transformers):

    from score_bench import EvalConfig, GenerationSettings, run_eval, grade_file, compare_runs, train, load_task

- run_eval(EvalConfig(model=..., task=..., output=..., generation=GenerationSettings(max_new_tokens=...))):
  two-attempt evaluation; results.json and samples.jsonl.
- run_scale(ScaleConfig(...)): parallel vs sequential votes at equal sample budgets; scale.json.
- grade_file(load_task(name), samples_path, output_dir): grade responses produced elsewhere.
- train(trainer, preset=..., task=..., model=..., output=...): train SCoRe or a baseline; a checkpoint.
- compare_runs([run_dir, ...]): runs side by side with paired tests.
- write_report([run_dir, ...], output_html): the samples viewer.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "EvalConfig": "score_bench.harness.evaluation.configs",
    "GenerationSettings": "score_bench.harness.contracts.generation",
    "run_eval": "score_bench.harness.evaluation.eval_run",
    "ScaleConfig": "score_bench.harness.evaluation.configs",
    "run_scale": "score_bench.harness.evaluation.scale",
    "grade_file": "score_bench.harness.evaluation.grade_file",
    "train": "score_bench.harness.training.train",
    "compare_runs": "score_bench.harness.reports.compare",
    "write_report": "score_bench.harness.reports.viewer",
    "load_task": "score_bench.harness.contracts.registry",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'score_bench' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
