"""Runners: one callable interface over the runtimes a bundle can hold.

A runner maps a `float32 B×C×T×H×W` numpy batch to `B×num_classes` logits. `load_runner`
picks the fastest runtime the bundle holds (by the latencies `vidlab optimize` measured and
stored in metrics.json, else INT8 ONNX → fp32 ONNX → PyTorch) unless told which.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from vidlab.bundle import ONNX_FILE, ONNX_INT8_FILE, WEIGHTS_FILE, Bundle
from vidlab.errors import BundleError
from vidlab.ort import make_ort_session

RUNTIMES = ("torch", "onnx", "onnx-int8")
_RUNTIME_FILES = {"torch": WEIGHTS_FILE, "onnx": ONNX_FILE, "onnx-int8": ONNX_INT8_FILE}


class Runner(Protocol):
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchRunner:
    """Eager PyTorch, on CUDA when present (unless `device` says otherwise).

    `threads` sets PyTorch's intra-op thread count, which is global to the process.
    """

    name = "torch"

    def __init__(self, bundle: Bundle, device: str | None = None, threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = bundle.build_model().to(self.device)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.model(x).float().cpu().numpy()


class OnnxRunner:
    """ONNX Runtime with full graph optimizations, threads set for this machine."""

    def __init__(self, model_path: str, name: str = "onnx", threads: int | None = None):
        self.name = name
        self.session = make_ort_session(model_path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]


def available_runtimes(bundle: Bundle) -> list[str]:
    """Runtimes whose files the bundle holds, in `RUNTIMES` order."""
    return [r for r in RUNTIMES if bundle.has(_RUNTIME_FILES[r])]


def choose_runtime(bundle: Bundle) -> str:
    """The fastest runtime by measured latency in metrics.json; else INT8 > ONNX > torch."""
    have = available_runtimes(bundle)
    if not have:
        raise BundleError("holds no runnable model (no weights or ONNX file)", bundle.path)
    measured = bundle.metrics.get("variants", {})
    timed = [(measured[r]["latency_ms_p50"], r) for r in have
             if isinstance(measured.get(r), dict) and measured[r].get("latency_ms_p50")]
    if timed:
        return min(timed)[1]
    for preferred in ("onnx-int8", "onnx", "torch"):
        if preferred in have:
            return preferred
    return have[0]


def load_runner(bundle: Bundle, runtime: str = "auto", device: str | None = None,
                threads: int | None = None) -> Runner:
    """A runner for `runtime` ("auto", "torch", "onnx", "onnx-int8") over `bundle`.

    `threads`: intra-op threads (default: every core this process may use).
    """
    if runtime == "auto":
        runtime = choose_runtime(bundle)
    if runtime not in RUNTIMES:
        raise BundleError(f"unknown runtime {runtime!r}; choose from auto, {', '.join(RUNTIMES)}")
    if not bundle.has(_RUNTIME_FILES[runtime]):
        raise BundleError(f"has no {runtime} model ({_RUNTIME_FILES[runtime]} missing)", bundle.path)
    if runtime == "torch":
        return TorchRunner(bundle, device, threads)
    return OnnxRunner(str(bundle.file(_RUNTIME_FILES[runtime])), name=runtime, threads=threads)
