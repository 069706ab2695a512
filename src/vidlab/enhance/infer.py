"""Running a trained enhancer: loading it from a bundle, one window of frames (tiled when the
frames are large, so memory stays bounded), and a whole stream of frames (a sliding window)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidlab.enhance.degrade import upscale2x_bicubic
from vidlab.enhance.model import EnhanceNet, build_enhancer
from vidlab.errors import BundleError

TILE = 512
"""Frames with a side above this are processed in overlapping tiles of this size (bounds memory;
a 320×240 frame in one piece ran 1.45× faster than in 256-px tiles, same output but for ±1 on
0.002 % of the pixels)."""
OVERLAP = 32


def load_enhance_bundle(bundle: str | Path) -> Any:
    """The loaded bundle; `BundleError` if it is not an enhancement bundle."""
    from vidlab.bundle import load_bundle

    b = load_bundle(bundle)
    if b.task != "enhance":
        raise BundleError(f"not an enhancement bundle (task is {b.task!r})", b.path)
    return b


def load_enhancer(bundle: str | Path) -> tuple[EnhanceNet, Any]:
    """The model (eval mode, weights loaded) and the loaded bundle; `BundleError` if the bundle
    is not an enhancement bundle."""
    b = load_enhance_bundle(bundle)
    kwargs = b.model_spec.get("kwargs", {})
    try:
        model = build_enhancer(**kwargs)
        model.load_state_dict(b.state_dict())
    except (TypeError, ValueError, RuntimeError) as exc:
        raise BundleError(f"weights do not fit the enhancer {kwargs} ({exc})", b.path) from exc
    return model.eval(), b


@torch.no_grad()
def enhance_window(model: EnhanceNet, window: np.ndarray, tile: int = TILE,
                   ensemble: bool = False, quality=None) -> np.ndarray:
    """`uint8 T×H×W×3` (T = model.num_frames) → the enhanced centre frame `uint8 sH×sW×3`.

    `ensemble` averages the outputs for the 4 horizontal/vertical flips of the input (the
    training augmentations): usually a little better, 4x slower. `quality`: the centre frame's
    quality vector (`vidlab.enhance.model.quality_vector`) for a QP-conditioned model (None:
    unknown; a blind model ignores it).
    """
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(window)).to(device).permute(3, 0, 1, 2)[None]
    x = x.float() / 255
    q = None if quality is None else torch.as_tensor(quality, dtype=x.dtype,
                                                     device=device).reshape(1, 3)

    def run(inp: torch.Tensor) -> torch.Tensor:
        if max(inp.shape[-2:]) > tile:
            return _tiled(model, inp, tile, q)
        return model(inp, q)

    if ensemble:
        flips = [(), (-1,), (-2,), (-2, -1)]
        out = sum(run(x.flip(f)).flip(f) if f else run(x) for f in flips) / len(flips)
    else:
        out = run(x)
    return (out[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def _tiled(model: EnhanceNet, x: torch.Tensor, tile: int,
           quality: torch.Tensor | None = None) -> torch.Tensor:
    """Overlapping tiles, each output keeping only its interior (no seams)."""
    s = model.scale
    h, w = x.shape[-2:]
    out = torch.empty(1, 3, h * s, w * s, device=x.device)
    pad = min(OVERLAP, tile // 4)
    step = tile - 2 * pad
    for y0 in range(0, h, step):
        for x0 in range(0, w, step):
            ya, xa = max(0, y0 - pad), max(0, x0 - pad)
            yb, xb = min(h, y0 + step + pad), min(w, x0 + step + pad)
            piece = model(x[..., ya:yb, xa:xb], quality)
            y1, x1 = min(h, y0 + step), min(w, x0 + step)
            out[..., y0 * s:y1 * s, x0 * s:x1 * s] = piece[
                ..., (y0 - ya) * s:(y1 - ya) * s, (x0 - xa) * s:(x1 - xa) * s]
    return out


def enhance_stream(model: EnhanceNet, frames: Iterable[np.ndarray], tile: int = TILE,
                   ensemble: bool = False, strengths: Iterable[float] | None = None,
                   qps: Iterable[float | None] | None = None,
                   codec: str | None = None) -> Iterator[np.ndarray]:
    """Enhance every frame of a stream, in order; memory holds `num_frames` input frames.

    The window around frame p is frames p-r..p+r, clamped to the first and last frame.
    `strengths` (one per frame, in [0, 1], from a `vidlab.enhance.gate.QualityGate`) scales
    each frame's correction: 0 returns the frame's base (itself, or its bicubic upscaling for
    sr2x) without running the model. `qps` (one per frame, None where unknown) and the stream's
    `codec` condition a QP-conditioned model (without them it runs blind).
    """
    from vidlab.enhance.gate import blend
    from vidlab.enhance.model import quality_vector

    r = model.num_frames // 2
    recent: dict[int, np.ndarray] = {}
    alpha: dict[int, float] = {}
    frame_qp: dict[int, float | None] = {}
    levels = iter(strengths) if strengths is not None else None
    quants = iter(qps) if qps is not None else None

    def base(p: int) -> np.ndarray:
        return recent[p] if model.scale == 1 else upscale2x_bicubic(recent[p][None])[0]

    def output(p: int, last: int) -> np.ndarray:
        a, qp = alpha.pop(p, 1.0), frame_qp.pop(p, None)
        if a <= 0.0:
            return base(p)
        q = quality_vector(qp, codec) if model.qp_conditioned else None
        out = enhance_window(model, window(p, last), tile, ensemble, q)
        return out if a >= 1.0 else blend(base(p), out, a)

    def window(p: int, last: int) -> np.ndarray:
        return np.stack([recent[min(max(i, 0), last)] for i in range(p - r, p + r + 1)])

    n = 0
    for i, frame in enumerate(frames):
        recent[i] = frame
        if levels is not None:
            level = next(levels, None)
            if level is None:
                raise ValueError(f"strengths ended at frame {i}: give one per frame")
            alpha[i] = float(level)
        if quants is not None:
            frame_qp[i] = next(quants, None)
        n = i + 1
        p = i - r
        if p >= 0:
            yield output(p, i)
            recent.pop(p - r, None)
    for p in range(max(0, n - r), n):
        yield output(p, n - 1)
