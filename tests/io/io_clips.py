"""Real test videos for the io tests: every encoding the reader must handle, made with PyAV.

Clips are small (64×80, 20–60 frames). A plain module (unique name) so tests can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from tests.conftest import encode_video as conftest_encode

from vidlab.io.writer import moving_pattern

X264_OPEN_GOP = "keyint=12:min-keyint=12:scenecut=0:bframes=3:open-gop=1:log-level=error"
X264_ONE_KEY = "keyint=infinite:scenecut=0:bframes=2:log-level=error"


def clip_frames(n: int = 60, h: int = 64, w: int = 80) -> np.ndarray:
    frames = moving_pattern(n, (h, w), seed=3)
    frames[:, :4, :4] = (np.arange(n) * 37 % 256)[:, None, None, None]  # frame-unique marker
    return frames


def encode_video(path: Path, frames: np.ndarray, codec: str = "libx264",
                 pix_fmt: str = "yuv420p", options: dict[str, str] | None = None,
                 rotation: int = 0) -> Path:
    """Encode with PyAV directly (independent of vidlab's writer) at 25 fps; `rotation` is
    written as a display matrix, counter-clockwise as FFmpeg counts it."""
    return conftest_encode(path, frames, fps=25, codec=codec, pix_fmt=pix_fmt, options=options,
                           rotation=rotation)


def _vfr(path: Path) -> Path:
    """H.264 with irregular frame times (variable frame rate), pts crafted by hand."""
    from vidlab.io import write_video

    gaps = np.tile([0.02, 0.05, 0.1, 0.033], 10)
    times = np.concatenate([[0.0], np.cumsum(gaps)[:-1]])
    return write_video(path, clip_frames(len(times)), fps=25, timestamps=times.tolist(),
                       options={"x264-params": "keyint=8:bframes=2:log-level=error"})


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "h264_bframes_open_gop.mp4": lambda p: encode_video(
        p, clip_frames(), options={"x264-params": X264_OPEN_GOP}),
    "h264_single_keyframe.mp4": lambda p: encode_video(
        p, clip_frames(), options={"x264-params": X264_ONE_KEY}),
    "h264_bframes.mkv": lambda p: encode_video(
        p, clip_frames(), options={"x264-params": X264_OPEN_GOP}),
    "h264_vfr.mkv": _vfr,
    "hevc_10bit.mkv": lambda p: encode_video(
        p, clip_frames(40), codec="libx265", pix_fmt="yuv420p10le",
        options={"x265-params": "log-level=error:keyint=10:bframes=3"}),
    "hevc_10bit.mp4": lambda p: encode_video(
        p, clip_frames(30), codec="libx265", pix_fmt="yuv420p10le",
        options={"x265-params": "log-level=error:keyint=10:bframes=3"}),
    "vp9.webm": lambda p: encode_video(p, clip_frames(40), codec="libvpx-vp9",
                                       options={"g": "10", "cpu-used": "8"}),
    "av1.mkv": lambda p: encode_video(p, clip_frames(40), codec="libsvtav1",
                                      options={"g": "16", "preset": "12"}),
    "mjpeg.avi": lambda p: encode_video(p, clip_frames(30), codec="mjpeg", pix_fmt="yuvj420p"),
    "odd_67x45_h264_444.mp4": lambda p: encode_video(
        p, clip_frames(30, 45, 67), pix_fmt="yuv444p",
        options={"x264-params": "keyint=10:bframes=2:log-level=error"}),
    "odd_67x45_vp9.webm": lambda p: encode_video(
        p, clip_frames(30, 45, 67), codec="libvpx-vp9", options={"g": "10", "cpu-used": "8"}),
    "rotated_90.mp4": lambda p: encode_video(p, clip_frames(20), rotation=90),
}


def sequential_decode(path: Path, **convert) -> np.ndarray:
    """Every frame of a plain PyAV decode, in order, upright (display rotation applied)."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            array = frame.to_ndarray(format="rgb24", **convert)
            turn = int(round(frame.rotation or 0)) // 90
            out.append(np.rot90(array, k=turn) if turn else array)
    return np.stack(out)


def add_tone(out: av.container.OutputContainer, seconds: float, rate: int = 16000) -> list:
    """Add an AAC stream to `out`; returns its packets (mux them after the video's)."""
    stream = out.add_stream("aac", rate=rate)
    stream.layout = "mono"
    packets, n = [], 0
    while n < seconds * rate:
        t = (n + np.arange(1024)) / rate
        frame = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(
            np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, n
        packets += stream.encode(frame)
        n += 1024
    return packets + list(stream.encode(None))


def video_with_audio(path: Path, num_frames: int = 30) -> Path:
    """H.264 + AAC in one file, as a camera would record."""
    frames = clip_frames(num_frames)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 80, 64, "yuv420p"
        audio_packets = add_tone(out, num_frames / 25)
        for f in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        for packet in audio_packets:
            out.mux(packet)
    return path


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        for packet in add_tone(out, 1.0):
            out.mux(packet)
    return path
