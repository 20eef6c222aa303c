"""The memory a device has (a CUDA device's total, or the machine's physical memory on CPU) and what a generation
batch's KV cache needs of it: what `eval`, `scale` and `train` check before they load or generate anything."""

from __future__ import annotations

from typing import Any

import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.runtime.input_files import physical_memory

__all__ = ["FLOAT32", "device_memory", "kv_cache_bytes", "check_kv_fits"]

FLOAT32 = 4
"""Bytes per float32 value."""


def device_memory(device: str) -> tuple[int, str]:
    """(bytes, what holds them) a process on `device` ("cpu", "cuda", "cuda:N") can use at most: the
    CUDA device's total memory, or on CPU the machine's physical memory."""
    if device.startswith("cuda"):
        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
        name = torch.cuda.get_device_name(index)
        return torch.cuda.get_device_properties(index).total_memory, f"GPU {index} ({name})"
    return physical_memory(), "this machine"


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, value_bytes: int = FLOAT32) -> int:
    """Keys and values cached for `tokens` tokens: 2 x layers x kv_heads x head_dim values of `value_bytes` each."""
    return 2 * layers * kv_heads * head_dim * value_bytes * tokens


def check_kv_fits(model: Any, batch: int, tokens: int) -> None:
    """Refuse a generation batch of `batch` conversations of up to `tokens` tokens whose KV cache alone (at the
    loaded model's dtype) exceeds all the memory of the model's device; nothing else that generation keeps is
    counted, so a batch that passes may still not fit."""
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    need = kv_cache_bytes(text.num_hidden_layers, kv_heads, head_dim, batch * tokens, model.dtype.itemsize)
    available, holder = device_memory(str(model.device))
    if need > available:
        raise InputError(f"a generation batch of {batch:,} conversations of up to {tokens:,} tokens needs an "
                         f"estimated {need / 2**30:,.1f} GiB of KV cache but {holder} has {available / 2**30:,.1f} "
                         "GiB in all; lower --batch-size")
