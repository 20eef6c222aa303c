"""Micro-batching with gradient accumulation, shared by every trainer.

A step's batch is scored in micro-batches (at most `micro_batch_size` rows, and optionally at most
`micro_batch_tokens` padded tokens = rows x longest row) whose losses are each the micro-batch's share of the
whole batch's loss, so the gradients summed in `.grad` are exactly the whole batch's (trainers divide by the whole
batch's sample or token count, never by the micro-batch's). Under DDP the gradients are all-reduced once per
optimiser step: every micro-batch but the last runs inside accelerate's `no_sync` (under FSDP2, with gradient
sync off: harness.training.fsdp).

Micro-batches are consecutive rows of the batch, trimmed of the left padding no row of theirs needs, so each
costs the memory of its own longest row.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Callable, Sequence

import torch

from score_bench.harness.training import fsdp

__all__ = ["micro_batches", "accumulate"]


def micro_batches(lengths: Sequence[int], size: int | None, tokens: int | None = None) -> list[slice]:
    """Consecutive slices of rows with the given lengths: each at most `size` rows (None: no limit) and at most
    `tokens` padded tokens (rows x its longest row; None: no limit). A row longer than `tokens` on its own is a
    micro-batch of one."""
    parts: list[slice] = []
    start, longest = 0, 0
    for i, length in enumerate(lengths):
        rows = i - start + 1
        widest = max(longest, length)
        full = (size is not None and rows > size) or (tokens is not None and rows * widest > tokens)
        if full and i > start:
            parts.append(slice(start, i))
            start, widest = i, length
        longest = widest
    if len(lengths) > start:
        parts.append(slice(start, len(lengths)))
    return parts


def accumulate(accelerator, model, parts: Sequence, loss_of: Callable[[object], torch.Tensor]) -> torch.Tensor:
    """Backward of loss_of(part) for each part, in order; gradients add up in `.grad`. Under DDP only the last
    part's backward all-reduces (the others run, forward included, inside accelerator.no_sync). Returns the sum of
    the parts' losses, detached: the whole batch's loss when each part's loss is its share of it."""
    total = torch.zeros(())
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        with nullcontext() if last else fsdp.no_sync(accelerator, model):
            loss = loss_of(part)
            accelerator.backward(loss)
        total = total + loss.detach().float().cpu()
    return total
