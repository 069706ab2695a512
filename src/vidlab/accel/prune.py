"""Structured L1 filter pruning that really removes channels, and unstructured magnitude pruning.

Structured: a *prunable group* is a convolution whose output channels feed only the next
convolution of the same chain (through its BatchNorm and channel-wise layers: activations,
pooling, dropout), never a residual sum or the head. In torchvision-style residual blocks
(`conv1`[, `bn1`], `conv2`[, `bn2`][, `conv3`, `bn3`]) that is each block's inner channels (conv1 out / conv2 in) and,
for R(2+1)D, the midplanes of every factorised convolution and of the stem; block outputs stay
as they are, so residual groups remain consistent. The filters with the smallest L1 norm go,
together with their BN entries and the matching input channels of the next convolution.

Unstructured: global magnitude pruning zeroes the smallest weights of every conv/linear layer;
the tensors stay dense, so it shrinks compressed files, not latency (reported, not hidden).
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vidlab.errors import ModelError

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CHANNELWISE = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.LeakyReLU, nn.ELU,
                nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.MaxPool1d, nn.MaxPool2d,
                nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_BLOCK_PARTS = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")
"""Call order inside a residual block: torchvision's 3D (`convN` Sequentials) and 2D (`convN`,
`bnN`) layouts; activations between them are functional or shared modules, channel-wise."""
_BARRIER = ("<barrier>", None)


@dataclass
class PruneGroup:
    """A producer conv, its BN (optional) and the conv consuming its output channels."""

    producer: str
    bn: str | None
    consumer: str
    channels: int


def _is_block(module: nn.Module) -> bool:
    names = dict(module.named_children())
    return not isinstance(module, nn.Sequential) and "conv1" in names and "conv2" in names


def _flatten(module: nn.Module, prefix: str, chains: list, todo: list) -> list[tuple[str, Any]]:
    """The leaves of a Sequential in call order; other containers become barriers (visited later)."""
    if isinstance(module, nn.Sequential):
        out: list[tuple[str, Any]] = []
        for name, child in module.named_children():
            out += _flatten(child, f"{prefix}{name}.", chains, todo)
        return out
    if isinstance(module, _CONV + _BN + _CHANNELWISE):
        return [(prefix[:-1], module)]
    todo.append((prefix, module))
    return [_BARRIER]


def _chains(model: nn.Module) -> list[list[tuple[str, Any]]]:
    """Every straight-line run of layers: Sequentials, and residual blocks' conv1→conv2(→conv3)."""
    chains: list[list[tuple[str, Any]]] = []
    todo: list[tuple[str, nn.Module]] = [("", model)]
    while todo:
        prefix, module = todo.pop()
        if isinstance(module, nn.Sequential):
            chains.append(_flatten(module, prefix, chains, todo))
        elif _is_block(module):
            parts = dict(module.named_children())
            chain: list[tuple[str, Any]] = []
            for part in _BLOCK_PARTS:
                if part in parts:
                    chain += _flatten(parts[part], f"{prefix}{part}.", chains, todo)
            chains.append(chain)
            todo += [(f"{prefix}{n}.", c) for n, c in parts.items() if n not in _BLOCK_PARTS]
        else:
            todo += [(f"{prefix}{n}.", c) for n, c in module.named_children()]
    return chains


def find_groups(model: nn.Module) -> list[PruneGroup]:
    """The prunable groups of `model` (see the module docstring), in module order."""
    groups = []
    for chain in _chains(model):
        for i, (name, layer) in enumerate(chain):
            if not isinstance(layer, _CONV) or layer.groups != 1:
                continue
            bn, j = None, i + 1
            if j < len(chain) and isinstance(chain[j][1], _BN) and chain[j][1].num_features == layer.out_channels:
                bn, j = chain[j][0], j + 1
            while j < len(chain) and isinstance(chain[j][1], _CHANNELWISE):
                j += 1
            if j < len(chain) and isinstance(chain[j][1], _CONV) and chain[j][1].groups == 1 \
                    and chain[j][1].in_channels == layer.out_channels:
                groups.append(PruneGroup(name, bn, chain[j][0], layer.out_channels))
    return sorted(groups, key=lambda g: g.producer)


def _keep_count(channels: int, ratio: float, round_to: int) -> int:
    keep = channels * (1.0 - ratio)
    if round_to > 1:
        keep = round(keep / round_to) * round_to
    return int(min(channels, max(1, round(keep))))


def _take(param: torch.Tensor | None, idx: torch.Tensor, dim: int) -> nn.Parameter | None:
    if param is None:
        return None
    return nn.Parameter(param.data.index_select(dim, idx).clone(), requires_grad=param.requires_grad)


def prune_structured(model: nn.Module, ratio: float, round_to: int = 1,
                     ignore: tuple[str, ...] = ("stem",)) -> dict[str, Any]:
    """Remove `ratio` of the filters of every prunable group by L1 norm (in place).

    Groups under a top-level module named in `ignore` are kept whole: the stem has few
    channels, sees raw pixels and costs little, so pruning it loses accuracy for no speed.

    Returns `{"ratio", "groups": {producer: [before, after]}, "params_before", "params_after"}`
    and raises `ModelError` when the model has no group this pruner understands.
    """
    if not 0.0 < ratio < 1.0:
        raise ModelError(f"prune ratio must be in (0, 1), got {ratio}")
    groups = [g for g in find_groups(model) if g.producer.split(".")[0] not in ignore]
    if not groups:
        raise ModelError(
            f"structured pruning does not support {type(model).__name__}: no convolution feeds "
            "another through channel-wise layers only (supported: residual 2D/3D CNNs such as "
            "r3d/mc3/r2plus1d, and plain conv stacks)")
    modules = dict(model.named_modules())
    before = sum(p.numel() for p in model.parameters())
    report: dict[str, list[int]] = {}
    for g in groups:
        prod, cons = modules[g.producer], modules[g.consumer]
        keep = _keep_count(prod.out_channels, ratio, round_to)
        l1 = prod.weight.detach().abs().flatten(1).sum(1)
        idx = torch.sort(torch.topk(l1, keep).indices).values
        prod.weight, prod.bias = _take(prod.weight, idx, 0), _take(prod.bias, idx, 0)
        prod.out_channels = keep
        if g.bn is not None:
            bn = modules[g.bn]
            bn.weight, bn.bias = _take(bn.weight, idx, 0), _take(bn.bias, idx, 0)
            for buf in ("running_mean", "running_var"):
                if getattr(bn, buf) is not None:
                    setattr(bn, buf, getattr(bn, buf).index_select(0, idx).clone())
            bn.num_features = keep
        cons.weight = _take(cons.weight, idx, 1)
        cons.in_channels = keep
        report[g.producer] = [g.channels, keep]
    return {"ratio": ratio, "groups": report, "params_before": before,
            "params_after": sum(p.numel() for p in model.parameters())}


def channel_spec(model: nn.Module) -> dict[str, int]:
    """Output channels of every convolution (what `Bundle.build_model` needs to rebuild it)."""
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, _CONV)}


def prune_unstructured(model: nn.Module, sparsity: float) -> dict[str, Any]:
    """Zero the `sparsity` fraction of smallest-magnitude conv/linear weights, globally (in place).

    Returns per-layer and total sparsity, plus the dense and zlib-compressed sizes of the
    weights (MB), which is what unstructured sparsity can buy without sparse kernels.
    """
    if not 0.0 < sparsity < 1.0:
        raise ModelError(f"sparsity must be in (0, 1), got {sparsity}")
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (*_CONV, nn.Linear))}
    if not layers:
        raise ModelError(f"{type(model).__name__} has no conv or linear weights to prune")
    size_before = compressed_mb(model)
    magnitudes = torch.cat([m.weight.detach().abs().flatten() for m in layers.values()])
    k = max(1, int(sparsity * magnitudes.numel()))
    threshold = torch.kthvalue(magnitudes, k).values
    per_layer, zeros, total = {}, 0, 0
    with torch.no_grad():
        for name, m in layers.items():
            m.weight.mul_((m.weight.abs() > threshold).to(m.weight.dtype))
            z = int((m.weight == 0).sum())
            per_layer[name] = z / m.weight.numel()
            zeros, total = zeros + z, total + m.weight.numel()
    return {"sparsity": zeros / total, "target": sparsity, "layers": per_layer,
            "nonzero_weights": total - zeros, "dense_mb": sum(p.numel() * p.element_size()
                                                            for p in model.parameters()) / 1e6,
            "compressed_mb_before": size_before, "compressed_mb_after": compressed_mb(model)}


def compressed_mb(model: nn.Module) -> float:
    """zlib size (MB) of the model's parameters: what a zipped download of the weights costs."""
    buf = io.BytesIO()
    for p in model.state_dict().values():
        buf.write(p.detach().cpu().contiguous().numpy().tobytes())
    return len(zlib.compress(buf.getvalue(), 6)) / 1e6


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
