"""build_base_model: tokenizer, model, pre-training, measurement and card, saved like any HF checkpoint. The
task's corpus (corpus.py for arith, countdown_corpus.py for countdown) is the only part that differs by task."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import jinja2
import torch
from transformers import GenerationConfig

from score_bench.embedded import countdown_corpus
from score_bench.embedded.card import write_card
from score_bench.embedded.config import BaseModelConfig
from score_bench.embedded.corpus import StyleMix, conversation
from score_bench.embedded.model import create_model
from score_bench.embedded.pretrain import pretrain, seeded_batches
from score_bench.embedded.tokenizer import CHAT_TEMPLATE, train_tokenizer
from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.progress import Progress, phase
from score_bench.harness.contracts.types import Message
from score_bench.harness.runtime.guards import LOCK_FILE
from score_bench.tasks.arith import ArithTask
from score_bench.tasks.countdown import CountdownTask

TOKENIZER_CONVERSATIONS = 2000
"""Conversations the tokenizer is trained on: every word of the prompts occurs thousands of times in them."""
MAX_NEW_TOKENS = 48
"""Per attempt on arith; the longest answer (a 2-digit scratchpad) is about 25 tokens."""
CORPUS_SAMPLE = 5000
"""Conversations drawn apart from the training stream to count what the corpus holds, for the card."""


@dataclass(frozen=True)
class Corpus:
    """What the build needs of a task: where problems come from and how a pre-training conversation looks."""

    task: ArithTask | CountdownTask
    """The task the corpus draws train-split problems from; the card measures on its test split."""
    task_options: dict
    """The task's options, as `score-bench eval --task-option` takes them."""
    max_new_tokens: int
    make: Callable[[random.Random, bool], list[Message]]
    """make(rng, two_attempts) -> one pre-training conversation on a train-split problem."""
    facts: Callable[[], dict] | None = None
    """What the card says of the corpus itself (countdown: its second-attempt kinds and the solver's keep rate),
    counted on conversations drawn apart from the training stream, so the weights do not depend on it."""
    describe: Callable[[Iterable[dict]], dict] | None = None
    """What the card says of the measured samples (measure.measure's `describe`)."""


def build_base_model(config: BaseModelConfig, progress: Progress | None = None) -> Path:
    """Build the embedded base model into config.output_dir and return that path. Deterministic for a seed
    and step budget (unless max_minutes stops training early); the card records what was measured."""
    output = Path(config.output_dir)
    if output.exists() and any(p.name != LOCK_FILE for p in output.iterdir()):  # the CLI's lock may be there
        raise InputError(f"output directory is not empty: {output}")
    started = time.monotonic()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        rng = random.Random(config.seed)
        corpus = corpus_for(config, rng)
        make = corpus.make
        with phase(progress, "training tokenizer", None):
            tokenizer = train_tokenizer(_rendered(make, rng, TOKENIZER_CONVERSATIONS), config.vocab_size)
        torch.manual_seed(config.seed)
        model = create_model(config, tokenizer)
        batches = seeded_batches(make, config.batch_size, config.two_attempt_share, rng)
        log = pretrain(model, tokenizer, batches, config, progress)
        model.generation_config = GenerationConfig(
            do_sample=False, max_new_tokens=corpus.max_new_tokens, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
        output.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
        build_seconds = time.monotonic() - started
        measured = _measure(output, corpus, config, progress) if config.eval_problems else None
        write_card(output, config, log, measured, build_seconds,
                   n_parameters=sum(p.numel() for p in model.parameters()),
                   corpus=corpus.facts() if corpus.facts else None)
    finally:
        torch.set_num_threads(previous_threads)
    return output


def corpus_for(config: BaseModelConfig, rng: random.Random) -> Corpus:
    """The corpus of config.task; its conversations draw their problems from `rng`'s stream."""
    if config.task == "countdown":
        style = config.countdown
        task, make = countdown_corpus.maker(style, rng)
        options = style.task_options()

        def facts() -> dict:  # its own stream: the training stream, and so the weights, do not depend on it
            sample = random.Random(f"corpus-facts:{config.seed}")
            return {**countdown_corpus.corpus_facts(style, sample, CORPUS_SAMPLE), "task_options": options}

        return Corpus(task, options, style.max_new_tokens, make, facts, countdown_corpus.describe_samples)
    return Corpus(ArithTask(digits=config.digits), {"digits": config.digits}, MAX_NEW_TOKENS,
                  conversation_maker(config, rng))


def conversation_maker(config: BaseModelConfig, rng: random.Random):
    """make(rng, two_attempts) -> one pre-training arith conversation on a train-split problem (never a test
    one)."""
    task = ArithTask(digits=config.digits)
    mix = StyleMix(config.careless_share, config.copy_share)
    pairs = task.sample_pairs("train", rng)

    def make(draw: random.Random, two_attempts: bool = True) -> list[Message]:
        a, b = next(pairs)
        return conversation(task.first_prompt(task.problem(a, b)), task.correction_instruction, a, b, draw, mix,
                            two_attempts)

    return make


def _rendered(make, rng: random.Random, n: int) -> list[str]:
    """Conversations rendered through the chat template the tokenizer will carry (it does not exist yet)."""
    template = jinja2.Template(CHAT_TEMPLATE)
    return [template.render(messages=make(rng), add_generation_prompt=False) for _ in range(n)]


def _measure(output: Path, corpus: Corpus, config: BaseModelConfig, progress: Progress | None) -> dict:
    from score_bench.embedded.measure import measure

    return measure(output, corpus.task.name, corpus.task_options, config.eval_problems, corpus.max_new_tokens,
                   progress, corpus.describe)
