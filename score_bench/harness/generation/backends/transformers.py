"""Generation on Hugging Face transformers: any causal LM with a chat template, batched, with a KV cache.

The decoding loop is written here rather than through `model.generate` for three reasons: continuous batching
(a row leaves the batch the moment it ends and a waiting prompt is prefilled into its slot, so answers of uneven
length do not leave the batch half empty), one seeded generator per row (so a sampled result does not depend on
batch size, order or a resume), and left padding, positions and the attention mask set in one visible place —
the padding bugs of the public SCoRe reproductions lived exactly there.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, deque
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import Backend, Completion, GenerationParams
from score_bench.harness.contracts.types import Message
from score_bench.harness.generation.backends._decoding import (Batch, PrefixStore, Sampler, cache_argument, row_seed,
                                                               stack_prefixes)
from score_bench.harness.runtime.guards import model_context
from score_bench.harness.runtime.input_files import SETTINGS_FILE_BYTES, read_text

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}
_SENTINEL = "\x00score-bench-sentinel\x00"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def resolve_model_source(model: str) -> str:
    """An absolute local directory, or a Hub id to try; anything else is an InputError naming the input."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists():
        raise InputError(f"model '{model}' is a file; expected a checkpoint directory or a Hugging Face Hub id")
    # "models/base" when ./models exists is a mistyped local path, not a Hub repo: say so instead of going
    # to the network (which, offline, retries for a minute before failing).
    local_parent = len(path.parts) > 1 and Path(path.parts[0]).is_dir()
    if model.startswith((".", "/", "~")) or local_parent or not _HUB_ID.match(model):
        raise InputError(f"model '{model}' not found: no such directory, and not a Hugging Face Hub id")
    return model


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device '{device}' requested but torch sees no CUDA device")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"unknown device '{device}'; use cpu, cuda, cuda:N or auto")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        # bf16 halves memory and is what GPUs run fast; CPUs are slow at it, so fp32 there.
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise InputError(f"unknown dtype '{dtype}'; use auto, float32 (fp32), bfloat16 (bf16) or float16 (fp16)")
    return _DTYPES[dtype]


def weights_sha256(source: str) -> str | None:
    """sha256 over the checkpoint's weight files (names and bytes, sorted by name): identifies the exact
    weights evaluated. None for a Hub id that is not in the local cache."""
    directory = Path(source)
    if not directory.is_dir():
        try:
            from huggingface_hub import snapshot_download

            directory = Path(snapshot_download(source, local_files_only=True))
        except Exception:
            return None
    digest = hashlib.sha256()
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    if not files:
        return None
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers draws its own loading bars on stderr; library code reports through harness.contracts.progress
    only."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _load_tokenizer(source: str, model: str, chat_template: str | Path | None):
    from transformers import AutoTokenizer

    local = Path(source)
    if local.is_dir() and not (local / "config.json").exists():
        raise InputError(f"model directory '{model}' has no config.json: not a transformers checkpoint")
    if local.is_dir() and not any((local / name).exists() for name in _TOKENIZER_FILES):
        raise InputError(f"model directory '{model}' has no tokenizer (none of {', '.join(_TOKENIZER_FILES)})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as err:  # transformers raises OSError, ValueError or KeyError depending on what is missing
        raise InputError(f"cannot load the tokenizer of model '{model}': {_first_line(err)}") from None
    if chat_template is not None:
        tokenizer.chat_template = _read_template(Path(chat_template))
    if not tokenizer.chat_template:
        raise InputError(f"model '{model}' has no chat template; supply one with a template file (--chat-template)")
    return tokenizer


def load_tokenizer(model: str, chat_template: str | Path | None = None,
                   need: str = "supply one with a template file (--chat-template)") -> tuple[str, object]:
    """(resolved source, tokenizer with a chat template) for a checkpoint directory or Hub id; every failure
    an InputError naming `model` (`need` says, when there is no chat template, why one is needed)."""
    source = resolve_model_source(model)
    try:
        return source, _load_tokenizer(source, model, chat_template)
    except InputError as err:
        if "has no chat template" in str(err) and chat_template is None:
            raise InputError(f"model '{model}' has no chat template; {need}") from None
        raise


def load_model(source: str, model: str, dtype: torch.dtype, trust_remote_code: bool = False):
    """AutoModelForCausalLM from `source`; an empty or truncated checkpoint, a config that is not JSON or an
    unknown architecture is an InputError naming `model`."""
    from transformers import AutoModelForCausalLM

    with _quiet_transformers():
        try:
            return AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=trust_remote_code)
        except Exception as err:  # OSError (files), ValueError (unknown architecture), RuntimeError (shapes)
            raise InputError(f"cannot load model '{model}': {_first_line(err)}") from None


def _read_template(path: Path) -> str:
    text = read_text(path, "--chat-template file", limit=SETTINGS_FILE_BYTES)
    if path.suffix == ".json":  # the chat_template.json that save_pretrained writes
        try:
            text = json.loads(text)["chat_template"]
        except (ValueError, KeyError, TypeError):
            raise InputError(f"chat template '{path}' is JSON without a 'chat_template' string") from None
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"chat template '{path}' is empty")
    return text


def end_of_turn_ids(tokenizer, generation_config) -> frozenset[int]:
    """Token ids that end a turn: eos from the tokenizer and generation config, plus the special token the chat
    template puts after an assistant turn (e.g. <|im_end|>), found by rendering a turn and reading what follows
    it. Shared with the vLLM backend, so both engines stop on the same tokens."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(generation_config, "eos_token_id", None)):
        ids.update(value if isinstance(value, list) else [value] if value is not None else [])
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _SENTINEL}], tokenize=False)
    except Exception:
        return frozenset(ids)
    if _SENTINEL in text:
        after = tokenizer(text.split(_SENTINEL, 1)[1], add_special_tokens=False)["input_ids"]
        if after and after[0] in set(tokenizer.all_special_ids):
            ids.add(after[0])
    return frozenset(ids)


def render_prompt(tokenizer, conversation: list[Message], source: str | None) -> list[int]:
    """The prompt token ids asking for the next assistant turn, through the chat template (the text rendered,
    then tokenized without adding special tokens: the template already placed them). Shared with the vLLM
    backend, so both engines read the same prompt."""
    try:
        text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    except Exception as err:  # jinja raises for roles a template forbids (e.g. no system role)
        raise InputError(f"the chat template of model '{source}' rejected a conversation: "
                         f"{_first_line(err)}") from None
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class TransformersBackend(Backend):
    """Implements harness.contracts.generation.Backend on a transformers causal LM."""

    def __init__(self, model, tokenizer, *, batch_size: int = 32, source: str | None = None,
                 prefix_cache_mb: float = 1024):
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.source = source or getattr(model, "name_or_path", None)
        self.device = next(model.parameters()).device
        self.stop_ids = self._stop_token_ids()
        pad = tokenizer.pad_token_id
        # pad == eos is fine: padding is described by the attention mask, never inferred from token ids.
        self.pad_id = pad if pad is not None else min(self.stop_ids, default=0)
        self.splice = self._can_splice()
        self.cache_arg = cache_argument(model)
        self.prefix_cache = PrefixStore(int(prefix_cache_mb * 2**20)) if self.splice and prefix_cache_mb > 0 else None
        """KV of finished rows, reused when a later prompt continues one (attempt k+1 extends attempt k)."""

    @classmethod
    def load(cls, model: str, *, dtype: str = "auto", device: str = "auto", chat_template: str | Path | None = None,
             batch_size: int = 32, prefix_cache_mb: float = 1024,
             trust_remote_code: bool = False) -> "TransformersBackend":
        """Load a checkpoint directory or Hub id. Every failure is an InputError naming `model`.
        prefix_cache_mb bounds the memory kept for reusing finished rows' KV; 0 turns reuse off."""
        device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, device)
        source, tokenizer = load_tokenizer(model, chat_template)
        lm = load_model(source, model, torch_dtype, trust_remote_code)
        return cls(lm.to(device), tokenizer, batch_size=batch_size, source=source, prefix_cache_mb=prefix_cache_mb)

    def describe(self) -> dict:
        """What results.json records about the model."""
        return {"source": self.source, "weights_sha256": weights_sha256(self.source) if self.source else None,
                "architecture": type(self.model).__name__, "dtype": str(self.model.dtype).removeprefix("torch."),
                "device": str(self.device), "parameters": sum(p.numel() for p in self.model.parameters())}

    @property
    def context(self) -> tuple[int | None, str]:
        """The longest conversation the model takes, and what sets it (the harness checks runs against it)."""
        return model_context(self.model)

    @property
    def local_model(self):
        return self.model

    def _stop_token_ids(self) -> frozenset[int]:
        return end_of_turn_ids(self.tokenizer, self.model.generation_config)

    def render(self, conversation: list[Message]) -> list[int]:
        """The prompt token ids asking for the next assistant turn, through the model's chat template."""
        return render_prompt(self.tokenizer, conversation, self.source)

    def release(self) -> None:
        """Free the KV kept for reuse (the prefix store, up to prefix_cache_mb): a trainer holding it would carry
        the KV of every conversation of a step through scoring and the optimiser step, whose peak then grows with
        the batch; the step changes the weights, which would empty the store anyway."""
        if self.prefix_cache is not None:
            self.prefix_cache.clear()

    def generate(self, conversations: Sequence[list[Message]], params: GenerationParams) -> list[Completion]:
        if self.prefix_cache is not None:
            self.prefix_cache.check_weights(self.model)
        prompts = [self.render(c) for c in conversations]
        seen: Counter[tuple[int, ...]] = Counter()
        seeds = []
        for prompt in prompts:  # identical prompts in one call get distinct seeds, in input order
            key = tuple(prompt)
            seeds.append(row_seed(params.seed, key, seen[key]))
            seen[key] += 1
        training = self.model.training  # a trainer may hand over its model in train mode: no dropout here
        self.model.eval()
        try:
            generated, stopped = self._decode(prompts, seeds, params)
        finally:
            self.model.train(training)
        return [self._completion(tokens, params.stop if hit else ()) for tokens, hit in zip(generated, stopped)]

    @torch.inference_mode()
    def _decode(self, prompts: list[list[int]], seeds: list[int], params: GenerationParams):
        """Continuous batching: up to batch_size rows decode together; a row leaves the moment it ends and
        waiting prompts are prefilled into the free slots, so the batch stays full until the queue runs dry."""
        # Longest first: each prefill then holds prompts of similar length, and padding stays small.
        queue = deque(sorted(range(len(prompts)), key=lambda i: -len(prompts[i])))
        generated: list[list[int]] = [[] for _ in prompts]
        stopped = [False] * len(prompts)
        sampler = Sampler(params, seeds) if params.temperature > 0 else None
        # Prefilling a few rows costs about one decode step, so refill once an eighth of the batch is free.
        refill_at = max(1, self.batch_size // 8) if self.splice else self.batch_size
        batch: Batch | None = None
        while queue or batch is not None:
            free = self.batch_size - (len(batch.rows) if batch else 0)
            if queue and free >= (refill_at if batch else 1):
                new = self._prefill([queue.popleft() for _ in range(min(free, len(queue)))], prompts)
                batch = new if batch is None else batch.merge(new)
            tokens = sampler.pick(batch.logits, batch.rows) if sampler else batch.logits.argmax(-1)
            keep = []
            for slot, (row, token) in enumerate(zip(batch.rows, tokens.tolist())):
                generated[row].append(token)
                if token in self.stop_ids or len(generated[row]) >= params.max_new_tokens:
                    continue
                if params.stop and self._hit_stop(generated[row], params.stop):
                    stopped[row] = True
                    continue
                keep.append(slot)
            if self.prefix_cache is not None and len(keep) < len(batch.rows):
                kept = set(keep)
                for slot, row in enumerate(batch.rows):
                    if slot not in kept:  # its last token was never fed, so the cache holds all but that one
                        self.prefix_cache.add(prompts[row], prompts[row] + generated[row][:-1], batch.row_kv(slot))
            if not keep:
                batch = None
                continue
            if len(keep) < len(batch.rows):
                batch.select(keep)
                tokens = tokens[torch.tensor(keep, device=tokens.device)]
            batch.step(self.model, tokens)
        return generated, stopped

    def _can_splice(self) -> bool:
        """Refilling splices caches, which is right for plain full-attention layers only (not sliding windows
        or recurrent states); other models get static batches that still shed finished rows."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        return all(type(layer) is DynamicLayer for layer in DynamicCache(config=self.model.config).layers)

    def _prefill(self, rows: list[int], prompts: list[list[int]]) -> "Batch":
        """Read the prompts of `rows` into a new batch. A prompt that continues a finished row's tokens starts
        from that row's KV and reads only what is new; the reused part sits left-padded before the new part,
        and the attention mask and explicit positions make the hole in between invisible."""
        from transformers import DynamicCache

        found = [self.prefix_cache.find(prompts[row]) if self.prefix_cache else None for row in rows]
        reused = [f[1] if f else 0 for f in found]
        if self.prefix_cache is not None:
            self.prefix_cache.tokens_reused += sum(reused)
        prefix_width = max(reused)
        width = max(len(prompts[row]) - r for row, r in zip(rows, reused))
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), prefix_width + width), dtype=torch.long)
        offsets = torch.tensor(reused, dtype=torch.long)
        for slot, (row, r) in enumerate(zip(rows, reused)):  # left padding in both parts
            new = prompts[row][r:]
            ids[slot, width - len(new):] = torch.tensor(new, dtype=torch.long)
            mask[slot, prefix_width - r:prefix_width] = 1
            mask[slot, prefix_width + width - len(new):] = 1
        ids, mask, offsets = ids.to(self.device), mask.to(self.device), offsets.to(self.device)
        positions = (mask[:, prefix_width:].cumsum(-1) - 1).clamp(min=0) + offsets[:, None]
        cache = DynamicCache(config=self.model.config)
        if prefix_width:
            for layer, (keys, values) in enumerate(stack_prefixes(found, reused, prefix_width)):
                cache.update(keys.to(self.device), values.to(self.device), layer)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                            logits_to_keep=1, **{self.cache_arg: cache}).logits[:, -1, :]
        return Batch(list(rows), cache, mask, positions[:, -1], logits, splice=self.splice, cache_arg=self.cache_arg)

    def _hit_stop(self, tokens: list[int], stop: tuple[str, ...]) -> bool:
        """Whether the text's tail contains a stop string; a tail long enough for any stop string is decoded."""
        window = max(len(s) for s in stop) + 2  # every token decodes to at least one character, bar a few
        tail = self.tokenizer.decode(tokens[-window:], skip_special_tokens=True)
        return any(s in tail for s in stop)

    def _completion(self, tokens: list[int], stop: tuple[str, ...]) -> Completion:
        body = tokens[:-1] if tokens and tokens[-1] in self.stop_ids else tokens
        text = self.tokenizer.decode(body, skip_special_tokens=True)
        if stop:  # the stop string and anything decoded after it are not part of the answer
            cut = min((text.find(s) for s in stop if s in text), default=len(text))
            text = text[:cut]
        return Completion(text=text, n_tokens=len(tokens), token_ids=tuple(tokens))
