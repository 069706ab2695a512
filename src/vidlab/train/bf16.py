"""bf16 on this machine for this model: is it faster than fp32, and is it right?

`probe_bf16` answers both at start-up (the trainer's `amp: auto`); `locate_bf16_fault` answers
the second when a bf16 step goes NaN/inf mid-run.

Rightness is checked layer by layer, not end to end. A BatchNorm network at initialisation
amplifies any perturbation layer after layer (bf16 rounding of 0.3 % at the stem becomes ~6 %
at the last block of r2plus1d_tiny, and the gradients reaching the stem differ from fp32's by
~45 %), so whole-model comparisons cannot tell rounding from a broken kernel. Each layer with
weights, recomputed in fp32 from the very input and output gradient its bf16 kernel saw, differs
only by bf16 rounding (0.3–0.7 % on every tiny model of the zoo); a wrong kernel differs by
~100 %, and is named.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

MAX_LAYER_ERROR = 0.1
"""Largest relative error (L2) of a layer's bf16 output or weight gradient against the same
layer in fp32 on the same input. bf16 rounding: under 1 %; a wrong kernel: ~100 %."""


@dataclass
class Bf16Probe:
    """What `probe_bf16` measured: seconds per training step and how bf16's layers compared."""

    fp32_s: float
    bf16_s: float
    finite: bool
    worst_error: float
    """The largest per-layer relative error of bf16 against fp32 (outputs and weight grads)."""
    worst_layer: str = ""

    @property
    def speedup(self) -> float:
        return self.fp32_s / max(self.bf16_s, 1e-12)

    @property
    def agrees(self) -> bool:
        return self.finite and self.worst_error <= MAX_LAYER_ERROR


def probe_bf16(model: nn.Module, example: torch.Tensor, num_classes: int,
               steps: int = 2) -> Bf16Probe:
    """Time forward+backward of `model` on `example` in fp32 and in bf16 autocast, alternately,
    then check every layer's bf16 output and weight gradient against fp32 (`layer_errors`).

    Runs on copies in training mode: the caller's weights, BN statistics, gradients and RNG are
    untouched. The first round is a warm-up.
    """
    probe = copy.deepcopy(model).train()
    target = torch.arange(example.shape[0], device=example.device) % max(1, num_classes)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    with _forked_rng(example.device):
        for i in range(steps + 1):
            for name in ("fp32", "bf16"):
                t0 = time.perf_counter()
                _step(probe, example, target, bf16=name == "bf16")
                if example.device.type == "cuda":
                    torch.cuda.synchronize(example.device)
                if i:
                    times[name].append(time.perf_counter() - t0)
        # two clips suffice to compare kernels and keep the stored activations small
        errors, finite = layer_errors(model, example[:2], target[:2])
    worst = max(errors, key=errors.get, default="")
    return Bf16Probe(fp32_s=min(times["fp32"]), bf16_s=min(times["bf16"]), finite=finite,
                     worst_error=errors.get(worst, 0.0) if finite else float("inf"),
                     worst_layer=worst)


def layer_errors(model: nn.Module, x: torch.Tensor,
                 target: torch.Tensor) -> tuple[dict[str, float], bool]:
    """Per leaf layer with weights: the relative error of its bf16 output and weight gradients
    against the same layer run in fp32 on the input and output gradient the bf16 pass gave it;
    and whether the bf16 loss and every gradient were finite. Runs on a copy."""
    probe = copy.deepcopy(model).train()
    seen: dict[str, dict[str, Any]] = {}

    def record(name: str):
        def hook(module: nn.Module, args: tuple, out: Any) -> None:
            if not (args and isinstance(args[0], torch.Tensor) and isinstance(out, torch.Tensor)):
                return
            entry = {"module": module, "x": args[0].detach().clone(),
                     "y": out.detach().float().clone()}
            seen[name] = entry
            if out.requires_grad:
                out.register_hook(lambda g: entry.__setitem__("g", g.detach().float().clone()))
        return hook

    # leaf layers with weights: a composite's own (e.g. a position embedding) would compare a
    # whole sub-network, whose rounding is amplified end to end
    layers = [(n, m) for n, m in probe.named_modules()
              if any(True for _ in m.parameters(recurse=False)) and next(m.children(), None) is None]
    handles = [m.register_forward_hook(record(n)) for n, m in layers]
    try:
        torch.manual_seed(0)
        finite = _step(probe, x, target, bf16=True)
    finally:
        for h in handles:
            h.remove()
    errors = {}
    for name, entry in seen.items():
        try:
            errors[f"{name} ({type(entry['module']).__name__})"] = _layer_error(entry)
        except (TypeError, RuntimeError):  # a layer that cannot run on its first input alone
            continue
    return errors, finite


def locate_bf16_fault(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> str | None:
    """Why a bf16 training step went NaN/inf: the module whose bf16 output first was not finite
    ("the backward pass" when every output was), or None when fp32 is not finite on the same
    batch either (the model itself diverged: precision is not the cause) or bf16 now is.

    Runs on a copy in training mode, with the RNG forked (same dropout draw in both passes).
    """
    probe = copy.deepcopy(model).train()
    first: list[str] = []

    def check(name: str):
        def hook(module: nn.Module, args: object, out: object) -> None:
            if not first and isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
                first.append(f"{name or 'the model'} ({type(module).__name__})")
        return hook

    with _forked_rng(x.device):
        torch.manual_seed(0)
        if not _step(probe, x, y, bf16=False, loss_fn=loss_fn):
            return None
        handles = [m.register_forward_hook(check(n)) for n, m in probe.named_modules()]
        try:
            torch.manual_seed(0)
            finite = _step(probe, x, y, bf16=True, loss_fn=loss_fn)
        finally:
            for h in handles:
                h.remove()
    if finite:
        return None
    return first[0] if first else "the backward pass"


def _step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool,
          loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> bool:
    """One forward+backward (gradients left in `.grad`, zeroed first); True when the loss and
    every gradient are finite."""
    model.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    loss = (loss_fn or nn.functional.cross_entropy)(logits.float(), y)
    loss.backward()
    return bool(torch.isfinite(loss)) and all(
        bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)


def _layer_error(entry: dict[str, Any]) -> float:
    """Relative error of one layer's bf16 output and weight gradients against fp32."""
    module = entry["module"]
    reference = copy.deepcopy(module).float()
    x = entry["x"].float().requires_grad_(False)
    with torch.autocast(x.device.type, enabled=False):
        y = reference(x.clone())
    errors = [_relative(entry["y"], y)]
    if "g" in entry:
        params = [p for p in reference.parameters(recurse=False) if p.requires_grad]
        grads = torch.autograd.grad(y, params, entry["g"].to(y.dtype), allow_unused=True)
        mine = [p.grad for p in module.parameters(recurse=False) if p.requires_grad]
        errors += [_relative(a, b) for a, b in zip(mine, grads, strict=True)
                   if a is not None and b is not None]
    return max(errors)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def _forked_rng(device: torch.device):
    """Fork the global RNG (and this CUDA device's): probing must not shift the run's stream."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
