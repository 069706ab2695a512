"""ONNX export that is checked, not hoped for: the graph must run in ONNX Runtime at another
batch size than it was traced with and match PyTorch.

The TorchScript exporter (`dynamo=False`) is tried first (fast, mature for CNNs and RNNs); the
dynamo exporter is the fallback. The first graph that passes the check is kept.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidlab.errors import ModelError

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "clip", "logits"


def export_onnx(model: nn.Module, path: str | Path, num_frames: int, size: int, batch: int = 1,
                opset: int = 17, dynamic_batch: bool = True, verify: bool = True,
                atol: float = 1e-4) -> Path:
    """Export `model` (input `batch×C×num_frames×size×size`) to ONNX at `path`; return the path.

    With `verify`, the graph is run in ONNX Runtime (at batch `batch + 1` when the batch axis is
    dynamic, proving it is) and must match PyTorch within `atol` (plus a 1e-4 relative
    tolerance for large logits); otherwise the next exporter is tried, and `ModelError` is
    raised when none passes. The file is written atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = _in_channels(model)
    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    example = torch.randn(batch, channels, num_frames, size, size, device=device)
    check_batch = batch + 1 if dynamic_batch else batch
    probe = torch.randn(check_batch, channels, num_frames, size, size, device=device)
    errors: list[str] = []
    try:
        with torch.no_grad():
            expected = model(probe).float().cpu().numpy()
        for exporter in (_export_torchscript, _export_dynamo):
            fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
            os.close(fd)
            try:
                exporter(model, example, tmp, opset, dynamic_batch)
                if verify:
                    _check(tmp, probe.cpu().numpy(), expected, atol)
                os.replace(tmp, path)
                return path
            except Exception as exc:  # any exporter failure: record it and try the next one
                errors.append(f"{exporter.__name__[8:]}: {str(exc).splitlines()[0][:300]}")
                log.info("ONNX export via %s failed: %s", exporter.__name__, exc)
            finally:
                for leftover in (tmp, tmp + ".data"):
                    if os.path.exists(leftover):
                        os.remove(leftover)
    finally:
        model.train(was_training)
    raise ModelError(f"cannot export {type(model).__name__} to ONNX: " + " | ".join(errors), path)


def _in_channels(model: nn.Module) -> int:
    spec = getattr(model, "input_spec", None)
    return int(spec().get("channels", 3)) if callable(spec) else 3


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: str, opset: int,
                        dynamic_batch: bool) -> None:
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with torch.no_grad():
        torch.onnx.export(model, (example,), path, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes=axes, do_constant_folding=True)


def _export_dynamo(model: nn.Module, example: torch.Tensor, path: str, opset: int,
                   dynamic_batch: bool) -> None:
    shapes = ({"x": {0: torch.export.Dim("batch", min=1, max=4096)}},) if dynamic_batch else None
    program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                dynamic_shapes=shapes[0] if shapes else None, external_data=False)
    program.save(path)


def _check(path: str, x: np.ndarray, expected: np.ndarray, atol: float) -> None:
    from vidlab.ort import make_ort_session

    session = make_ort_session(path)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    if got.shape != expected.shape:
        raise ModelError(f"ONNX output shape {got.shape} != PyTorch {expected.shape}", path)
    err = float(np.max(np.abs(got - expected)))
    if not np.allclose(got, expected, atol=atol, rtol=1e-4):
        raise ModelError(f"ONNX Runtime differs from PyTorch by {err:.2e} (> {atol:g})", path)
