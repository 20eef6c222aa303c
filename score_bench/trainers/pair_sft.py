"""Pair-SFT, the SFT baseline of Kumar et al. 2024 ("Training Language Models to Self-Correct via Reinforcement
Learning", section 4; after Welleck et al. 2023).

Sample two-attempt traces from the base model once (shared rollout, temperature 1); pair each incorrect first
attempt y1 with a y2 drawn at random from the correct responses to the same problem among all first and second
attempts sampled (variant d_plus also pairs correct first attempts); fine-tune on y2 given (x, y1, instruction),
attempt-2 tokens only, for the whole update budget in one iteration.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from score_bench.harness.progress import Progress
from score_bench.harness.protocols import Task
from score_bench.harness.training import LOG_FILE, save_checkpoint
from score_bench.trainers._sft import SftConfig, SftRun, pair_examples, sft_presets, trace_stats

__all__ = ["PairSftConfig", "PRESETS", "PairSftTrainer"]


@dataclass(frozen=True)
class PairSftConfig(SftConfig):
    """SftConfig; Pair-SFT has one iteration, so nothing more."""

    output: str = "pair-sft-checkpoint"


PRESETS = sft_presets()


class PairSftTrainer:
    """The `pair-sft` trainer plugin (harness.training.Trainer)."""

    name = "pair-sft"
    config_class = PairSftConfig
    presets = PRESETS

    def train(self, config: PairSftConfig, progress: Progress | None = None, task: Task | None = None) -> Path:
        """Sample, pair, fine-tune; return the output directory (a loadable checkpoint). `task` overrides
        loading `config.task` by name (for notebooks and tests)."""
        run = SftRun(config, "pair-sft", task=task)
        traces = run.sample(config.sampling_batches, progress)
        # Its own stream, so the pairs drawn do not depend on how many problems the run shuffled.
        examples = pair_examples(traces, config.variant == "d_plus", config.max_new_tokens,
                                 random.Random(config.seed + 1))
        run.fit(examples, config.updates, 1, trace_stats(traces), progress)
        return save_checkpoint(Path(config.output), run.model, run.tokenizer, config,
                               {"budget": run.budget(), "log": LOG_FILE})
