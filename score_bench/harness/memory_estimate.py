"""A memory estimate of a training run before it starts (`score-bench train ... --dry-run`, issue #13 item 4), so
a user sees whether a preset fits the device without loading weights or writing anything.

Per process, in bytes: the policy's parameters, their gradients and Adam's two moments (float32, as the trainers
load them), the frozen reference (SCoRe only), the activations kept for backward of one micro-batch, and the KV
cache of one sampling batch. The model is built on the meta device (accelerate's init_empty_weights) to count
parameters; the sequence length is the longest rendered first prompt among the task's first training problems
plus the correction instruction and two attempts of max_new_tokens.

Activations follow Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models"):
per layer and token about hidden x (34 + 5 x heads x length / hidden) bytes at 16 bits, doubled for float32;
plus the logits, their float32 copy and cross-entropy's saved log-softmax (3 x vocab floats per token), which
dominate for small models with large vocabularies. It is an estimate: allocator slack, framework buffers and
the sampler's transient tensors are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from score_bench.harness.errors import InputError

__all__ = ["ModelShape", "MemoryEstimate", "model_shape", "estimate", "sequence_length", "for_config"]

FLOAT32 = 4
PROMPTS_MEASURED = 64
"""Training problems whose rendered first prompt is measured for the sequence length."""


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per process, by what holds them; `rows` x `length` is one micro-batch."""

    parameters: int
    gradients: int
    optimizer: int
    reference: int
    activations: int
    sampling_kv: int
    rows: int
    length: int

    @property
    def total(self) -> int:
        return (self.parameters + self.gradients + self.optimizer + self.reference + self.activations
                + self.sampling_kv)

    def lines(self) -> list[tuple[str, int]]:
        return [("parameters (float32)", self.parameters), ("gradients", self.gradients),
                ("optimiser state (Adam: 2 moments)", self.optimizer), ("frozen reference", self.reference),
                (f"activations, one micro-batch ({self.rows} rows x {self.length} tokens)", self.activations),
                ("sampling KV cache (one generation batch)", self.sampling_kv), ("total", self.total)]


def model_shape(source: str) -> ModelShape:
    """The model's size and shape from its config, built without weights."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(source)
    except Exception as err:
        raise InputError(f"cannot read the config of model '{source}': {str(err).splitlines()[0]}") from None
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    return ModelShape(parameters=sum(p.numel() for p in model.parameters()), layers=text.num_hidden_layers,
                      hidden=text.hidden_size, heads=heads, kv_heads=getattr(text, "num_key_value_heads", heads) or heads,
                      vocab=text.vocab_size)


def sequence_length(tokenizer, task, split: str, max_new_tokens: int) -> int:
    """Tokens of the longest two-attempt conversation the run can score: the longest rendered first prompt among
    the first training problems, two attempts of max_new_tokens, the correction instruction as a user turn."""
    problems = task.problems(split)[:PROMPTS_MEASURED]
    if not problems:
        raise InputError(f"task '{task.name}' has no problems in split '{split}'")
    prompt = max(len(tokenizer.apply_chat_template(task.first_prompt(p), tokenize=True, add_generation_prompt=True))
                 for p in problems)
    turn = [{"role": "user", "content": task.correction_instruction}]
    instruction = len(tokenizer.apply_chat_template(turn, tokenize=True, add_generation_prompt=True))
    return prompt + instruction + 2 * max_new_tokens + 4  # + the end-of-turn tokens and their newlines


def activation_bytes(shape: ModelShape, rows: int, length: int) -> int:
    """Activations kept for backward by one forward of `rows` x `length` tokens, float32."""
    tokens = rows * length
    per_layer = tokens * shape.hidden * (34 + 5 * shape.heads * length / shape.hidden) * 2  # x2: 32-bit
    logits = 3 * tokens * shape.vocab * FLOAT32
    return int(shape.layers * per_layer + logits)


def estimate(shape: ModelShape, config: Any, length: int, *, reference: bool, traces_per_step: int,
             world: int = 1) -> MemoryEstimate:
    """The estimate for a trainer `config` (micro_batch_size, micro_batch_tokens, max_new_tokens,
    generation_batch_size) scoring `traces_per_step` traces per optimiser step over `world` processes."""
    rows = max(1, traces_per_step // world)
    if config.micro_batch_size:
        rows = min(rows, config.micro_batch_size)
    if config.micro_batch_tokens:
        rows = max(1, min(rows, config.micro_batch_tokens // length))
    head_dim = shape.hidden // shape.heads
    kv = 2 * shape.layers * shape.kv_heads * head_dim * FLOAT32 * length * config.generation_batch_size
    weights = shape.parameters * FLOAT32
    return MemoryEstimate(parameters=weights, gradients=weights, optimizer=2 * weights,
                          reference=weights if reference else 0, activations=activation_bytes(shape, rows, length),
                          sampling_kv=kv, rows=rows, length=length)


def for_config(config: Any, *, reference: bool, task, tokenizer, source: str) -> MemoryEstimate:
    """The estimate for a resolved trainer config (its traces_per_step() says how many traces one optimiser step
    scores); `reference`: whether the trainer keeps a frozen copy of the model."""
    length = sequence_length(tokenizer, task, config.split, config.max_new_tokens)
    return estimate(model_shape(source), config, length, reference=reference, traces_per_step=config.traces_per_step())
