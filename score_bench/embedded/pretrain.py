"""The pre-training loop, read top to bottom: stream seeded batches of conversations, train on the assistant
turns only, AdamW with warmup and cosine decay, stop after the step budget (or the optional clock cap)."""

from __future__ import annotations

import math
import random
import time
from typing import Callable, Iterator

import torch
from transformers import PreTrainedTokenizerFast

from score_bench.embedded.config import BaseModelConfig
from score_bench.embedded.tokenizer import ASSISTANT, END
from score_bench.harness.contracts.progress import Progress, phase
from score_bench.harness.contracts.types import Message

IGNORE = -100


def assistant_labels(ids: list[int], assistant_id: int, end_id: int) -> list[int]:
    """Labels that keep the tokens of assistant turns (content and closing <|end|>) and ignore the rest:
    the model learns to answer, not to predict the random operands in the prompts."""
    labels, inside = [], False
    for token in ids:
        labels.append(token if inside else IGNORE)
        if token == assistant_id:
            inside = True
        elif token == end_id:
            inside = False
    return labels


def encode_batch(tokenizer: PreTrainedTokenizerFast, conversations: list[list[Message]]) -> dict[str, torch.Tensor]:
    """Right-padded input ids, attention mask and assistant-only labels for a batch of conversations."""
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    rows = tokenizer(texts, add_special_tokens=False)["input_ids"]
    assistant_id, end_id = tokenizer.convert_tokens_to_ids([ASSISTANT, END])
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        labels[i, : len(row)] = torch.tensor(assistant_labels(row, assistant_id, end_id))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def learning_rate(step: int, config: BaseModelConfig) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio of the peak at the last step."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.learning_rate * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def pretrain(model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, batches: Iterator[list[list[Message]]],
             config: BaseModelConfig, progress: Progress | None = None,
             clock: Callable[[], float] = time.monotonic) -> dict:
    """Train `model` in place; returns a log summary (steps run, final loss, tokens trained, seconds)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.98),
                                  weight_decay=config.weight_decay)
    model.train()
    start, losses, trained_tokens, steps_run = clock(), [], 0, 0
    with phase(progress, "pre-training", config.steps) as advance:
        for step in range(config.steps):
            if config.max_minutes is not None and clock() - start > 60 * config.max_minutes:
                break
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config)
            batch = encode_batch(tokenizer, next(batches))
            loss = model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            trained_tokens += int((batch["labels"] != IGNORE).sum())
            steps_run = step + 1
            advance(1, f"loss {loss.item():.3f}")
    model.eval()
    tail = losses[-20:]
    return {"steps": steps_run, "final_loss": sum(tail) / max(1, len(tail)), "trained_tokens": trained_tokens,
            "seconds": round(clock() - start, 1), "loss_every_50": losses[::50]}


def seeded_batches(make: Callable[[random.Random, bool], list[Message]], batch_size: int, two_attempt_share: float,
                   rng: random.Random) -> Iterator[list[list[Message]]]:
    """Batches of conversations from `make(rng, two_attempts)`. A batch is all one-attempt or all two-attempt
    (so short conversations are not padded to long ones), two-attempt batches spread evenly at the given share."""
    step = 0
    while True:
        two = int((step + 1) * two_attempt_share) > int(step * two_attempt_share)
        yield [make(rng, two) for _ in range(batch_size)]
        step += 1
