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
dominate for small models with large vocabularies. The memory options (harness.training.memory_options) change it:
LoRA trains and keeps optimiser state for the adapters only and needs no reference copy; gradient checkpointing
keeps only each layer's input; mixed precision halves the layers' activations; 8-bit AdamW keeps 2 bytes of
state per trainable parameter. It is an estimate: allocator slack, framework buffers and
the sampler's transient tensors are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.runtime.device_memory import FLOAT32, device_memory, kv_cache_bytes

__all__ = ["ModelShape", "MemoryEstimate", "model_shape", "estimate", "sequence_length", "for_config",
           "trainable_parameters", "check_fits"]

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
    linears: tuple[tuple[str, int, int], ...] = ()
    """(module name, in features, out features) of each linear layer except the output head: what LoRA adapts."""


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
                ("optimiser state (2 moments)", self.optimizer), ("frozen reference", self.reference),
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
    model.tie_weights()  # on the meta device tied embeddings start untied; from_pretrained ties them
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    head = model.get_output_embeddings()
    linears = tuple((name, m.in_features, m.out_features) for name, m in model.named_modules()
                    if isinstance(m, torch.nn.Linear) and m is not head)
    return ModelShape(parameters=sum(p.numel() for p in model.parameters()), layers=text.num_hidden_layers,
                      hidden=text.hidden_size, heads=heads, kv_heads=getattr(text, "num_key_value_heads", heads) or heads,
                      vocab=text.vocab_size, linears=linears)


def sequence_length(tokenizer, task, split: str, max_new_tokens: int) -> int:
    """Tokens of the longest two-attempt conversation the run can score: the longest rendered first prompt among
    the first training problems, two attempts of max_new_tokens, the correction instruction as a user turn."""
    problems = task.problems(split)[:PROMPTS_MEASURED]
    if not problems:
        raise InputError(f"task '{task.name}' has no problems in split '{split}'")
    # return_dict=False: transformers 5 returns a BatchEncoding by default, whose len() is its 2 keys, not the tokens
    prompt = max(len(tokenizer.apply_chat_template(task.first_prompt(p), tokenize=True, add_generation_prompt=True,
                                                   return_dict=False))
                 for p in problems)
    turn = [{"role": "user", "content": task.correction_instruction}]
    instruction = len(tokenizer.apply_chat_template(turn, tokenize=True, add_generation_prompt=True,
                                                    return_dict=False))
    return prompt + instruction + 2 * max_new_tokens + 4  # + the end-of-turn tokens and their newlines


def activation_bytes(shape: ModelShape, rows: int, length: int, *, checkpointing: bool = False,
                     half: bool = False) -> int:
    """Activations kept for backward by one forward of `rows` x `length` tokens: float32, or 16-bit inside the
    layers under mixed precision (`half`). With gradient checkpointing only each layer's input is kept, plus one
    layer's activations while it is recomputed."""
    tokens = rows * length
    width = 1 if half else 2  # the formula counts 16-bit values; float32 doubles it
    per_layer = tokens * shape.hidden * (34 + 5 * shape.heads * length / shape.hidden) * width
    layers = (shape.layers * tokens * shape.hidden * 2 * width + per_layer) if checkpointing else shape.layers * per_layer
    logits = 3 * tokens * shape.vocab * FLOAT32
    return int(layers + logits)


def trainable_parameters(shape: ModelShape, config: Any) -> int:
    """All parameters, or with LoRA (lora_r > 0) the adapters: r x (in + out) per adapted linear layer."""
    rank = config.lora_r
    if rank <= 0:
        return shape.parameters
    targets = {t.strip() for t in config.lora_target_modules.split(",") if t.strip()}
    chosen = [(i, o) for name, i, o in shape.linears
              if "all-linear" in targets or name.rsplit(".", 1)[-1] in targets]
    return sum(rank * (i + o) for i, o in chosen)


def estimate(shape: ModelShape, config: Any, length: int, *, reference: bool, traces_per_step: int,
             world: int = 1) -> MemoryEstimate:
    """The estimate for a trainer `config` (micro_batch_size, micro_batch_tokens, max_new_tokens,
    generation_batch_size and the memory options of harness.training.memory_options) scoring `traces_per_step` traces
    per optimiser step over `world` processes. With LoRA the gradients and optimiser state are the adapters' and the
    reference costs nothing (it is the same weights with the adapters disabled); 8-bit AdamW keeps 2 bytes per
    trainable parameter."""
    rows = max(1, traces_per_step // world)
    if config.micro_batch_size:
        rows = min(rows, config.micro_batch_size)
    if config.micro_batch_tokens:
        rows = max(1, min(rows, config.micro_batch_tokens // length))
    kv = kv_cache_bytes(shape.layers, shape.kv_heads, shape.hidden // shape.heads,
                        length * config.generation_batch_size)
    weights = shape.parameters * FLOAT32
    trainable = trainable_parameters(shape, config)
    lora = config.lora_r > 0
    moments = 2 if config.optimizer == "adamw_8bit" else 2 * FLOAT32
    activations = activation_bytes(shape, rows, length, checkpointing=config.gradient_checkpointing,
                                   half=config.mixed_precision != "no")
    return MemoryEstimate(parameters=weights + (trainable * FLOAT32 if lora else 0), gradients=trainable * FLOAT32,
                          optimizer=trainable * moments, reference=weights if reference and not lora else 0,
                          activations=activations, sampling_kv=kv, rows=rows, length=length)


def for_config(config: Any, *, reference: bool, task, tokenizer, source: str) -> MemoryEstimate:
    """The estimate for a resolved trainer config (its traces_per_step() says how many traces one optimiser step
    scores); `reference`: whether the trainer keeps a frozen copy of the model."""
    length = sequence_length(tokenizer, task, config.split, config.generation.max_new_tokens)
    return estimate(model_shape(source), config, length, reference=reference, traces_per_step=config.traces_per_step())


def check_fits(estimate: MemoryEstimate, device: str) -> None:
    """Refuse, before anything is loaded, a run whose estimate per process exceeds all the memory of its device:
    it could only end out of memory (at best after its model has loaded). Processes of one launch that share the
    device need more still, so this is a floor, not a promise that the run fits."""
    available, holder = device_memory(device)
    if estimate.total > available:
        raise InputError(f"the run needs an estimated {estimate.total / 2**30:,.1f} GiB per process but {holder} has "
                         f"{available / 2**30:,.1f} GiB in all; lower batch_size, micro_batch_size, "
                         "generation_batch_size or max_new_tokens (`train --dry-run` shows the breakdown)")
