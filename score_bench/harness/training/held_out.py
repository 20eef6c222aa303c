"""The held-out evaluation rows of a training log: greedy two-attempt rollouts of the model being trained on a
fixed subset, the same for every trainer so their curves compare."""

from __future__ import annotations

from typing import Any

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import Backend, GenerationParams
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Status
from score_bench.harness.evaluation.metrics import summarize
from score_bench.harness.generation.rollout import RolloutConfig, rollout
from score_bench.harness.training.config import RunConfig
from score_bench.harness.training.resume import preserved_rng

__all__ = ["HeldOutEval"]


class HeldOutEval:
    """Greedy two-attempt rollouts of the model being trained on a fixed held-out subset (the first
    `eval_problems` of `eval_split`), as "eval" rows of the training log: Accuracy@t1, Accuracy@t2, Δ and its
    parts with bootstrap 95% intervals, the same for every trainer so their curves compare.

    `backend` generates with the trained model; give it a backend of its own, so evaluation never leaves KV in
    the training sampler's prefix store. Greedy decoding draws no random numbers; the RNGs are restored all the
    same, so evaluating never changes what training does."""

    def __init__(self, task: Task, config: RunConfig, backend: Backend, max_new_tokens: int):
        if config.eval_task and config.eval_every:
            from score_bench.harness.contracts.registry import load_task

            task = load_task(config.eval_task, **config.eval_task_options)
        self.task = task
        self.backend = backend
        self.every = config.eval_every
        self.split = config.eval_split
        self.params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=config.seed)
        self.seed = config.seed
        self.problems = task.problems(config.eval_split)[:config.eval_problems] if config.eval_every else []
        if config.eval_every and not self.problems:
            raise InputError(f"task '{task.name}' has no problems in eval split '{config.eval_split}'")

    def due(self, step: int) -> bool:
        """Whether the model after `step` optimiser steps is on the eval_every schedule (step 0: the base model)."""
        return self.every > 0 and step % self.every == 0

    def row(self, step: int, stage: int, **labels: Any) -> dict[str, Any]:
        """The "eval" row of the current model: kind, step, stage, `labels` (e.g. the SFT iteration), task, split,
        problems, accuracy_t1, accuracy_t2, delta, delta_i2c, delta_c2i, accuracy_t1_flexible,
        accuracy_t2_flexible (flexible extraction), ci95 (of each), grading_errors."""
        with preserved_rng():
            traces = rollout(self.task, self.problems, self.backend,
                             RolloutConfig(turns=2, samples=1, params=self.params))
            self.backend.release()  # its KV would stay in memory through the training steps that follow
            metrics = summarize([[a.correct for a in t.attempts] for t in traces],
                                flexible=[[a.flexible_correct for a in t.attempts] for t in traces], seed=self.seed)
        names = ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "acc_t1_flexible", "acc_t2_flexible")
        return {"kind": "eval", "step": step, "stage": stage, **labels, "task": self.task.name, "split": self.split,
                "problems": len(traces),
                "accuracy_t1": metrics["acc_t1"]["value"], "accuracy_t2": metrics["acc_t2"]["value"],
                "accuracy_t1_flexible": metrics["acc_t1_flexible"]["value"],
                "accuracy_t2_flexible": metrics["acc_t2_flexible"]["value"],
                "delta": metrics["delta"]["value"], "delta_i2c": metrics["delta_i2c"]["value"],
                "delta_c2i": metrics["delta_c2i"]["value"], "ci95": {n: metrics[n]["ci95"] for n in names},
                "grading_errors": sum(a.verdict.status is Status.ERROR for t in traces for a in t.attempts)}
