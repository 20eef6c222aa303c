"""FSDP2 (torch's `fully_shard`) for the trainers: sharding the policy on CPU, where accelerate does not, and what
sharded parameters need from a trainer wherever they were sharded.

accelerate 1.15 selects FSDP on GPU-family devices only; launched with an FSDP config on CPU it runs plain
multi-process DDP (DistributedType.MULTI_CPU, gloo). torch's FSDP2 itself runs on CPU with gloo, so a run launched
with an FSDP config on CPU is sharded here with `fully_shard` over a CPU device mesh, one unit per decoder layer
(the model's `_no_split_modules`, accelerate's TRANSFORMER_BASED_WRAP) and the root last, and the policy is not
handed to accelerate's `prepare` (which would wrap it in DDP). The frozen reference is never sharded: it takes no
gradient and no optimiser state, and each process holds it whole.

Sharded parameters change three things for a trainer:
- Generation: every forward of a sharded model all-gathers its parameters, a collective, and each process decodes
  a different number of steps (its own prompts), so the processes would wait on each other forever. `gathered`
  all-gathers the parameters once and keeps them whole (no re-sharding after a forward) while a trainer samples
  or evaluates; then any process can run any number of forwards alone.
- Scoring: each micro-batch's forward and backward are collectives, so every process scores the same number of
  micro-batches (micro_batch_tokens, which splits by each process's own lengths, is refused), and gradients are
  reduce-scattered once per optimiser step (`no_sync` around every micro-batch but the last).
- Checkpoints and resumable states: the parameters and Adam's moments are DTensor shards; `full_state_dict`
  and `full_optimizer_state` gather them (every process takes part), `load_full_state` shards them back.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from score_bench.harness.contracts.errors import InputError

__all__ = ["wants_cpu_fsdp", "check_cpu_fsdp", "shard", "is_sharded", "gathered", "no_sync", "state_dict",
           "full_state_dict", "full_optimizer_state", "load_full_state"]


def wants_cpu_fsdp(accelerator) -> bool:
    """Whether the launch asked for FSDP (an accelerate FSDP config or `--use_fsdp`) and accelerate, on CPU, gave
    plain multi-process DDP instead: the run is then sharded here."""
    from accelerate.utils import DistributedType, parse_flag_from_env

    return (parse_flag_from_env("ACCELERATE_USE_FSDP") and accelerator.distributed_type == DistributedType.MULTI_CPU
            and accelerator.num_processes > 1)


def check_cpu_fsdp(config: Any) -> None:
    """Refuse, in one line naming the setting, what FSDP on CPU does not run: FSDP1, LoRA (peft's in-place merge
    of sharded weights is untested) and micro_batch_tokens (the processes must score equally many micro-batches)."""
    version = os.environ.get("FSDP_VERSION", "2")
    if version != "2":
        raise InputError(f"FSDP on CPU is torch's FSDP2 (fully_shard); the accelerate config asks for fsdp_version "
                         f"{version}: set fsdp_version: 2")
    if config.lora_r > 0:
        raise InputError("lora_r > 0 is not supported with FSDP on CPU; train LoRA without FSDP (DDP or one process)")
    if config.micro_batch_tokens is not None:
        raise InputError("micro_batch_tokens is not supported under FSDP: each process would split its batch into "
                         "a different number of micro-batches, and every sharded forward is a collective; "
                         "use micro_batch_size")


def shard(model, world_size: int):
    """`model` sharded in place with FSDP2 over a CPU mesh of `world_size` processes: each decoder layer (a class
    named in `_no_split_modules`) is a unit, then the root. Build the optimiser after this (the parameters are
    replaced by DTensor shards)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world_size,))
    layers = set(getattr(model, "_no_split_modules", None) or ())
    for module in model.modules():
        if type(module).__name__ in layers:
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _units(model) -> list:
    from torch.distributed.fsdp import FSDPModule

    return [module for module in model.modules() if isinstance(module, FSDPModule)]


def is_sharded(model) -> bool:
    return bool(_units(model))


@contextlib.contextmanager
def gathered(model) -> Iterator[None]:
    """Every process enters this together (it all-gathers): inside, `model`'s parameters are whole and stay whole
    after each forward, so a process can generate alone, for as many steps as it needs. Nothing for an
    unsharded model."""
    units = _units(model)
    if not units:
        yield
        return
    for unit in units:
        unit.set_reshard_after_forward(False)
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(True)


@contextlib.contextmanager
def no_sync(accelerator, model) -> Iterator[None]:
    """Gradients are not reduced across processes inside (they accumulate locally): FSDP2's
    set_requires_gradient_sync, or accelerate's no_sync for DDP."""
    from torch.distributed.fsdp import FSDPModule

    if not isinstance(model, FSDPModule):
        with accelerator.no_sync(model):
            yield
        return
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def full_state_dict(model) -> dict:
    """The whole, unsharded weights on CPU (every process takes part; each gets them)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def full_optimizer_state(model, optimizer) -> dict:
    """The optimiser state of the whole parameters, keyed by parameter name (every process takes part). Before
    the first step (a state saved once an SFT iteration's examples are chosen) there is none to gather: the
    optimiser's own empty state dict is returned, as torch's get_optimizer_state_dict would create the state by
    a zero-lr step, which makes the first real step Adam's second (about 0.74 of its size)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    if not optimizer.state:
        return optimizer.state_dict()
    return get_optimizer_state_dict(model, optimizer,
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_state(model, optimizer, weights: dict, optimizer_state: dict) -> None:
    """Shard whole weights and optimiser state (as full_state_dict / full_optimizer_state wrote them) into a
    sharded model and its optimiser. Every process passes the same, whole, state."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, weights, options=options)
    if optimizer_state["state"]:  # saved before the first step: the fresh optimiser is that state
        set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)


def state_dict(accelerator, policy) -> dict:
    """The policy's whole weights for a checkpoint (every process takes part): gathered here when this module
    sharded it, by accelerate (get_state_dict) otherwise."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.FSDP and is_sharded(policy):
        return full_state_dict(policy)
    return accelerator.get_state_dict(policy)
