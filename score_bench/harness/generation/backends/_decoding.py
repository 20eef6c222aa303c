"""The decoding state behind the transformers backend: a batch of rows sharing a KV cache, per-row seeded
sampling, and the store of finished rows' KV that a continuing conversation reuses. Kept apart from the
backend's loading and scheduling so each reads in one sitting."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections import Counter, OrderedDict

import torch

from score_bench.harness.contracts.generation import GenerationParams


def cache_argument(model) -> str:
    """The name under which `model.forward` takes its KV cache: `cache` in current transformers, where
    `past_key_values` is deprecated (and due to be removed), `past_key_values` in the releases before it (vLLM's
    CPU build pins one of those). A peft model passes its keyword arguments on to the model it wraps, so that
    model's forward decides."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"


def row_seed(seed: int, prompt: tuple[int, ...], occurrence: int) -> int:
    digest = hashlib.sha256(json.dumps([seed, occurrence, list(prompt)]).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class Sampler:
    """Temperature and top-p sampling with one torch.Generator per row, so a row's draws depend only on its
    own prompt, seed and logits — not on which other rows share its batch."""

    def __init__(self, params: GenerationParams, seeds: list[int]):
        self.temperature, self.top_p = params.temperature, params.top_p
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]

    def pick(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        probs = torch.softmax(logits.float() / self.temperature, dim=-1).cpu()
        if self.top_p < 1:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            # drop a token when the tokens before it already reach top_p; the most likely one always stays
            outside = sorted_probs.cumsum(-1) - sorted_probs >= self.top_p
            sorted_probs[outside] = 0
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        picks = [torch.multinomial(probs[slot], 1, generator=self.generators[row]) for slot, row in enumerate(rows)]
        return torch.cat(picks).to(logits.device)


class Batch:
    """Rows decoding together: their KV cache, attention mask (0 = padding), last position and next logits."""

    def __init__(self, rows: list[int], cache, mask: torch.Tensor, positions: torch.Tensor, logits: torch.Tensor,
                 splice: bool, cache_arg: str):
        self.rows, self.cache, self.mask, self.positions, self.logits = rows, cache, mask, positions, logits
        self.splice = splice
        """Whether the cache is plain full-attention layers, which may be cut and joined along the sequence."""
        self.cache_arg = cache_arg
        """The forward argument that takes the cache (harness.generation.backends._decoding.cache_argument)."""

    def select(self, slots: list[int]) -> None:
        index = torch.tensor(slots, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.rows = [self.rows[slot] for slot in slots]
        self.mask, self.positions, self.logits = self.mask[index], self.positions[index], self.logits[index]
        self._trim()

    def row_kv(self, slot: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One row's cached keys and values per layer, padding columns dropped: [heads, tokens, head_dim]."""
        columns = self.mask[slot].nonzero().squeeze(-1)
        return [(layer.keys[slot].index_select(-2, columns), layer.values[slot].index_select(-2, columns))
                for layer in self.cache.layers]

    def step(self, model, tokens: torch.Tensor) -> None:
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        self.positions = self.positions + 1
        self.logits = model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=self.positions[:, None],
                            use_cache=True, **{self.cache_arg: self.cache}).logits[:, -1, :]

    def merge(self, other: "Batch") -> "Batch":
        """Both batches' rows in one, the shorter cache left-padded (masked) to the longer one's length."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys, width)])
            mine.values = torch.cat([_left_pad(mine.values, width), _left_pad(theirs.values, width)])
        self.mask = torch.cat([_left_pad(self.mask, width, dim=1), _left_pad(other.mask, width, dim=1)])
        self.rows = self.rows + other.rows
        self.positions = torch.cat([self.positions, other.positions])
        self.logits = torch.cat([self.logits, other.logits])
        return self

    def _trim(self) -> None:
        """Drop leading cache columns that no remaining row attends to (left padding of rows that left)."""
        start = int(self.mask.any(dim=0).int().argmax())
        if start > 0 and self.splice:
            self.mask = self.mask[:, start:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]


def _left_pad(tensor: torch.Tensor, width: int, dim: int = -2) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def stack_prefixes(found, reused: list[int], width: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, the reused KV of every row left-padded to `width` ([rows, heads, width, head_dim])."""
    template = next(f[0] for f in found if f)
    stacked = []
    for layer, (keys, values) in enumerate(template):
        shape = (len(found), keys.shape[0], width, keys.shape[-1])
        all_keys, all_values = keys.new_zeros(shape), values.new_zeros(shape)
        for slot, (f, r) in enumerate(zip(found, reused)):
            if r:
                all_keys[slot, :, width - r:] = f[0][layer][0][:, :r]
                all_values[slot, :, width - r:] = f[0][layer][1][:, :r]
        stacked.append((all_keys, all_values))
    return stacked


class PrefixStore:
    """KV of finished rows (prompt plus generated tokens), oldest dropped first past a memory budget.

    A prompt reuses an entry only when it starts with that entry's whole prompt and goes on into the tokens the
    entry generated: it continues that conversation (attempt k+1 after attempt k). Prompts that merely share a
    prompt (K samples of one problem) are read afresh. So what a row reuses is its own conversation's earlier
    turn, whichever rows ran before it, and batch size or a resume do not change a result (tests check both).
    Any change to the weights (a trainer's optimiser step) empties the store: old KV would be wrong."""

    def __init__(self, budget_bytes: int):
        self.budget, self.used = budget_bytes, 0
        self.entries: OrderedDict[int, tuple[tuple[int, ...], int, list, int]] = OrderedDict()
        self.by_prompt: dict[tuple[int, ...], list[int]] = {}
        self.prompt_lengths: Counter[int] = Counter()
        self.next_id = 0
        self.tokens_reused = 0
        """Prompt tokens not read again thanks to the store, for benchmarks."""
        self.fingerprint: tuple = ()

    def check_weights(self, model) -> None:
        """Empty the store if any parameter was replaced or changed in place since it was filled."""
        fingerprint = tuple((id(p), p._version) for p in model.parameters())
        if fingerprint != self.fingerprint:
            self.__init__(self.budget)
            self.fingerprint = fingerprint

    def clear(self) -> None:
        """Drop every entry (their KV is freed); the weights fingerprint and the reuse counter stay."""
        self.entries.clear()
        self.by_prompt.clear()
        self.prompt_lengths.clear()
        self.used = 0

    def add(self, prompt: list[int], tokens: list[int], kv: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        size = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        if size > self.budget:
            return
        key = tuple(prompt)
        self.entries[self.next_id] = (tuple(tokens), len(prompt), kv, size)
        self.by_prompt.setdefault(key, []).append(self.next_id)
        self.prompt_lengths[len(prompt)] += 1
        self.used += size
        self.next_id += 1
        while self.used > self.budget:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        entry_id, (tokens, prompt_length, _, size) = self.entries.popitem(last=False)
        key = tokens[:prompt_length]
        self.by_prompt[key].remove(entry_id)
        if not self.by_prompt[key]:
            del self.by_prompt[key]
        self.prompt_lengths[prompt_length] -= 1
        if not self.prompt_lengths[prompt_length]:
            del self.prompt_lengths[prompt_length]
        self.used -= size

    def find(self, prompt: list[int]) -> tuple[list, int] | None:
        """(an entry's KV, how many leading tokens of `prompt` it covers), or None. At least one token is left
        to read, since the next token's logits come from reading it."""
        best, best_length = None, 0
        for length in self.prompt_lengths:
            if length >= len(prompt):
                continue
            for entry_id in self.by_prompt.get(tuple(prompt[:length]), ()):
                tokens, _, kv, _ = self.entries[entry_id]
                common = length
                while common < min(len(tokens), len(prompt)) and tokens[common] == prompt[common]:
                    common += 1
                if common > length and common >= best_length:  # ties: the latest entry
                    best, best_length = kv, common
        if best is None:
            return None
        return best, min(best_length, len(prompt) - 1)
