"""fp32 ONNX export of a bundle's model, verified against PyTorch on real clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidlab.data.clips import ClipSet
from vidlab.errors import ModelError
from vidlab.runtime import OnnxRunner


def export_verified(model, path: str | Path, clips: ClipSet, num_frames: int, size: int,
                    opset: int = 17, tolerance: float = 1e-3) -> dict[str, float]:
    """Export `model` (dynamic batch) and compare ORT with eager PyTorch on `clips`.

    Runs batch 1 and a batch of several clips (the dynamic axis) through both; returns
    `{"max_abs_diff", "max_rel_diff", "argmax_agreement"}`. A difference beyond `tolerance`
    relative to the logit scale raises `ModelError` (the export changed the model's function:
    adaptive pooling, shape-dependent Python and custom ops are the usual causes).
    """
    import torch

    from vidlab.models.export import export_onnx

    model = model.eval()
    export_onnx(model, Path(path), num_frames=num_frames, size=size, batch=1, opset=opset,
                dynamic_batch=True)
    Path(path).chmod(0o644)  # the exporter writes via mkstemp (0600); bundles are shared files
    runner = OnnxRunner(str(path))
    x = clips.clips[: max(1, min(4, len(clips)))]
    with torch.inference_mode():
        ref = np.concatenate([model(torch.from_numpy(x[:1])).numpy(), model(torch.from_numpy(x)).numpy()])
    got = np.concatenate([runner(x[:1]), runner(x)])
    diff = float(np.abs(ref - got).max())
    scale = float(np.abs(ref).max()) or 1.0
    report = {"max_abs_diff": diff, "max_rel_diff": diff / scale,
              "argmax_agreement": float((ref.argmax(1) == got.argmax(1)).mean())}
    if diff / scale > tolerance:
        raise ModelError(f"ONNX export differs from PyTorch by {diff:.3g} (logit scale {scale:.3g})",
                         path)
    return report
