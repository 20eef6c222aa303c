"""Multi-turn STaR (Zelikman et al. 2022, in the ReST-EM style of Singh et al. 2023), the SFT baseline of
Kumar et al. 2024 ("Training Language Models to Self-Correct via Reinforcement Learning", section 4).

For each iteration: sample two-attempt traces from the current model with the shared rollout at temperature 1,
keep the traces where an incorrect y1 was revised to a correct y2 (D_STaR; variant d_plus also keeps
correct->correct), and fine-tune on y2 given (x, y1, instruction), attempt-2 tokens only. The budget of traces
and updates is split evenly over the iterations. Each iteration continues from the current weights and
optimiser (ReST-EM restarts from the base model; continuing spends the whole update budget on one model, as
score does). Data is not carried over between iterations. Runs on one process or several under
`accelerate launch` (DDP, or FSDP on CPU), and on either sampler (`backend`), as score (harness.training.run,
docs/distributed.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import AT_LEAST_ONE
from score_bench.harness.contracts.progress import Progress
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.training.config import Trainer
from score_bench.trainers._sft import SftConfig, SftRun, sft_presets, split_evenly, star_examples

__all__ = ["StarConfig", "PRESETS", "StarTrainer"]


@dataclass(frozen=True)
class StarConfig(SftConfig):
    """SftConfig plus the number of sample-then-train iterations."""

    output: str = "star-checkpoint"
    iterations: Annotated[int, AT_LEAST_ONE] = 3
    """Sample-then-fine-tune rounds (ReST-EM used about 3); sampling_batches and updates are split over them."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sampling_batches < self.iterations:
            raise InputError(f"star needs at least one sampling batch per iteration: sampling_batches "
                             f"{self.sampling_batches} < iterations {self.iterations}")


# smoke keeps correct->correct traces too (D+): the embedded arith model almost never revises a wrong answer to a
# right one (no i->c in 32 smoke traces), so with D alone a smoke run kept nothing and its weights never moved.
PRESETS = sft_presets(smoke={"iterations": 2, "variant": "d_plus"})


class StarTrainer(Trainer):
    """The `star` trainer plugin (harness.training.config.Trainer)."""

    name = "star"
    config_class = StarConfig
    presets = PRESETS

    def train(self, config: StarConfig, progress: Progress | None = None, task: Task | None = None) -> Path:
        """Run every iteration (resuming from OUTPUT/state/ when a saved state is there); return the output
        directory (a loadable checkpoint). `task` overrides loading `config.task` by name (notebooks, tests)."""
        sft = SftRun(config, "star", task=task)
        plan = list(zip(split_evenly(config.sampling_batches, config.iterations),
                        split_evenly(config.updates, config.iterations)))
        plus = config.variant == "d_plus"
        sft.train(plan, lambda traces: star_examples(traces, plus, config.generation.max_new_tokens), progress)
        return sft.run.finish({"budget": sft.budget()})
