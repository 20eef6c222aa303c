"""Per-request sampling seeds for the engines that take one seed per request (vLLM offline and served).

A request's seed comes from the run's seed, the conversation, and how many identical conversations came before
it in the call, so a row's sample depends on nothing else (not batch, order, concurrency or a resume), and
`vllm serve` and offline vLLM, given the same conversation and seed, draw the same sample."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Sequence

from score_bench.harness.contracts.types import Message


def conversation_seeds(seed: int, conversations: Sequence[list[Message]]) -> list[int]:
    """One seed per conversation, 31 bits (every server accepts that range)."""
    seen: Counter[str] = Counter()
    seeds = []
    for conversation in conversations:
        key = json.dumps(conversation, sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(json.dumps([seed, seen[key], key]).encode()).digest()
        seeds.append(int.from_bytes(digest[:4], "little") & 0x7FFFFFFF)
        seen[key] += 1
    return seeds
