"""Pair-SFT, the SFT baseline of Kumar et al. 2024 ("Training Language Models to Self-Correct via Reinforcement
Learning", section 4; after Welleck et al. 2023).

Sample two-attempt traces from the base model once (shared rollout, temperature 1); pair each incorrect first
attempt y1 with a y2 drawn at random from the correct responses to the same problem among all first and second
attempts sampled (variant d_plus also pairs correct first attempts); fine-tune on y2 given (x, y1, instruction),
attempt-2 tokens only, for the whole update budget in one iteration. Several samples per problem by default
(SAMPLES_PER_PROBLEM), within score's trace budget. Runs on one process or several under `accelerate launch`
(DDP, or FSDP on CPU), and on either sampler (`backend`), as score (harness.training.run, docs/distributed.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from score_bench.harness.contracts.progress import Progress
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.training.config import Trainer
from score_bench.trainers._sft import SftConfig, SftRun, pair_examples, sft_presets

__all__ = ["PairSftConfig", "PRESETS", "PairSftTrainer"]

SAMPLES_PER_PROBLEM = 4
"""Pair-SFT pairs a wrong y1 with another correct sample of the same problem, so it needs several samples per
problem: with score's one, a wrong y1 can only meet its own y2, and a model that rarely corrects itself (the
embedded arith model: no i->c in 128 traces) gives no pair at all. Its defaults and presets keep score's traces
per rollout batch, split as (batch_size / 4) problems x 4 samples."""


@dataclass(frozen=True)
class PairSftConfig(SftConfig):
    """SftConfig; Pair-SFT has one iteration, so nothing more. Defaults draw several samples per problem."""

    output: str = "pair-sft-checkpoint"
    batch_size: int = SftConfig.batch_size * SftConfig.samples_per_problem // SAMPLES_PER_PROBLEM
    samples_per_problem: int = SAMPLES_PER_PROBLEM


PRESETS = sft_presets(samples_per_problem=SAMPLES_PER_PROBLEM)


class PairSftTrainer(Trainer):
    """The `pair-sft` trainer plugin (harness.training.config.Trainer)."""

    name = "pair-sft"
    config_class = PairSftConfig
    presets = PRESETS

    def train(self, config: PairSftConfig, progress: Progress | None = None, task: Task | None = None) -> Path:
        """Sample, pair, fine-tune (resuming from OUTPUT/state/ when a saved state is there); return the output
        directory (a loadable checkpoint). `task` overrides loading `config.task` by name (notebooks, tests)."""
        sft = SftRun(config, "pair-sft", task=task)
        plus = config.variant == "d_plus"
        sft.train([(config.sampling_batches, config.updates)],
                  lambda traces: pair_examples(traces, plus, config.generation.max_new_tokens, sft.pair_rng), progress)
        return sft.run.finish({"budget": sft.budget()})
