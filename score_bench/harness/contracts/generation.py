"""The generation contract: a backend turns chat conversations into completions. Backends live in
harness/generation/backends/<name>.py and are chosen by name; the rollout and the trainers only see this protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from score_bench.harness.contracts.types import Message


DEFAULT_MAX_NEW_TOKENS = 512
"""Per attempt, when none is given. MATH solutions fit in 1024 for 7B models; the embedded arith model needs far
fewer. eval and scale cap the default they derive from the model's context here (harness.evaluation.sampling_run)."""


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    """Per attempt."""
    temperature: float = 0.0
    """0 means greedy, the paper's evaluation setting; SCoRe samples its training rollouts at 1.0."""
    top_p: float = 1.0
    seed: int = 0
    """Seeds sampling so a sampled evaluation can be repeated; ignored when greedy."""
    stop: tuple[str, ...] = ()
    """Strings that end an attempt early (in addition to the tokenizer's end-of-turn token)."""


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int
    """Generated tokens, for throughput and budget accounting."""
    token_ids: tuple[int, ...] = ()
    """The sampled token ids, in order, including a sampled end-of-turn token: what a trainer scores, since the
    text's re-tokenization need not be the sampled split. Empty where a backend cannot report them."""


class Backend(Protocol):
    def generate(self, conversations: Sequence[list[Message]], params: GenerationParams) -> list[Completion]:
        """One completion of the next assistant turn per conversation, in input order."""
        ...
