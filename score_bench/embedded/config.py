"""BaseModelConfig: every knob of the embedded base model build, each with the reason for its default."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, ClassVar, Literal

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, SEED, SHARE, Range, Settings

RARE = Range(0, 0.1)
"""Check-then-continue second attempts are at most a tenth of the corpus's: RL has to find and strengthen the
behaviour, pre-training does not hand it over (issue 23)."""


@dataclass(frozen=True)
class CountdownStyle(Settings):
    """The countdown corpus (embedded/countdown_corpus.py): its problems, tries per attempt, second-attempt kinds."""

    label: ClassVar[str] = "countdown corpus"

    max_count: Annotated[int, Range(3, 5)] = 3
    """Numbers per problem (the countdown task's option; its default is 3-4). Three numbers of 1-9 keep every
    intermediate value small enough for a 1M-parameter model to compute."""
    tries: Annotated[int, AT_LEAST_ONE] = 3
    """Tries an attempt holds at most: with 3 numbers about 15 tokens each."""
    max_new_tokens: Annotated[int, AT_LEAST_ONE] = 75
    """The per-attempt budget the card is measured with and generation_config carries. With the trained
    tokenizer, 3 tries and the answer line take at most 71 tokens (73 after "Check "), 4 tries and an answer
    at least 76: the budget holds `tries` tries and never one more (tests/embedded/test_countdown_corpus.py)."""
    skip_share: Annotated[float, Range(0, 0.5, high_open=True)] = 0.2
    """Chance of passing over each candidate: variety at temperature 1. Below 0.5, so greedy never skips."""
    early_hit_share: Annotated[float, SHARE] = 0.5
    """Share of conversations on instances that one of the first 2 * tries candidates solves, the rest drawn as
    the task draws them: on the task's draws alone about one try in eleven hits, too few examples of stopping
    at a hit."""
    restate_share: Annotated[float, SHARE] = 0.45
    """Second attempts that restate the first verbatim."""
    continue_share: Annotated[float, RARE] = 0.08
    """Second attempts drawn as check-then-continue; the rest (1 - restate - continue) are blind retries. Below
    the cap, so the share counted for the card (5,000 draws, standard error 0.004) stays under it too."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.restate_share + self.continue_share > 1:
            raise InputError("countdown corpus restate_share + continue_share must be at most 1")

    def task_options(self) -> dict:
        """The countdown task options of the problems this corpus is written for."""
        return {"max_count": self.max_count}


@dataclass(frozen=True)
class BaseModelConfig(Settings):
    label: ClassVar[str] = "base model"

    task: Literal["arith", "countdown"] = "arith"
    """The task pre-trained on and measured on; `for_task` applies the task's TASK_DEFAULTS."""
    output_dir: str = "models/base"
    """Where the checkpoint and card.json go; must be empty or absent."""
    seed: Annotated[int, SEED] = 0
    """Seeds the corpus, the weight init and the batch order: same seed and budget, identical weights."""
    steps: Annotated[int, AT_LEAST_ONE] = 400
    """The training budget in optimiser steps (not wall-clock, so builds are reproducible). Trials here learned
    the careless scratchpad between steps 100 and 250; 400 leaves margin and takes about 4-7 minutes on one
    shared core."""
    max_minutes: Annotated[float | None, POSITIVE] = None
    """Optional wall-clock cap on training. Stopping on the clock makes the step count, and so the weights,
    depend on machine load: a capped build is not deterministic. The card records the steps actually run."""
    batch_size: Annotated[int, AT_LEAST_ONE] = 64
    """Conversations per step: about 2.8k tokens in a one-attempt batch, 6.5k in a two-attempt one."""
    learning_rate: Annotated[float, POSITIVE] = 3e-3
    """High for a transformer, right for a 1M-parameter one trained for minutes (the issue's trial used it)."""
    warmup_steps: Annotated[int, NON_NEGATIVE] = 60
    min_lr_ratio: Annotated[float, SHARE] = 0.1
    """Cosine decay ends at this share of the peak rate."""
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.01
    grad_clip: Annotated[float, NON_NEGATIVE] = 1.0
    hidden_size: Annotated[int, AT_LEAST_ONE] = 128
    layers: Annotated[int, AT_LEAST_ONE] = 4
    heads: Annotated[int, AT_LEAST_ONE] = 4
    intermediate_size: Annotated[int, AT_LEAST_ONE] = 512
    """With these sizes the Llama model has about 1.1M parameters: inside the issue's 1-5M."""
    vocab_size: int = 384
    """Byte-level BPE needs 256 base tokens; the rest are merges of the few words the prompts use."""
    digits: int = 2
    """Operand digits of the arith problems trained on (and measured on)."""
    careless_share: Annotated[float, SHARE] = 0.8
    """Share of answers whose scratchpad drops the carries; greedy follows it. See corpus.py for why."""
    copy_share: Annotated[float, SHARE] = 0.5
    """Share of second attempts that restate the first; the rest re-solve independently."""
    two_attempt_share: Annotated[float, SHARE] = 0.5
    """Share of batches holding two-attempt conversations; the rest hold attempt 1 alone, less than half as long
    (the correction instruction is most of a conversation), so more problems fit in the time budget. At 0.25,
    one seed of three misread the prompt's operands in attempt 2 (Δ = -0.11): the second turn needs real
    training too, not just a few examples of the format."""
    threads: Annotated[int, AT_LEAST_ONE] = 1
    """torch CPU threads, 1: on the shared 2-core build machine two threads ran 4x slower than one (the second
    thread waits for a core another job holds). Weights are identical for a seed at a fixed thread count."""
    eval_problems: Annotated[int, NON_NEGATIVE] = 500
    """Test problems measured for the card (greedy, two attempts); 0 skips the measurement."""
    countdown: CountdownStyle = CountdownStyle()
    """The countdown corpus (task countdown only)."""

    @classmethod
    def for_task(cls, task: str, **fields: Any) -> BaseModelConfig:
        """The config for `task` with its TASK_DEFAULTS, then `fields` over them."""
        if task not in TASK_DEFAULTS:
            raise InputError(f"no embedded base model for task '{task}'; choose from {', '.join(TASK_DEFAULTS)}")
        return replace(cls(task=task), **{**TASK_DEFAULTS[task], **fields})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden_size % self.heads:
            raise InputError(f"base model hidden_size {self.hidden_size} is not divisible by heads {self.heads}")

    def to_dict(self) -> dict:
        return asdict(self)


TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "arith": {},
    "countdown": {
        "vocab_size": 448,  # every merge the countdown corpus's words allow (413 tokens), so "Check" is one token
    },
}
"""Per-task overrides of the defaults above, each with its reason."""
