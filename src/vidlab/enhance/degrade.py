"""Degradations that turn clean frames into training inputs: lossy re-encoding, 2x downscaling,
noise. Encoding runs through a real encoder in memory (PyAV into a BytesIO), so the artifacts
are exactly those a user's compressed video has: blocking, ringing, smeared motion.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from vidlab.io.reader import exact_rgb

ENCODERS = {"h264": "libx264", "h265": "libx265", "hevc": "libx265", "vp9": "libvpx-vp9",
            "av1": "libsvtav1"}
X265_MIN_SIDE = 64
"""libx265 corrupts its heap on frames smaller than one 64-px CTU (seen with PyAV 18)."""


@dataclass(frozen=True)
class CompressionSpec:
    """How one training window is compressed: codec, rate control (crf or qp), strength."""

    codec: str = "h264"
    mode: str = "crf"
    quality: int = 40
    preset: str = "medium"
    gop: str = "ra"
    """`ra` (random access: the encoder's B-frames) or `ld` (low delay: I then P frames only),
    the two GOP structures of the MFQE/LDV enhancement protocol."""


def encode(frames: np.ndarray, spec: CompressionSpec, target, fps: int = 25) -> None:
    """Encode `uint8 T×H×W×3` RGB frames with `spec` as MP4 into `target` (a path or a
    writable binary file object). H and W must be even (4:2:0)."""
    t, h, w, _ = frames.shape
    if spec.codec in ("h265", "hevc") and min(h, w) < X265_MIN_SIDE:
        raise ValueError(f"x265 needs frames of at least {X265_MIN_SIDE} px, got {w}x{h}")
    with av.open(target if not isinstance(target, Path) else str(target), "w",
                 format="mp4") as out:
        stream = out.add_stream(ENCODERS.get(spec.codec, spec.codec), rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = _encoder_options(spec)
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f),
                                                             format="rgb24")))
        out.mux(stream.encode())


def encode_decode(frames: np.ndarray, spec: CompressionSpec, fps: int = 25) -> np.ndarray:
    """Encode `uint8 T×H×W×3` RGB frames with `spec` in memory and decode them back.

    H and W must be even (4:2:0). Returns the decoded frames, same shape, presentation order.
    """
    buf = io.BytesIO()
    encode(frames, spec, buf, fps)
    buf.seek(0)
    with av.open(buf, "r") as inp:
        decoded = [exact_rgb(fr) for fr in inp.decode(video=0)]
    _check_round_trip(len(decoded), len(frames), spec)
    return np.stack(decoded)


def encode_coded(frames: np.ndarray, spec: CompressionSpec, fps: int = 25,
                 with_luma: bool = True):
    """`frames` through `spec`'s encoder and back as a `vidlab.enhance.coded.CodedClip`: each
    frame's QP and the codec exactly as `vidlab enhance` reads them from a user's file (via a
    temporary file: the HEVC QP is in the stream's SEI), so a QP-conditioned model trains, and
    the protocol measures, on the QPs a user's decode gives (`with_luma`: see `read_coded`)."""
    import tempfile

    from vidlab.enhance.coded import read_coded

    with tempfile.TemporaryDirectory(prefix="vidlab-coded-") as tmp:
        path = Path(tmp) / "clip.mp4"
        encode(frames, spec, path, fps)
        clip = read_coded(path, with_luma)
    _check_round_trip(len(clip.frames), len(frames), spec)
    return clip


def _check_round_trip(got: int, sent: int, spec: CompressionSpec) -> None:
    if got != sent:
        raise RuntimeError(f"round trip through {spec} returned {got} of {sent} frames")


def _encoder_options(spec: CompressionSpec) -> dict[str, str]:
    q = str(int(spec.quality))
    if spec.gop not in ("ra", "ld"):
        raise ValueError(f"gop must be 'ra' or 'ld', got {spec.gop!r}")
    if spec.codec in ("h265", "hevc"):
        rc = f"crf={q}" if spec.mode == "crf" else f"qp={q}"
        ld = ":bframes=0" if spec.gop == "ld" else ""
        return {"preset": spec.preset, "x265-params": f"{rc}{ld}:log-level=none"}
    if spec.codec == "h264":
        opts = {"preset": spec.preset, spec.mode: q}
        if spec.gop == "ld":
            opts["bf"] = "0"
        return opts
    return {"crf": q, "b": "0"}


def random_compression(rng: np.random.Generator, quality_range: tuple[int, int] = (30, 51),
                       h265_prob: float = 0.2, ld_prob: float = 0.0) -> CompressionSpec:
    """Draw a compression setting: H.264 or H.265, crf or constant qp, a preset, and a GOP
    (low delay with probability `ld_prob`, else the encoder's B-frames)."""
    codec = "h265" if rng.random() < h265_prob else "h264"
    mode = "qp" if rng.random() < 0.5 else "crf"
    quality = int(rng.integers(quality_range[0], quality_range[1] + 1))
    preset = str(rng.choice(["veryfast", "medium"]))
    gop = "ld" if ld_prob and rng.random() < ld_prob else "ra"
    return CompressionSpec(codec=codec, mode=mode, quality=quality, preset=preset, gop=gop)


def add_noise(frames: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of `sigma` grey levels, clipped back to uint8."""
    noisy = frames.astype(np.float32) + rng.normal(0.0, sigma, frames.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def downscale2x(frames: np.ndarray) -> np.ndarray:
    """Anti-aliased bicubic 2x downscaling of `uint8 T×H×W×3` (H, W even)."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, scale_factor=0.5, mode="bicubic", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def upscale2x_bicubic(frames: np.ndarray) -> np.ndarray:
    """Plain bicubic 2x upscaling of `uint8 T×H×W×3`: the baseline sr2x must beat."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def degrade(frames: np.ndarray, task: str, rng: np.random.Generator,
            quality_range: tuple[int, int] = (30, 51), noise_prob: float = 0.2,
            max_noise: float = 6.0, h265_prob: float = 0.2,
            ld_prob: float = 0.0, with_qp: bool = False) -> tuple[np.ndarray, dict]:
    """The training input for `frames` under `task` ("restore" or "sr2x") and what was done
    (`h265_prob`: share of H.265 windows, `ld_prob`: share encoded low-delay; `with_qp`: the
    decoded frames' QPs and codec in `info["qps"]`, `info["qp_codec"]`)."""
    info: dict = {}
    x = frames
    if task == "sr2x":
        return downscale2x(x), {"downscale": 2}
    if rng.random() < noise_prob:
        sigma = float(rng.uniform(1.0, max_noise))
        x = add_noise(x, sigma, rng)
        info["noise_sigma"] = round(sigma, 2)
    spec = random_compression(rng, quality_range,
                              h265_prob=h265_prob if min(x.shape[1:3]) >= X265_MIN_SIDE else 0.0,
                              ld_prob=ld_prob)
    info.update(codec=spec.codec, mode=spec.mode, quality=spec.quality, preset=spec.preset)
    if ld_prob:
        info["gop"] = spec.gop
    if with_qp:
        clip = encode_coded(x, spec, with_luma=False)  # training pairs: RGB and QPs only
        info.update(qps=clip.qps, qp_codec=clip.codec)
        return clip.frames, info
    return encode_decode(x, spec), info
