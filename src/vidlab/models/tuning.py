"""What this machine does fast: the faster memory format for a model (timed), and whether the
CPU has bf16 units (detected).

`channels_last_3d` speeds R3D-18 training ~1.9× on a Zen 3 CPU but slows R(2+1)D-18 training:
the answer depends on the model, the machine and train vs eval, so it is measured, not assumed.
"""

from __future__ import annotations

import copy
import logging
import time

import torch
from torch import nn

log = logging.getLogger(__name__)

FORMATS = (torch.contiguous_format, torch.channels_last_3d)


def _time_format(model: nn.Module, example: torch.Tensor, fmt: torch.memory_format, train: bool,
                 iters: int) -> float:
    model = model.to(memory_format=fmt) if _has_5d_weights(model) else model
    x = example.contiguous(memory_format=fmt) if example.ndim == 5 else example
    model.train(train)
    best = float("inf")
    for i in range(iters + 1):  # the first iteration warms up and is not counted
        start = time.perf_counter()
        if train:
            model(x).float().sum().backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode():
                model(x)
        if i:
            best = min(best, time.perf_counter() - start)
    return best


def _has_5d_weights(model: nn.Module) -> bool:
    return any(p.ndim == 5 for p in model.parameters())


def pick_memory_format(model: nn.Module, example: torch.Tensor, train: bool,
                       iters: int = 3) -> torch.memory_format:
    """Time `model` on `example` in contiguous vs `channels_last_3d`; return the faster format.

    Runs on a copy (the caller's weights, BN statistics and gradients are untouched), best of
    `iters` timed iterations each. A model without 5D weights always gets the contiguous format.
    Apply the result with `model.to(memory_format=fmt)` and `x.contiguous(memory_format=fmt)`.
    """
    if example.ndim != 5 or not _has_5d_weights(model):
        return torch.contiguous_format
    probe = copy.deepcopy(model)
    times = {fmt: _time_format(probe, example, fmt, train, iters) for fmt in FORMATS}
    best = min(times, key=times.get)
    log.info("memory format (%s): contiguous %.1f ms, channels_last_3d %.1f ms -> %s",
             "train" if train else "eval", times[FORMATS[0]] * 1e3, times[FORMATS[1]] * 1e3, best)
    return best


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AMX or AVX512-BF16): only then is bf16
    autocast fast on CPU (elsewhere it runs on emulated kernels, many times slower than fp32)."""
    try:
        caps = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older torch
        caps = ""
    if "AMX" in caps.upper():
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def bf16_is_fast(device: str | torch.device = "cpu") -> bool:
    """Whether bf16 runs on native units on `device` (a CUDA GPU with bf16, or `cpu_has_bf16`)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_bf16()
