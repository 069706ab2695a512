"""Where training runs and in which precision: detected, never assumed.

Mixed precision only where the hardware has it: bf16 (or fp16 with a grad scaler) autocast on
CUDA. On CPU `auto` is fp32: without native bf16 units (AMX/AVX512-BF16) autocast makes a 3D CNN
26–430× slower (MEASURED.md), and with them CPU bf16 autocast drove a small R(2+1)D's loss to NaN
within two epochs in our runs; `amp: bf16` asks for it explicitly where the units exist.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class Precision:
    dtype: torch.dtype | None
    """Autocast dtype, or None for plain fp32."""
    use_scaler: bool = False

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """`auto`: the local rank's CUDA device when present, else CPU."""
    if requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AMX or AVX512-BF16)."""
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


def pick_precision(requested: str, device: torch.device) -> Precision:
    """Resolve `train.amp` (auto/off/bf16/fp16) for `device`."""
    if requested == "off":
        return Precision(None)
    if device.type == "cuda":
        if requested == "fp16" or (requested == "auto" and not torch.cuda.is_bf16_supported()):
            return Precision(torch.float16, use_scaler=True)
        return Precision(torch.bfloat16)
    if requested in ("bf16", "fp16"):
        if not cpu_has_bf16():
            log.warning("this CPU has no bf16 units: %s autocast would be far slower; using fp32",
                        requested)
            return Precision(None)
        return Precision(torch.bfloat16)
    return Precision(None)


def prepare_cpu() -> None:
    """Flush denormals to zero: tiny late-cosine updates otherwise slow CPU training badly."""
    torch.set_flush_denormal(True)
