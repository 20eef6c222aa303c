"""The generation contract: a backend turns chat conversations into completions. Backends live in
harness/generation/backends/<name>.py and register in the entry-point group `score_bench.backends`; the rollout and
the trainers only see this contract."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated, Any, ClassVar, Sequence

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import AT_LEAST_ONE, NON_NEGATIVE, Range, Settings
from score_bench.harness.contracts.types import Message


DEFAULT_MAX_NEW_TOKENS = 512
"""Per attempt, when none is given. MATH solutions fit in 1024 for 7B models; the embedded arith model needs far
fewer. eval and scale cap the default they derive from the model's context here (harness.evaluation.sampling_run)."""


@dataclass(frozen=True)
class GenerationSettings(Settings):
    """How each attempt is generated: declared once, here, for eval, scale and every trainer (each config's
    `generation`). The command line, YAML files and the files a run writes name these fields flat
    (`--max-new-tokens`, `--set max_new_tokens=64`, "max_new_tokens" in eval_config.json): the names are unique
    across a config. The defaults are eval's; scale and the trainers give their own in their configs."""

    label: ClassVar[str] = "generation"

    max_new_tokens: Annotated[int | None, AT_LEAST_ONE] = None
    """Generated tokens per attempt at most (default: the most that fits the model's context, up to 512).

    None is eval's and scale's default: fit_to_model settles it from the model's context before the run, and the
    run's identity records the value. A trainer needs a number (an attempt cut there keeps its tokens, but its
    end-of-turn token is not trained)."""
    temperature: Annotated[float, NON_NEGATIVE] = 0.0
    """Sampling temperature; 0 = greedy, the paper's evaluation setting.

    Above 0 samples: scale votes and pass@k need samples that differ, and the trainers sample their training
    rollouts (the paper: 1.0, on-policy)."""
    top_p: Annotated[float, Range(0, 1, low_open=True)] = 1.0
    """Nucleus sampling: the smallest set of tokens whose probability reaches top_p (1.0: every token)."""
    stop: tuple[str, ...] = ()
    """A string that ends an attempt; repeatable.

    Strings that end an attempt early, besides the tokenizer's end-of-turn token. Evaluation only: a trainer
    trains an attempt's end-of-turn token only where it was sampled, and an attempt a stop string cut has none."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not all(isinstance(text, str) and text for text in self.stop):
            raise InputError("every stop string must be a non-empty string")


@dataclass(frozen=True)
class GenerationParams(GenerationSettings):
    """What one generate call is asked: the settings, settled (max_new_tokens a number), and this call's seed."""

    seed: int = 0
    """Seeds sampling so a sampled evaluation can be repeated; ignored when greedy."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_new_tokens is None:
            raise ValueError("max_new_tokens is not settled: give a number (eval and scale settle it in fit_to_model)")

    @classmethod
    def of(cls, settings: GenerationSettings, seed: int) -> "GenerationParams":
        """`settings` for one call seeded with `seed`."""
        return cls(**{item.name: getattr(settings, item.name) for item in fields(settings)}, seed=seed)


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
