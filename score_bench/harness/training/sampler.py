"""The sampler of a training run's rollouts (config.backend), the same for every trainer.

- transformers (InProcessSampler): generates with the policy module itself. A step's rollout goes in chunks of
  generation_batch_size conversations and the backend's prefix KV store is emptied after each chunk, so the
  step's peak memory does not grow with the batch (issue #13). Samples are seeded per conversation, so chunking
  changes none.
- vllm (ColocatedVllmSampler): a vLLM engine in this process (score-bench[vllm], one process only) whose
  weights are loaded in place from the policy after every optimiser step; after each load it reports the largest
  difference between vLLM's and the policy's log-probabilities of a few sampled tokens (sampler_logprob_gap).
  It holds its own preallocated KV and batches best with a whole step at once.

What a sampler may need after an optimiser step is a method of TrainingSampler with a default that does nothing.
"""

from __future__ import annotations

from typing import Any, Sequence

from score_bench.harness.contracts.errors import PluginNotFound
from score_bench.harness.contracts.generation import Backend, GenerationParams
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem
from score_bench.harness.generation.rollout import RolloutConfig, Trace, iter_rollout

__all__ = ["TrainingSampler", "InProcessSampler", "ColocatedVllmSampler", "training_sampler"]


class TrainingSampler:
    """Two-attempt rollouts of the current policy on `backend`, `chunk_size` conversations at a time (None: a
    whole call at once)."""

    def __init__(self, backend: Backend, chunk_size: int | None):
        self.backend = backend
        self.chunk_size = chunk_size

    def sample(self, task: Task, problems: Sequence[Problem], samples: int, params: GenerationParams) -> list[Trace]:
        """`samples` graded traces per problem in rollout order (sample-major: trace s * n + i is sample s of
        problem i), with the sampler's memory released after each chunk."""
        size = self.chunk_size or max(len(problems) * samples, 1)
        traces: list[Trace] = []
        for chunk in iter_rollout(task, problems, self.backend,
                                  RolloutConfig(turns=2, samples=samples, params=params, chunk_size=size)):
            traces.extend(chunk)
            self.release()
        return traces

    def release(self) -> None:
        """Free what the backend keeps to continue the conversations generated so far (Backend.release). The
        step's optimiser update would empty a prefix store anyway; holding it until then would carry the KV of
        every conversation of the step through scoring and the update."""
        self.backend.release()

    def load_weights(self, model) -> None:
        """After an optimiser step: make the sampler's weights the policy's (`model`, the bare module)."""

    def logprob_gap(self, model, conversations: Sequence[list[Message]], seed: int) -> float | None:
        """After load_weights: the largest |log p| difference between the sampler and `model` on a few tokens
        it samples for `conversations`; None when the sampler is the policy itself."""
        return None


class InProcessSampler(TrainingSampler):
    """The transformers backend on the policy module: no weights of its own to load."""

    def __init__(self, model, tokenizer, *, batch_size: int, source: str):
        from score_bench.harness.generation.backends.transformers import TransformersBackend

        super().__init__(TransformersBackend(model, tokenizer, batch_size=batch_size, source=source), batch_size)


class ColocatedVllmSampler(TrainingSampler):
    """A colocated vLLM engine started on `source` and loaded with the policy's current weights."""

    def __init__(self, model, tokenizer, *, batch_size: int, source: str):
        """`tokenizer` and `batch_size` are the in-process sampler's: the engine renders with its own and
        schedules its own batches."""
        from score_bench.harness.generation.backends.vllm import VllmBackend

        super().__init__(VllmBackend.colocated(model, source=source), None)

    def load_weights(self, model) -> None:
        self.backend.sync(model)

    def logprob_gap(self, model, conversations: Sequence[list[Message]], seed: int) -> float | None:
        return self.backend.logprob_gap(model, conversations, seed=seed)


SAMPLERS: dict[str, type[TrainingSampler]] = {"transformers": InProcessSampler, "vllm": ColocatedVllmSampler}
"""The backends a training run can sample on (a trainer config's `backend`), and how each samples the policy."""


def training_sampler(config: Any, model, tokenizer, source: str) -> TrainingSampler:
    """The sampler `config.backend` names, for the policy `model` (bare) loaded from `source`."""
    if config.backend not in SAMPLERS:
        raise PluginNotFound(f"unknown training backend '{config.backend}'. Available: {', '.join(SAMPLERS)}")
    return SAMPLERS[config.backend](model, tokenizer, batch_size=config.generation_batch_size, source=source)
