"""The generation contract: a backend turns chat conversations into completions. Backends live in
harness/generation/backends/<name>.py and register in the entry-point group `score_bench.backends`; the rollout and
the trainers only see this contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

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


class Backend:
    """The base of every backend plugin: `load` and `generate` are the contract; the other methods are optional
    capabilities whose defaults here do nothing, so the harness calls them without probing."""

    tokenizer: Any = None
    """The Hugging Face tokenizer that renders prompts in this process, when there is one (the harness checks every
    conversation against the context with it); None for a served model, whose prompts the server renders."""

    @classmethod
    def load(cls, model: str, **options: Any) -> "Backend":
        """A ready backend on `model` (a checkpoint directory, a Hub id or a served name); `options` are the common
        dtype, device, chat_template, batch_size and prefix_cache_mb, plus the backend's own."""
        raise NotImplementedError

    def generate(self, conversations: Sequence[list[Message]], params: GenerationParams) -> list[Completion]:
        """One completion of the next assistant turn per conversation, in input order."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What results.json records about the model (weights hash, architecture, engine, endpoint)."""
        return {}

    def release(self) -> None:
        """Free what is kept to continue the conversations generated so far (e.g. a prefix KV store): called once
        none of them will be continued (a rollout chunk, a held-out evaluation)."""

    @property
    def context(self) -> tuple[int | None, str]:
        """The longest conversation the model takes, and what sets it; None when the backend cannot tell."""
        return None, "no stated context length"

    @property
    def local_model(self) -> Any:
        """The model module when its weights are in this process (the harness checks they are finite and that a
        batch's KV cache fits its device); None for an engine or a server that holds them."""
        return None
