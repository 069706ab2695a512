"""Where training runs and in which precision: detected and measured, never assumed.

`amp: auto` picks bf16 autocast where it pays and fp32 elsewhere, and says why:
- CUDA: bf16 where the GPU has it, else fp16 with a grad scaler.
- CPU without bf16 units (AVX2 only): fp32. bf16 would run on emulated kernels, 26–430× slower
  for a 3D CNN (MEASURED.md).
- CPU with bf16 units (AMX, AVX512-BF16): a start-up probe (`vidlab.train.bf16.probe_bf16`)
  times a few training steps of the real model in both precisions on a copy, and bf16 is chosen
  when it is faster by a margin, finite, and every layer computes what it computes in fp32. The
  last check guards against a wrong bf16 kernel for one of the model's shapes (PyTorch has had
  such oneDNN bugs), which no rule about models or CPUs would catch.
An explicit `amp: bf16` is honoured everywhere (with a warning where it is emulated and slow).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from vidlab.models.tuning import cpu_has_bf16

if TYPE_CHECKING:
    from vidlab.data.config import DataConfig
    from vidlab.train.bf16 import Bf16Probe

log = logging.getLogger(__name__)

MIN_BF16_SPEEDUP = 1.15
"""bf16 must beat fp32 by this factor in the probe: timing noise must not flip the choice."""


@dataclass
class Precision:
    dtype: torch.dtype | None
    """Autocast dtype, or None for plain fp32."""
    use_scaler: bool = False
    reason: str = ""
    """Why this precision was chosen (logged at start-up)."""

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @classmethod
    def named(cls, name: str, reason: str = "") -> Precision:
        """The precision called `name` (fp32/bf16/fp16), e.g. the one a checkpoint records."""
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
        return cls(dtype, use_scaler=dtype is torch.float16, reason=reason)


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto`: the local rank's CUDA device when present, else CPU. A CUDA device asked for on a
    machine without one is a `ConfigError` now, not a torch error at the first `.to()`."""
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            from vidlab.errors import ConfigError

            raise ConfigError(f"device {requested!r}: this machine has no CUDA device "
                              "(use cpu or auto)")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def pick_precision(requested: str, device: torch.device,
                   probe: Callable[[], Bf16Probe] | None = None) -> Precision:
    """Resolve `train.amp` (auto/off/bf16/fp16) for `device`.

    `probe` measures bf16 against fp32 on the real model; `auto` on a CPU with bf16 units runs
    it (without one, such a CPU stays in fp32).
    """
    if requested == "off":
        return Precision(None, reason="train.amp=off")
    if device.type == "cuda":
        if requested == "fp16" or (requested == "auto" and not torch.cuda.is_bf16_supported()):
            return Precision(torch.float16, use_scaler=True,
                             reason="fp16 with a grad scaler (train.amp=fp16 or no bf16 on this GPU)")
        return Precision(torch.bfloat16, reason=f"CUDA bf16 autocast (train.amp={requested})")
    units = cpu_has_bf16()
    if requested in ("bf16", "fp16"):  # CPU autocast's fast half type is bf16
        if not units:
            log.warning("train.amp=%s on a CPU without bf16 units (AMX/AVX512-BF16): autocast "
                        "runs on emulated kernels, typically many times slower than fp32",
                        requested)
        return Precision(torch.bfloat16, reason=f"train.amp={requested}"
                         + ("" if units else " on a CPU without bf16 units (slow)"))
    if not units:
        return Precision(None, reason="this CPU has no bf16 units (AMX/AVX512-BF16): fp32")
    if probe is None:  # e.g. train.deterministic: the choice must not depend on a timing
        return Precision(None, reason="fp32: this CPU has bf16 units, but bf16 is chosen only "
                                      "by a start-up probe, and none was run")
    return _choose_from_probe(probe())


def _choose_from_probe(p: Bf16Probe) -> Precision:
    measured = (f"start-up probe: fp32 {p.fp32_s * 1e3:.0f} ms/step, bf16 {p.bf16_s * 1e3:.0f} "
                f"ms/step ({p.speedup:.2f}x); largest layer error {p.worst_error:.1%}"
                + (f" in {p.worst_layer}" if p.worst_layer else ""))
    if not p.finite:
        log.warning("bf16 gave NaN/inf loss or gradients in the start-up probe: training in fp32")
        return Precision(None, reason=f"fp32: bf16 was not finite ({measured})")
    if not p.agrees:
        log.warning("bf16 disagrees with fp32 on the same batch (%s): training in fp32", measured)
        return Precision(None, reason=f"fp32: bf16 disagrees with fp32 ({measured})")
    if p.speedup < MIN_BF16_SPEEDUP:
        return Precision(None, reason=f"fp32: bf16 is not faster enough ({measured})")
    return Precision(torch.bfloat16, reason=f"bf16 ({measured})")


def training_example(model: nn.Module, data: DataConfig, n: int,
                     device: torch.device) -> torch.Tensor:
    """`n` random clips of the training input's shape, for start-up timing probes (from a
    private generator: probing must not shift the run's random stream)."""
    spec = getattr(model, "input_spec", None)
    channels = int(spec().get("channels", 3)) if callable(spec) else 3
    g = torch.Generator().manual_seed(0)
    shape = (n, channels, data.num_frames, data.crop_size, data.crop_size)
    return torch.randn(*shape, generator=g).to(device)


def training_memory_format(model: nn.Module, choice: str, data: DataConfig, batch_size: int,
                           device: torch.device) -> torch.memory_format:
    """`train.memory_format`: as set, or (`auto`) the faster of the two for this model, timed."""
    if choice == "channels_last_3d":
        return torch.channels_last_3d
    if choice == "contiguous":
        return torch.contiguous_format
    from vidlab.models.tuning import pick_memory_format

    example = training_example(model, data, min(4, batch_size), device)
    return pick_memory_format(model, example, train=True)


def prepare_cpu() -> None:
    """Flush denormals to zero: tiny late-cosine updates otherwise slow CPU training badly."""
    torch.set_flush_denormal(True)

