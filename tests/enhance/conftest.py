"""Fixtures of the enhance tests: tiny clean datasets, a clip with audio, tiny trained bundles."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from tests.conftest import encode_video, moving_square_frames

from vidlab.enhance import EnhanceTrainConfig, train_enhancer


def tiny_config(task: str = "restore", steps: int = 3, **kw) -> EnhanceTrainConfig:
    """A model and pool small enough to train in seconds on 2 busy cores."""
    return EnhanceTrainConfig(task=task, steps=steps, batch_size=2, patch=16, num_frames=3,
                              channels=4, num_blocks=1, warmup_steps=1, eval_every=2,
                              checkpoint_every=2, threads=1,
                              pool={"windows": 3, "val_windows": 1, "window_frames": 5,
                                    "max_height": 48, "max_width": 64}, **kw)


def make_clean_root(root: Path, height: int = 48, width: int = 64) -> Path:
    """A folder-per-class tree under `root` with two clean 12-frame H.264 clips."""
    (root / "a").mkdir()
    for seed in range(2):
        encode_video(root / "a" / f"c{seed}.mp4", moving_square_frames(12, height, width, seed),
                     options={"crf": "12"})
    return root


@pytest.fixture(scope="session")
def clean_root(tmp_path_factory) -> Path:
    """A folder-per-class tree with two clean H.264 clips."""
    return make_clean_root(tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="session")
def bundles(clean_root, tmp_path_factory) -> dict[str, Path]:
    """Restore and sr2x bundles trained for a few steps, once per session (tests copy a bundle
    before changing it)."""
    out = {}
    for task in ("restore", "sr2x"):
        run = tmp_path_factory.mktemp(f"run_{task}")
        out[task] = Path(train_enhancer(clean_root, run, tiny_config(task))["bundle"])
    return out


def write_clip_with_audio(path: Path, num_frames: int = 14, height: int = 48, width: int = 64,
                          fps: int = 15) -> Path:
    """H.264 video (with B-frames) plus an AAC sine tone, muxed by PyAV."""
    frames = moving_square_frames(num_frames, height, width, seed=3)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        samples = int(16000 * num_frames / fps)
        tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 16000)).astype(np.float32)
        for f in frames:
            out.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        for start in range(0, samples - 1024, 1024):
            af = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts, af.time_base = 16000, start, Fraction(1, 16000)
            out.mux(a.encode(af))
        out.mux(v.encode())
        out.mux(a.encode())
    return path
