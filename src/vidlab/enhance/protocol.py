"""The compressed-video enhancement protocol (after MFQEv2 / LDV): natural clips encoded with
x264 and x265 at constant QP 22/27/32/37/42, low-delay and random-access GOPs, decoded the way
`vidlab enhance` decodes a user's file (QP from the stream), scored on luma against the clean
frames per codec × QP.

Held-out natural footage (never trained or calibrated on): the real carphone clip of
`../shared/data`, and camera moves (pan, zoom, tilt) over photographs that no training set of
ours contains — matplotlib's `grace_hopper.jpg` and any photos passed in (the docs use
scikit-learn's `china.jpg` and `flower.jpg`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from vidlab.enhance.coded import CodedClip
from vidlab.enhance.degrade import CompressionSpec, encode_coded
from vidlab.io.reader import EXACT_RGB, exact_rgb

PROTOCOL_QPS = (22, 27, 32, 37, 42)
CODECS = ("h264", "h265")
GOPS = ("ld", "ra")
MOVES = ("pan", "zoom", "tilt")
CLIP_SIZE = (240, 320)


@dataclass(frozen=True)
class Condition:
    """One protocol encoding: codec, constant QP, GOP (`ld` no B-frames, `ra` B-frames)."""

    codec: str
    qp: int
    gop: str

    @property
    def label(self) -> str:
        return f"{'x264' if self.codec == 'h264' else 'x265'} QP{self.qp} {self.gop.upper()}"

    def spec(self) -> CompressionSpec:
        return CompressionSpec(codec=self.codec, mode="qp", quality=self.qp, preset="medium",
                               gop=self.gop)


def conditions(codecs: Iterable[str] = CODECS, qps: Iterable[int] = PROTOCOL_QPS,
               gops: Iterable[str] = GOPS) -> list[Condition]:
    return [Condition(c, q, g) for c in codecs for q in qps for g in gops]


def load_photo(path: str | Path) -> np.ndarray:
    """`uint8 H×W×3` RGB of an image file (anything FFmpeg's image decoders read)."""
    with av.open(str(path)) as c:
        return exact_rgb(next(c.decode(video=0)))


def camera_move(photo: np.ndarray, num_frames: int, kind: str = "pan",
                size: tuple[int, int] = CLIP_SIZE, speed: float = 1.0) -> np.ndarray:
    """`uint8 T×h×w×3`: a smooth camera move over a photo, sub-pixel motion, no aliasing.

    The photo is first downscaled with an anti-aliasing filter to 1.3× the frame (so the clip
    holds the photo's natural detail, not its sensor noise), then sampled bicubically along
    the move: `pan` drifts ~1.1 px/frame sideways, `tilt` moves diagonally, `zoom` zooms in
    ~0.6 %/frame; `speed` scales the motion (training clips vary it, the protocol's is 1).
    """
    if kind not in MOVES:
        raise ValueError(f"kind must be one of {MOVES}, got {kind!r}")
    h, w = size
    x = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1).float()[None] / 255
    scale = 1.3 * max(h / x.shape[2], w / x.shape[3])
    x = F.interpolate(x, scale_factor=scale, mode="bicubic", antialias=True, align_corners=False)
    ch, cw = x.shape[2:]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    sy, sx = h / ch, w / cw  # the frame's extent in the canvas's [-1, 1] coordinates
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for t in range(num_frames):
        u = t / max(num_frames - 1, 1) - 0.5
        zoom, dx, dy = 1.0, 0.0, 0.0
        if kind == "pan":
            dx = u * num_frames * 1.1 * speed * 2 / cw
        elif kind == "tilt":
            dx, dy = (u * num_frames * speed * 0.8 * 2 / cw,
                      u * num_frames * speed * 0.6 * 2 / ch)
        else:
            zoom = 1.0 - 0.006 * speed * t
        grid = torch.stack([xx * sx * zoom + dx, yy * sy * zoom + dy], -1)[None]
        frame = F.grid_sample(x, grid, mode="bicubic", padding_mode="reflection",
                              align_corners=False)[0]
        frames[t] = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return frames


def matplotlib_photos() -> list[Path]:
    """The natural photographs matplotlib ships (its other sample images are graphics)."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [path] if path.is_file() else []


def heldout_clips(num_frames: int, photos: Iterable[str | Path] = (),
                  carphone: str | Path | None = None, carphone_frames: int | None = None,
                  moves: Iterable[str] = MOVES) -> dict[str, np.ndarray]:
    """name → clean `uint8 T×H×W×3` clips: every one of `moves` over every photo (matplotlib's
    and `photos`), plus the first `carphone_frames` of `carphone` (a clean video) if given."""
    clips: dict[str, np.ndarray] = {}
    if carphone is not None and Path(carphone).is_file():
        from vidlab.io import VideoReader

        with VideoReader(carphone, pixel_format=EXACT_RGB) as r:
            clips["carphone"] = np.stack(list(r.iter_frames(0, carphone_frames or num_frames)))
    for path in [*matplotlib_photos(), *map(Path, photos)]:
        photo = load_photo(path)
        for kind in moves:
            clips[f"{path.stem} {kind}"] = camera_move(photo, num_frames, kind)
    return clips


def coded(frames: np.ndarray, cond: Condition) -> CodedClip:
    """`frames` through `cond`'s encoder and back, as a user's decoder gives them."""
    return encode_coded(frames, cond.spec())
