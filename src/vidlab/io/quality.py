"""Full-reference quality: PSNR and SSIM of a distorted video against its reference.

Both are computed on luma (Y), as is standard for video: PSNR with peak 255, identical frames
counted as 100 dB (PSNR is infinite there) so means stay finite; SSIM as in Wang et al. 2004
(11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03), averaged over the valid region.
The numpy functions take RGB `H×W×3` (converted with BT.601 luma weights) or luma `H×W`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vidlab.errors import VideoError

PSNR_CAP_DB = 100.0
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""BT.601 luma weights of R, G, B: the luma every vidlab PSNR/SSIM (and loss) is measured on."""
_LUMA = np.array(LUMA_WEIGHTS)


class QualityMismatchError(VideoError):
    """The two videos cannot be compared frame by frame (frame counts or sizes differ)."""


def luma(frame: np.ndarray) -> np.ndarray:
    """`float64 H×W` luma of an RGB `H×W×3` frame (BT.601 weights) or of a luma frame."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[-1] == 3:
        return frame.astype(np.float64) @ _LUMA
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim != 2:
        raise ValueError(f"expected an H×W×3 RGB or H×W luma frame, got shape {frame.shape}")
    return frame.astype(np.float64)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"frames differ in shape: {np.shape(a)} vs {np.shape(b)}")


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two frames on luma (capped at 100 dB for identical frames)."""
    _check_pair(a, b)
    mse = float(np.mean((luma(a) - luma(b)) ** 2))
    if mse == 0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10.0 * np.log10(peak * peak / mse)))


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM between two frames on luma (Wang et al. 2004, Gaussian window σ = 1.5)."""
    from scipy.ndimage import gaussian_filter

    _check_pair(a, b)
    x, y = luma(a), luma(b)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2

    def blur(img: np.ndarray) -> np.ndarray:
        return gaussian_filter(img, sigma=1.5, truncate=3.5, mode="reflect")

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    r = 5  # window radius: keep the region where the 11×11 window fits, as the reference does
    if ssim_map.shape[0] > 2 * r and ssim_map.shape[1] > 2 * r:
        ssim_map = ssim_map[r:-r, r:-r]
    return float(ssim_map.mean())


@dataclass
class QualityResult:
    """Per-frame and mean PSNR (dB) and SSIM of `dist` against `ref`."""

    ref: str
    dist: str
    num_frames: int
    psnr: float
    ssim: float
    psnr_per_frame: list[float]
    ssim_per_frame: list[float]
    width: int = 0
    height: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quality(ref: str | os.PathLike, dist: str | os.PathLike) -> QualityResult:
    """Compare two videos frame by frame (aligned by index), streaming both in lockstep.

    Raises `QualityMismatchError` when frame counts or displayed sizes differ.
    """
    from vidlab.io.reader import VideoReader

    ref_reader = VideoReader(ref, pixel_format="gray")
    dist_reader = VideoReader(dist, pixel_format="gray")
    with ref_reader, dist_reader:
        ri, di = ref_reader.info, dist_reader.info
        if (ri.width, ri.height) != (di.width, di.height):
            raise QualityMismatchError(
                f"frame size {di.width}x{di.height} differs from the reference's "
                f"{ri.width}x{ri.height} ({ref}); resize first (vidlab transcode --size)", dist)
        if ri.num_frames != di.num_frames:
            raise QualityMismatchError(
                f"{di.num_frames} frames, the reference {ref} has {ri.num_frames}; "
                "frames are compared by index", dist)
        psnrs, ssims = [], []
        pairs = zip(ref_reader.iter_frames_with_time(), dist_reader.iter_frames_with_time(),
                    strict=False)
        for (i, _, a), (j, _, b) in pairs:
            if i != j:
                raise QualityMismatchError(f"frame {min(i, j)} of one video does not decode; "
                                           f"cannot align by index with {ref}", dist)
            psnrs.append(psnr(a, b))
            ssims.append(ssim(a, b))
        if len(psnrs) != ri.num_frames:
            raise QualityMismatchError(
                f"only {len(psnrs)} of {ri.num_frames} frame pairs decoded (corrupt data)", dist)
    return QualityResult(
        ref=str(ref), dist=str(dist), num_frames=len(psnrs),
        psnr=float(np.mean(psnrs)), ssim=float(np.mean(ssims)),
        psnr_per_frame=[round(v, 4) for v in psnrs], ssim_per_frame=[round(v, 6) for v in ssims],
        width=ri.width, height=ri.height,
    )
