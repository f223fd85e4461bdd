"""Process groups for multi-process training: the same `dbmtl train` runs alone or under torchrun.

torchrun (or `accelerate launch`, or SLURM's srun with the variables set) gives every process RANK,
WORLD_SIZE and LOCAL_RANK; with WORLD_SIZE > 1 we join a process group (NCCL on GPUs, gloo on CPU) and wrap
the model in DDP (replicated weights, averaged gradients) or FSDP (weights, gradients and optimizer state
sharded across processes, for models that do not fit one GPU). Without those variables nothing changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

PARALLEL_MODES = ("ddp", "fsdp")
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands: rank r of world_size; rank 0 writes logs and checkpoints."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when `flag` is true on any rank (one small all-reduce)."""
        if not self.active:
            return flag
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank (small picklable objects only)."""
        if not self.active:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def init_process_group(device: str = "auto") -> tuple[ProcessGroup, torch.device]:
    """Join torchrun's process group when there is one; pick this process's device.

    device "auto" means cuda:LOCAL_RANK when CUDA exists, else cpu."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    group = ProcessGroup(rank, world, local)
    if group.active and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=30),
                                **({"device_id": dev} if dev.type == "cuda" else {}))
    return group, dev


def destroy_process_group() -> None:
    """Leave the process group while the interpreter is fully alive.

    Callers drop their trainer (and so the DDP/FSDP wrapper holding the group) first; the collection here
    frees what reference cycles still hold, so gloo's worker threads are stopped now and not during
    interpreter shutdown, where they can abort the process (SIGABRT, "terminate called without an
    active exception") after a run that finished correctly."""
    import gc

    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, group: ProcessGroup, device: torch.device, mode: str = "ddp") -> torch.nn.Module:
    """The module the training step calls: the model itself on one process, else DDP or FSDP around it."""
    if mode not in PARALLEL_MODES:
        raise ValueError(f"parallel must be one of {PARALLEL_MODES}, not {mode!r}")
    if not group.active:
        return model
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    from torch.distributed.fsdp import fully_shard

    for block in model.blocks:  # shard block by block, so only one block is gathered at a time
        fully_shard(block)
    fully_shard(model)
    return model


def gradient_sync(wrapped: torch.nn.Module, enabled: bool):
    """Context for one backward pass: gradients are averaged across processes only when `enabled`
    (the last micro-batch of an optimizer step), so accumulation costs one all-reduce per step."""
    from contextlib import nullcontext

    if hasattr(wrapped, "no_sync"):  # DDP
        return nullcontext() if enabled else wrapped.no_sync()
    if hasattr(wrapped, "set_requires_gradient_sync"):  # FSDP2
        wrapped.set_requires_gradient_sync(enabled)
    return nullcontext()


def full_model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded weights on CPU (a collective under FSDP: every rank must call it; rank 0 gets them)."""
    return get_model_state_dict(model, options=_FULL)


def full_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Optimizer state keyed by parameter name (not position), unsharded, on CPU; a collective."""
    return get_optimizer_state_dict(model, optimizer, options=_FULL)


def load_full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, weights: dict, optim: dict | None) -> None:
    """Every rank loads the same full state; FSDP keeps its own shard of it."""
    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, weights, options=options)
    if optimizer is not None and optim is not None:
        set_optimizer_state_dict(model, optimizer, optim, options=options)
