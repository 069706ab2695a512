"""A model's stack of blocks: what layer-wise LR decay, block freezing and FSDP act on.

A transformer is embeddings → N blocks → norm/head. Every parameter gets a layer id in the
recipe of BEiT/VideoMAE fine-tuning: 0 for what comes before the first block, i + 1 for block
i, N + 1 for what comes after (final norm, head), in the model's registration order.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidlab.errors import ConfigError


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's `blocks()` when it says, else its longest `nn.ModuleList`."""
    own = getattr(model, "blocks", None)
    if callable(own):
        return own()
    if isinstance(own, nn.ModuleList):
        return own
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        raise ConfigError(f"{type(model).__name__} has no stack of blocks (no nn.ModuleList) for "
                          "layer-wise LR decay, block freezing or FSDP")
    return max(lists, key=len)


def layer_ids(model: nn.Module) -> tuple[dict[str, int], int]:
    """`({parameter name: layer id}, number of blocks)` (ids 0 … N+1, see the module doc)."""
    blocks = find_blocks(model)
    owner = {id(p): i for i, block in enumerate(blocks) for p in block.parameters()}
    ids: dict[str, int] = {}
    seen_block = False
    for name, p in model.named_parameters():
        if id(p) in owner:
            ids[name], seen_block = owner[id(p)] + 1, True
        else:
            ids[name] = len(blocks) + 1 if seen_block else 0
    return ids, len(blocks)


def freeze_first_blocks(model: nn.Module, n: int) -> int:
    """Freeze the embeddings and the first `n` blocks; returns the parameters frozen."""
    if n <= 0:
        return 0
    ids, depth = layer_ids(model)
    if n > depth:
        raise ConfigError(f"model.freeze_blocks={n} but {type(model).__name__} has {depth} blocks")
    frozen = 0
    for name, p in model.named_parameters():
        if ids[name] <= n and p.requires_grad:
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def layer_decay_scales(model: nn.Module, decay: float) -> dict[str, float]:
    """Per parameter name, the LR multiplier `decay ** (N + 1 − layer id)` (head: 1)."""
    ids, depth = layer_ids(model)
    return {name: decay ** (depth + 1 - i) for name, i in ids.items()}


def checkpoint_blocks(model: nn.Module) -> int:
    """Recompute every block's activations in the backward pass instead of keeping them.

    Each block's own `forward` is wrapped in place (parameter names, hooks and FSDP sharding
    stay as they are); in eval mode or without gradients the block runs as usual. Returns the
    number of blocks wrapped.
    """
    blocks = find_blocks(model)
    for block in blocks:
        block.forward = _Checkpointed(block, block.forward)
    return len(blocks)


class _Checkpointed:
    """A block's bound `forward`, run under `torch.utils.checkpoint` while training."""

    def __init__(self, block: nn.Module, forward):
        self.block, self.forward = block, forward

    def __call__(self, *args, **kwargs):
        if self.block.training and torch.is_grad_enabled():
            return checkpoint(self.forward, *args, use_reentrant=False, **kwargs)
        return self.forward(*args, **kwargs)
