"""The memory options every trainer's config carries, each through the library built for it: activation
(gradient) checkpointing from transformers, mixed precision from accelerate, LoRA from peft, 8-bit AdamW from
bitsandbytes. `harness.training.run.start_run` validates them before anything loads and applies them to the model it
loads; trainers build their optimiser, their frozen reference and their checkpoint weights through the functions
here, so no trainer knows which options are on.

LoRA. The frozen reference is the policy itself with its adapters disabled (peft's `disable_adapter`): one full
copy of the weights in memory, not two. The final checkpoint is either merged (a plain transformers checkpoint
that eval and vLLM load) or the adapter alone (`lora_save`). Merging uses peft's in-place merge_adapter /
unmerge_adapter (as TRL does to sync weights into vLLM) around the save, so saving needs no second copy either;
unmerging after a mid-run save (Stage I) restores the base weights up to float rounding.

Gradient checkpointing. transformers checkpoints a decoder layer only when that layer is in training mode, but the
trainers score in eval mode on purpose (the log-probabilities must be those of the policy that sampled, without
dropout). A forward pre-hook therefore flags each checkpointing layer itself as training, and only it: its
submodules (attention, MLP, dropout) stay in eval mode, so the numbers are those without checkpointing. Layers
that apply dropout through their own flag rather than a submodule's (BART-style encoder layers, not Llama, Qwen,
Mistral or Gemma) would drop out: those models should not use this option.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass
from typing import Annotated, Any, Iterator, Literal

import torch

from score_bench.harness.contracts.errors import InputError, extra_hint
from score_bench.harness.contracts.fields import NON_NEGATIVE, POSITIVE, Settings
from score_bench.harness.training import fsdp

__all__ = ["MemoryOptions", "validate_memory_options", "check_sharding", "apply_memory_options", "build_optimizer", "FrozenReference",
           "frozen_reference", "checkpoint_weights", "uses_lora"]


@dataclass(frozen=True)
class MemoryOptions(Settings):
    """The memory fields of every trainer config (harness.training.config.RunConfig subclasses this)."""

    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward pass instead of keeping them
    (transformers' activation/gradient_checkpointing_enable, non-reentrant): activation memory of a scored forward drops to
    about one layer's, for about one more forward pass of compute. Same gradients as without."""
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """accelerate's mixed precision for the scored forward passes (weights and optimiser state stay float32;
    fp16 adds accelerate's loss scaling). Needs a CUDA device: refused on CPU, where training runs in float32."""
    lora_r: Annotated[int, NON_NEGATIVE] = 0
    """LoRA rank (peft). 0 trains every weight. With LoRA only the adapters train, and the frozen reference is the
    same model with its adapters disabled, so the weights are held once. Dropout on the adapters is not offered:
    the trainers score in eval mode, so the scored policy is the one that sampled."""
    lora_alpha: Annotated[float, POSITIVE] = 16.0
    """LoRA scaling numerator (peft's lora_alpha): the update is (lora_alpha / lora_r) * B A."""
    lora_target_modules: str = "all-linear"
    """Comma-separated module names to adapt (e.g. 'q_proj,v_proj'), or 'all-linear' (peft's target_modules)."""
    lora_save: Literal["merged", "adapter"] = "merged"
    """What a checkpoint of a LoRA run holds: 'merged' (a plain checkpoint with the adapters folded into the
    weights, which eval and vLLM load) or 'adapter' (peft's adapter files, naming the base they apply to)."""
    optimizer: Literal["adam", "adamw", "adamw_8bit"] = "adam"
    """torch Adam (weight_decay is L2, the default so far), torch AdamW (decoupled weight decay), or bitsandbytes'
    AdamW8bit (8-bit optimiser state; needs bitsandbytes and a device it supports). With weight_decay 0 the first
    two take the same steps."""


def uses_lora(config: Any) -> bool:
    return config.lora_r > 0


def validate_memory_options(config: MemoryOptions, device: str) -> None:
    """Refuse, in one line naming the field, options that cannot run on `device` or with the installed packages
    (their ranges are checked as the config is built). Called before anything is loaded or written."""
    if uses_lora(config):
        if not _target_modules(config):
            raise InputError("lora_target_modules is empty; name modules (e.g. 'q_proj,v_proj') or use 'all-linear'")
        if importlib.util.find_spec("peft") is None:
            raise InputError(f"lora_r > 0 needs peft: {extra_hint('lora')}")
        if config.backend != "transformers":
            raise InputError(f"lora_r > 0 samples with backend transformers only (the {config.backend} sampler "
                             "loads the policy's weights by their plain names, not a peft model's)")
    if config.mixed_precision != "no":
        if not device.startswith("cuda"):
            raise InputError(f"mixed_precision '{config.mixed_precision}' needs a CUDA device; on {device} training "
                             "runs in float32 (set mixed_precision=no)")
        if config.mixed_precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise InputError("mixed_precision 'bf16' is not supported by this GPU; use fp16")
    if config.optimizer == "adamw_8bit":
        try:
            import bitsandbytes  # noqa: F401
        except Exception as err:  # ImportError, or a binary that fails to load on this machine
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise InputError(f"optimizer 'adamw_8bit' needs bitsandbytes, which does not import here ({first}); "
                             f"{extra_hint('bitsandbytes')}, or use optimizer=adamw") from None


def check_sharding(accelerator) -> None:
    """Refuse a launch that asked accelerate for FSDP or DeepSpeed (a config file or launcher flag) but did not
    get it: accelerate 1.x selects them on GPU-family devices only, and on CPU it silently runs plain
    multi-process DDP instead, so a run would report FSDP while holding whole copies."""
    from accelerate.utils import DistributedType, parse_flag_from_env

    for flag, kind, name in (("ACCELERATE_USE_FSDP", DistributedType.FSDP, "FSDP"),
                             ("ACCELERATE_USE_DEEPSPEED", DistributedType.DEEPSPEED, "DeepSpeed")):
        if parse_flag_from_env(flag) and accelerator.distributed_type != kind:
            raise InputError(f"the accelerate config asks for {name}, but accelerate runs "
                             f"{accelerator.distributed_type.value} on {accelerator.device.type}; "
                             f"{name} needs GPUs (use configs/accelerate/ddp.yaml on CPU)")


def _target_modules(config: MemoryOptions) -> str | list[str]:
    names = [name.strip() for name in config.lora_target_modules.split(",") if name.strip()]
    return "all-linear" if names == ["all-linear"] else names


def apply_memory_options(model, config: MemoryOptions):
    """`model` with gradient checkpointing and LoRA as configured: the same model, or a peft model wrapping it.
    Target modules that match nothing fail as an InputError."""
    if config.gradient_checkpointing:
        from transformers.modeling_layers import GradientCheckpointingLayer

        if not model.supports_gradient_checkpointing:
            raise InputError(f"gradient_checkpointing: {type(model).__name__} does not support it")
        # activation_checkpointing_enable is the name from transformers 5.2x on; the old one warns there.
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        for module in model.modules():
            if isinstance(module, GradientCheckpointingLayer):
                module.register_forward_pre_hook(_flag_training)
    if uses_lora(config):
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                          target_modules=_target_modules(config), task_type="CAUSAL_LM")
        try:
            model = get_peft_model(model, lora)
        except ValueError as err:  # peft: "Target modules {...} not found in the base model"
            raise InputError(f"lora_target_modules '{config.lora_target_modules}': "
                             f"{str(err).strip().splitlines()[0]}") from None
    return model


def _flag_training(module: torch.nn.Module, args: tuple) -> None:
    """Forward pre-hook: the layer itself (not its submodules) counts as training, so transformers checkpoints it
    whenever gradients are on (generation and the reference run under no_grad and are not checkpointed)."""
    module.training = True


def build_optimizer(model, config: Any) -> torch.optim.Optimizer:
    """The configured optimiser over the trainable parameters only (with LoRA: the adapters)."""
    params = [p for p in model.parameters() if p.requires_grad]
    kwargs = dict(lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, **kwargs)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, **kwargs)
    import bitsandbytes

    return bitsandbytes.optim.AdamW8bit(params, **kwargs)


class FrozenReference:
    """The frozen reference policy, called like a model (under no_grad and the run's autocast): a separate frozen
    copy of the base, or, with LoRA, the policy with its adapters disabled (peft), run through the prepared
    (wrapped) policy so FSDP gathers its shards as for the policy."""

    def __init__(self, model, accelerator, adapters=None):
        self.model = model
        self.accelerator = accelerator
        self.adapters = adapters
        """The peft model whose adapters are disabled around each call; None for a separate copy."""

    def parameters(self):
        """The frozen weights it scores with (with LoRA: the policy's base weights, not its adapters)."""
        if self.adapters is None:
            return self.model.parameters()
        prefix = self.adapters.base_model.prefix
        return (p for name, p in self.adapters.named_parameters() if prefix not in name)

    def __call__(self, **inputs):
        disabled = self.adapters.disable_adapter() if self.adapters is not None else contextlib.nullcontext()
        with torch.no_grad(), self.accelerator.autocast(), disabled:
            return self.model(**inputs)


def frozen_reference(config: Any, accelerator, policy, model, source: str, device: str) -> FrozenReference:
    """The reference of a run's `model` (bare) and `policy` (the same, prepared): with LoRA the policy with
    adapters disabled; otherwise a float32 copy of config.model loaded from `source`, never wrapped for training
    (no gradient, no optimiser state; under FSDP each process holds it whole)."""
    from score_bench.harness.generation.backends.transformers import load_model

    if uses_lora(config):
        return FrozenReference(policy, accelerator, adapters=model)
    copy = load_model(source, config.model, torch.float32).to(device).eval()
    copy.requires_grad_(False)
    return FrozenReference(copy, accelerator)


@contextlib.contextmanager
def checkpoint_weights(accelerator, policy, model, config: Any) -> Iterator[tuple[Any, dict | None]]:
    """Yields (the model whose save_pretrained writes the checkpoint, the state dict to write or None for its own).
    Every process enters it (FSDP/DeepSpeed gather shards; a LoRA merge changes every process's weights alike).

    Without LoRA: the bare model and accelerate's gathered state dict. LoRA 'adapter': the peft model, which
    writes its adapter. LoRA 'merged': the base model and its weights with the adapters merged in place for the
    duration (no copy), under the base model's own names (peft's `.base_layer` level dropped and the adapter
    tensors left out, as TRL does when it loads merged weights into vLLM)."""
    if not uses_lora(config):
        yield model, fsdp.state_dict(accelerator, policy)
        return
    if config.lora_save == "adapter":
        yield model, None
        return
    prefix = model.base_model.prefix  # "lora_"
    model.merge_adapter()
    try:
        yield model.get_base_model(), {name.replace(".base_layer", ""): tensor for name, tensor
                                       in model.get_base_model().state_dict().items() if prefix not in name}
    finally:
        model.unmerge_adapter()
