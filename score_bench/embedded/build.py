"""build_base_model: tokenizer, model, pre-training, measurement and card, saved like any HF checkpoint."""

from __future__ import annotations

import random
import time
from pathlib import Path

import jinja2
import torch
from transformers import GenerationConfig

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

TOKENIZER_CONVERSATIONS = 2000
"""Conversations the tokenizer is trained on: every word of the prompts occurs thousands of times in them."""
MAX_NEW_TOKENS = 48
"""Per attempt; the longest answer (a 2-digit scratchpad) is about 25 tokens."""


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
        task = ArithTask(digits=config.digits)
        rng = random.Random(config.seed)
        make = conversation_maker(config, rng)
        with phase(progress, "training tokenizer", None):
            tokenizer = train_tokenizer(_rendered(make, rng, TOKENIZER_CONVERSATIONS), config.vocab_size)
        torch.manual_seed(config.seed)
        model = create_model(config, tokenizer)
        batches = seeded_batches(make, config.batch_size, config.two_attempt_share, rng)
        log = pretrain(model, tokenizer, batches, config, progress)
        model.generation_config = GenerationConfig(
            do_sample=False, max_new_tokens=MAX_NEW_TOKENS, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
        output.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
        build_seconds = time.monotonic() - started
        measured = _measure(output, task, config, progress) if config.eval_problems else None
        write_card(output, config, log, measured, build_seconds,
                   n_parameters=sum(p.numel() for p in model.parameters()))
    finally:
        torch.set_num_threads(previous_threads)
    return output


def conversation_maker(config: BaseModelConfig, rng: random.Random):
    """make(rng, two_attempts) -> one pre-training conversation on a train-split problem (never a test one)."""
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


def _measure(output: Path, task: ArithTask, config: BaseModelConfig, progress: Progress | None) -> dict:
    from score_bench.embedded.measure import measure

    return measure(output, task, config.eval_problems, MAX_NEW_TOKENS, progress)
