"""FSDP2 for large models under torchrun: shard, checkpoint with torch.distributed.checkpoint,
gather the full weights for a bundle.

`shard(model)` applies `fully_shard` to every block of the model's stack (`models.blocks`) and
then to the root, so one block's parameters are gathered at a time. On CUDA with bf16 the
parameters compute in bf16 and gradients reduce in fp32 (`MixedPrecisionPolicy`). A checkpoint
is a DCP directory — each rank writes its own shards, nobody gathers a pickle — written to a
temporary sibling and renamed by rank 0 once every rank has finished, so a kill mid-save leaves
the previous checkpoint whole.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidlab.errors import CheckpointError
from vidlab.train.distributed import DistInfo, barrier


def shard(model: nn.Module, device: torch.device,
          param_dtype: torch.dtype | None = None) -> nn.Module:
    """`fully_shard` each block, then the whole model (in place); returns the model.

    `param_dtype` (e.g. bf16 on CUDA) is the compute dtype of the gathered parameters;
    gradients are reduced in fp32.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from vidlab.models.blocks import find_blocks

    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32) \
        if param_dtype is not None else MixedPrecisionPolicy()
    model.to(device)
    for block in find_blocks(model):
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def shard_for_training(model: nn.Module, device: torch.device, amp_dtype: torch.dtype | None,
                       is_main: bool) -> nn.Module | None:
    """Shard `model` in place (bf16 compute when training in bf16 on CUDA); returns rank 0's
    unsharded CPU copy, which `gather_into` fills for bundles (None on the other ranks)."""
    twin = copy.deepcopy(model).cpu().eval() if is_main else None
    bf16 = device.type == "cuda" and amp_dtype == torch.bfloat16
    shard(model, device, torch.bfloat16 if bf16 else None)
    return twin


def gather_into(twin: nn.Module | None, model: nn.Module) -> nn.Module | None:
    """All-gather the sharded `model`'s weights into rank 0's `twin` (every rank must call)."""
    state = full_state_dict(model)
    if twin is None:
        return None
    twin.load_state_dict(state)
    return twin


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded weights on CPU, on rank 0 (an empty dict elsewhere). Every rank must call."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                cpu_offload=True))


def save_sharded(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                 info: DistInfo) -> None:
    """Write model and optimizer shards to the DCP directory `path` (atomically, all ranks)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    tmp = path.with_name(f".{path.name}.tmp")
    if info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
    barrier(info)
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=str(tmp))
    barrier(info)
    if info.is_main:
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    barrier(info)


def load_sharded(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Read the DCP directory `path` back into the sharded model and optimizer (all ranks)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    if not path.is_dir():
        raise CheckpointError("no sharded (FSDP) checkpoint to resume from", path)
    model_state, optim_state = get_state_dict(model, optimizer)
    state: dict[str, Any] = {"model": model_state, "optimizer": optim_state}
    try:
        dcp.load(state, checkpoint_id=str(path))
    except Exception as exc:  # DCP raises several types for missing/foreign shards
        raise CheckpointError(f"unreadable sharded checkpoint ({str(exc).splitlines()[0]})",
                              path) from exc
    set_state_dict(model, optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optimizer"])


def local_norm(norm: torch.Tensor) -> torch.Tensor:
    """A gradient norm as a plain tensor (FSDP2 returns a DTensor)."""
    full = getattr(norm, "full_tensor", None)
    return full() if callable(full) else norm
