"""Fixtures shared by every stage's tests: real H.264 files made with PyAV, the real clips."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def moving_square_frames(num_frames: int = 24, height: int = 64, width: int = 80,
                         seed: int = 0) -> np.ndarray:
    """`uint8 T×H×W×3` frames of a coloured square moving right over a textured background.

    Every frame differs from the others (so index mix-ups are caught) and the content is
    smooth enough that lossy codecs keep it recognisable.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([(xx * 3) % 256, (yy * 3) % 256, ((xx + yy) * 2) % 256], -1)
    colour = rng.integers(80, 255, size=3)
    side = max(4, height // 4)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        f = background.copy()
        x0 = (t * 3) % max(1, width - side)
        y0 = (height - side) // 2
        f[y0:y0 + side, x0:x0 + side] = colour
        f[:4, :4] = (t * 37) % 256  # a frame-unique marker
        frames[t] = f
    return frames.astype(np.uint8)


def encode_video(path: Path, frames: np.ndarray, fps: int = 25, codec: str = "libx264",
                 pix_fmt: str = "yuv420p", options: dict[str, str] | None = None,
                 rotation: int = 0) -> Path:
    """Encode frames to `path` with PyAV (real encoder, real container); a non-zero `rotation`
    is written as a display matrix (counter-clockwise, as FFmpeg counts it)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        if rotation:
            stream.set_display_rotation(rotation)
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    """Factory: `make_video("a.mp4", num_frames=24, height=64, width=80, fps=25, codec=...)`."""

    def make(name: str = "clip.mp4", num_frames: int = 24, height: int = 64, width: int = 80,
             fps: int = 25, codec: str = "libx264", seed: int = 0, **kw) -> Path:
        frames = moving_square_frames(num_frames, height, width, seed)
        return encode_video(tmp_path / name, frames, fps=fps, codec=codec, **kw)

    return make


@pytest.fixture
def shared_clips() -> tuple[Path, Path]:
    """The real carphone pristine/distorted pair; skips when ../shared/data is absent."""
    pristine, distorted = SHARED_DATA / "carphone_pristine.mp4", SHARED_DATA / "carphone_distorted.mp4"
    if not (pristine.is_file() and distorted.is_file()):
        pytest.skip("../shared/data with the carphone clips is not present")
    return pristine, distorted


@pytest.fixture(scope="session")
def ray_address():
    """A real local Ray instance with 2 CPUs, started once per session (a start costs tens of
    seconds); its address lets CLI subprocesses join it. Skips where Ray is not installed."""
    ray = pytest.importorskip("ray")
    for attempt in range(3):  # Ray gives its raylet 30 s to register: a loaded machine can miss it
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
