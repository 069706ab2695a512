"""Helpers for the data tests: distinct real clips (synth renderer) and deliberately bad files."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vidlab.data.synth import render_clip
from vidlab.io import write_video


def distinct_frames(seed: int, num_frames: int = 24, label: str = "move_right") -> np.ndarray:
    """Frames of a synthetic clip whose background, shape and colours depend on `seed`."""
    frames, _ = render_clip(label, np.random.default_rng([999, seed]), num_frames)
    return frames


def write(path: Path, frames: np.ndarray, fps: float = 25, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames, fps=fps, codec="h264", overwrite=True, **kw)


def write_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An MP4 holding only an AAC audio stream."""
    rate = 16000
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate)
        samples = (np.sin(np.arange(int(rate * seconds)) / 10) * 0.3).astype(np.float32)
        chunk = 1024
        for i in range(0, len(samples) - chunk, chunk):
            frame = av.AudioFrame.from_ndarray(samples[None, i:i + chunk], format="fltp",
                                               layout="mono")
            frame.sample_rate = rate
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
