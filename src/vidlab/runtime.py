"""Runners: one callable interface over the runtimes a bundle can hold.

A runner maps a `float32 B×C×T×H×W` numpy batch to `B×num_classes` logits. `load_runner`
picks the runtime `vidlab optimize` chose (the fastest within its accuracy budget, stored in
metrics.json), else the fastest measured one, else INT8 ONNX → fp32 ONNX → PyTorch, unless told
which. `torch-bf16` runs the PyTorch weights under bf16 autocast: it is offered where bf16 is
native (a CUDA GPU with bf16, a CPU with AMX/AVX512-BF16) or where `optimize` measured it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from vidlab.bundle import ONNX_FILE, ONNX_INT8_FILE, WEIGHTS_FILE, Bundle
from vidlab.errors import BundleError
from vidlab.ort import make_ort_session

RUNTIMES = ("torch", "torch-bf16", "onnx", "onnx-int8")
RUNTIME_FILES = {"torch": WEIGHTS_FILE, "torch-bf16": WEIGHTS_FILE, "onnx": ONNX_FILE,
                 "onnx-int8": ONNX_INT8_FILE}
PRECISIONS = {"torch": "fp32", "torch-bf16": "bf16", "onnx": "fp32", "onnx-int8": "int8"}
"""The arithmetic each runtime computes in (which matmul peak it is held against)."""


class Runner(Protocol):
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchRunner:
    """Eager PyTorch, on CUDA when present (unless `device` says otherwise); `bf16` runs it
    under bf16 autocast (weights stay fp32, matmuls and convolutions compute in bf16).

    `threads` sets PyTorch's intra-op thread count, which is global to the process.
    """

    def __init__(self, bundle: Bundle | None = None, device: str | None = None,
                 threads: int | None = None, bf16: bool = False, model=None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.name = "torch-bf16" if bf16 else "torch"
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        module = model if model is not None else bundle.build_model()
        self.model = module.eval().to(self.device)
        self.bf16 = bf16

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                     enabled=self.bf16):
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.model(x).float().cpu().numpy()


class OnnxRunner:
    """ONNX Runtime with full graph optimizations, threads set for this machine; on a GPU
    (unless `device` is "cpu") through the TensorRT or CUDA execution provider when installed."""

    def __init__(self, model_path: str, name: str = "onnx", threads: int | None = None,
                 device: str | None = None):
        self.name = name
        self.session = make_ort_session(model_path, threads, gpu=device != "cpu")
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]


def available_runtimes(bundle: Bundle, device: str | None = None) -> list[str]:
    """Runtimes whose files the bundle holds, in `RUNTIMES` order; `torch-bf16` only where bf16
    is native on `device` (default: CUDA when present, else CPU) or `optimize` measured it."""
    have = [r for r in RUNTIMES if bundle.has(RUNTIME_FILES[r])]
    if "torch-bf16" in have and "torch-bf16" not in bundle.metrics.get("variants", {}):
        from vidlab.models.tuning import bf16_is_fast

        if not bf16_is_fast(device or _default_device()):
            have.remove("torch-bf16")
    return have


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_runtime(bundle: Bundle) -> str:
    """`optimize`'s choice (fastest within its accuracy budget) if the bundle holds it, else the
    fastest runtime by measured latency in metrics.json, else INT8 > ONNX > torch."""
    have = available_runtimes(bundle)
    if not have:
        raise BundleError("holds no runnable model (no weights or ONNX file)", bundle.path)
    chosen = (bundle.metrics.get("optimize") or {}).get("chosen")
    if chosen in have:
        return chosen
    measured = bundle.metrics.get("variants", {})
    timed = [(measured[r]["latency_ms_p50"], r) for r in have
             if isinstance(measured.get(r), dict) and measured[r].get("latency_ms_p50")]
    if timed:
        return min(timed)[1]
    for preferred in ("onnx-int8", "onnx", "torch"):  # never unmeasured bf16
        if preferred in have:
            return preferred
    return have[0]


def load_runner(bundle: Bundle, runtime: str = "auto", device: str | None = None,
                threads: int | None = None) -> Runner:
    """A runner for `runtime` ("auto", "torch", "torch-bf16", "onnx", "onnx-int8") over `bundle`.

    `threads`: intra-op threads (default: every core this process may use).
    """
    if runtime == "auto":
        runtime = choose_runtime(bundle)
    if runtime not in RUNTIMES:
        raise BundleError(f"unknown runtime {runtime!r}; choose from auto, {', '.join(RUNTIMES)}")
    if not bundle.has(RUNTIME_FILES[runtime]):
        raise BundleError(f"has no {runtime} model ({RUNTIME_FILES[runtime]} missing)", bundle.path)
    if runtime in ("torch", "torch-bf16"):
        return TorchRunner(bundle, device, threads, bf16=runtime == "torch-bf16")
    return OnnxRunner(str(bundle.file(RUNTIME_FILES[runtime])), name=runtime, threads=threads,
                      device=device)
