"""Runners: one callable interface over the runtimes a bundle can hold.

A runner maps a `float32 B×C×T×H×W` numpy batch to `B×num_classes` logits. `load_runner`
picks the runtime `vidlab optimize` chose (the fastest within its accuracy budget, stored in
metrics.json), else the fastest measured one, else INT8 ONNX → fp32 ONNX → PyTorch, unless told
which. `torch-bf16` runs the PyTorch weights under bf16 autocast: it is offered where bf16 is
native (a CUDA GPU with bf16, a CPU with AMX/AVX512-BF16) or where `optimize` measured it.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from vidlab.bundle import ONNX_FILE, ONNX_INT8_FILE, WEIGHTS_FILE, Bundle
from vidlab.errors import BundleError
from vidlab.ort import make_ort_session
from vidlab.runtime_check import check_output as check_output  # for the server's warm-up
from vidlab.runtime_check import check_runtime_file, dry_run_runner, first_line

RUNTIMES = ("torch", "torch-bf16", "onnx", "onnx-int8")
RUNTIME_FILES = {"torch": WEIGHTS_FILE, "torch-bf16": WEIGHTS_FILE, "onnx": ONNX_FILE,
                 "onnx-int8": ONNX_INT8_FILE}
PRECISIONS = {"torch": "fp32", "torch-bf16": "bf16", "onnx": "fp32", "onnx-int8": "int8"}
"""The arithmetic each runtime computes in (which matmul peak it is held against)."""
log = logging.getLogger(__name__)


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


def runtime_file(runtime: str) -> str:
    """The bundle file a runtime runs (`weights.safetensors`, `model.onnx`, ...)."""
    return RUNTIME_FILES[runtime]


def available_runtimes(bundle: Bundle, device: str | None = None) -> list[str]:
    """Runtimes whose files the bundle holds, in `RUNTIMES` order; `torch-bf16` only where bf16
    is native on `device` (default: CUDA when present, else CPU) or `optimize` measured it."""
    have = [r for r in RUNTIMES if bundle.has(RUNTIME_FILES[r])]
    if "torch-bf16" in have and "torch-bf16" not in _measured(bundle):
        from vidlab.models.tuning import bf16_is_fast

        if not bf16_is_fast(device or _default_device()):
            have.remove("torch-bf16")
    return have


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _measured(bundle: Bundle) -> dict:
    measured = bundle.metrics.get("variants", {})
    return measured if isinstance(measured, dict) else {}


def ranked_runtimes(bundle: Bundle, device: str | None = None) -> list[str]:
    """The bundle's runtimes, best first: `optimize`'s choice (the fastest within its accuracy
    budget), then by latency measured in metrics.json, then INT8 ONNX > ONNX > torch (never
    an unmeasured bf16 before those)."""
    have = available_runtimes(bundle, device)
    measured = _measured(bundle)
    optimized = bundle.metrics.get("optimize")
    chosen = optimized.get("chosen") if isinstance(optimized, dict) else None

    def latency(r: str) -> float:
        m = measured.get(r)
        value = m.get("latency_ms_p50") if isinstance(m, dict) else None
        return float(value) if isinstance(value, int | float) and value > 0 else float("inf")

    fallback = ("onnx-int8", "onnx", "torch", "torch-bf16")
    return sorted(have, key=lambda r: (r != chosen, latency(r), fallback.index(r)))


def choose_runtime(bundle: Bundle) -> str:
    """`optimize`'s choice if the bundle holds it, else the fastest runtime by measured latency
    in metrics.json, else INT8 > ONNX > torch."""
    ranked = ranked_runtimes(bundle)
    if not ranked:
        raise BundleError("holds no runnable model (no weights or ONNX file)", bundle.path)
    return ranked[0]


def load_runner(bundle: Bundle, runtime: str = "auto", device: str | None = None,
                threads: int | None = None, *, dry_run: bool = False,
                skipped: list[BundleError] | None = None) -> Runner:
    """A runner for `runtime` ("auto", "torch", "torch-bf16", "onnx", "onnx-int8") over `bundle`.

    `threads`: intra-op threads (default: every core this process may use). The runtime's file
    is checked against config.json first (weights: names and shapes against the model it names;
    ONNX: one clip-batch input and `num_classes` outputs) and, with `dry_run`, the runner runs
    one zero clip. With "auto" every runtime file is checked; one that fails is logged as a
    warning, appended to `skipped` and passed over for the next fastest. An explicitly asked
    runtime that fails, or a bundle with no usable runtime, raises `BundleError` naming the
    file and the field.
    """
    if runtime != "auto" and runtime not in RUNTIMES:
        raise BundleError(f"unknown runtime {runtime!r}; choose from auto, {', '.join(RUNTIMES)}")
    if runtime != "auto" and not bundle.has(RUNTIME_FILES[runtime]):
        raise BundleError(f"has no {runtime} model ({RUNTIME_FILES[runtime]} missing)",
                          bundle.path)
    problems: dict[str, BundleError] = {}
    checked: dict[str, BundleError | None] = {}  # by file: torch and torch-bf16 share weights
    for name in available_runtimes(bundle, device) if runtime == "auto" else [runtime]:
        file_name = RUNTIME_FILES[name]
        if file_name not in checked:
            try:
                check_runtime_file(bundle, name, file_name)
                checked[file_name] = None
            except BundleError as exc:
                checked[file_name] = exc
        if checked[file_name] is not None:
            problems[name] = checked[file_name]
    candidates = ranked_runtimes(bundle, device) if runtime == "auto" else [runtime]
    for name in candidates:
        if name in problems:
            continue
        try:
            runner = _make_runner(bundle, name, device, threads)
            if dry_run:
                dry_run_runner(runner, bundle, RUNTIME_FILES[name])
        except BundleError as exc:
            problems[name] = exc
            continue
        for passed_over, exc in problems.items():
            log.warning("%s; runtime %s skipped, using %s", exc, passed_over, name)
        if skipped is not None:  # once per file (torch and torch-bf16 share the weights)
            skipped.extend({str(e): e for e in problems.values()}.values())
        return runner
    if not problems:
        raise BundleError("holds no runnable model (no weights or ONNX file)", bundle.path)
    reasons = list(dict.fromkeys(str(e) for e in problems.values()))
    if len(reasons) == 1:
        raise next(iter(problems.values()))
    raise BundleError("no usable runtime: " + "; ".join(reasons), bundle.path)


def _make_runner(bundle: Bundle, runtime: str, device: str | None,
                 threads: int | None) -> Runner:
    path = bundle.file(RUNTIME_FILES[runtime])
    try:
        if runtime in ("torch", "torch-bf16"):
            return TorchRunner(bundle, device, threads, bf16=runtime == "torch-bf16")
        return OnnxRunner(str(path), name=runtime, threads=threads, device=device)
    except BundleError:
        raise
    except Exception as exc:  # ORT and torch raise their own types for files they refuse
        raise BundleError(f"cannot be loaded by {runtime} ({first_line(exc)})", path) from exc
