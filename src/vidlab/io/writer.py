"""Writing video: `VideoWriter` (streaming, atomic), `write_video`, `make_test_video`.

Files are written to a hidden temporary file next to the target and renamed into place when
complete, so an interrupted write never leaves a half file under the user's name; an existing
file is never replaced unless `overwrite=True`.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidlab.errors import OutputExistsError, VideoWriteError

log = logging.getLogger(__name__)

ENCODERS = {
    "h264": "libx264", "avc": "libx264", "h265": "libx265", "hevc": "libx265",
    "vp9": "libvpx-vp9", "av1": "libsvtav1", "mjpeg": "mjpeg", "mpeg4": "mpeg4",
}
"""Short codec names → the FFmpeg encoder used; any encoder name PyAV knows also works."""

_SPEED = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
          "veryslow"]
_SVT_PRESET = dict(zip(_SPEED, [12, 11, 10, 9, 8, 6, 4, 2, 1], strict=True))
_VPX_CPU_USED = dict(zip(_SPEED, [8, 8, 7, 6, 5, 4, 2, 1, 0], strict=True))


def encoder_name(codec: str) -> str:
    """The FFmpeg encoder for a short codec name (`h264`, `h265`, `vp9`, `av1`, `mjpeg`)."""
    name = ENCODERS.get(codec.lower(), codec)
    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - PyAV raises several types for unknown codecs
        known = ", ".join(sorted(ENCODERS))
        raise VideoWriteError(f"unknown or unavailable encoder {codec!r} (try one of: {known})") from None
    return name


def encoder_options(encoder: str, crf: int | None, preset: str | None) -> dict[str, str]:
    """FFmpeg options for a quality (`crf`) and speed (`preset`, x264 names for every codec)."""
    opts: dict[str, str] = {}
    if encoder in ("libx264", "libx265"):
        if crf is not None:
            opts["crf"] = str(crf)
        if preset:
            opts["preset"] = preset
        if encoder == "libx265":
            opts["x265-params"] = "log-level=error"
    elif encoder == "libvpx-vp9":
        opts.update({"crf": str(31 if crf is None else crf), "b": "0", "row-mt": "1"})
        if preset:
            opts["cpu-used"] = str(_VPX_CPU_USED.get(preset, preset))
        else:
            opts["cpu-used"] = "5"
    elif encoder in ("libsvtav1", "libaom-av1"):
        if crf is not None:
            opts["crf"] = str(crf)
        if preset:
            key = "preset" if encoder == "libsvtav1" else "cpu-used"
            opts[key] = str(_SVT_PRESET.get(preset, preset))
    elif encoder in ("mjpeg", "mpeg4") and crf is not None:
        opts["q:v"] = str(max(2, min(31, crf)))
    return opts


def as_rate(fps: float | Fraction) -> Fraction:
    """A frame rate as a small exact fraction (29.97 → 30000/1001)."""
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise VideoWriteError(f"fps must be positive, got {fps}")
    return rate


def temp_path_for(path: Path) -> Path:
    """A hidden temporary file next to `path`, with the same extension (so the muxer matches)."""
    return path.with_name(f".{path.stem}.vidlab-tmp-{uuid.uuid4().hex[:8]}{path.suffix}")


def check_output(path: str | os.PathLike, overwrite: bool,
                 source: str | os.PathLike | None = None) -> Path:
    """`path` as a place to write a new video; `source`, the file it is made from, is never it
    (reading a file while replacing it would lose the user's original and measure nothing)."""
    path = Path(path)
    if source is not None and path.exists() and Path(source).exists() \
            and os.path.samefile(path, source):
        raise VideoWriteError("output is the input file; write to another path", path)
    if path.exists() and not overwrite:
        raise OutputExistsError(path=path)
    if path.is_dir():
        raise VideoWriteError("is a directory", path)
    if not path.parent.is_dir():
        raise VideoWriteError("parent directory does not exist", path)
    return path


_PLANAR_8BIT = frozenset({"yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuvj444p",
                          "gray"})


def _clear_row_padding(frame: av.VideoFrame) -> None:
    """Zero the bytes past each row's width in every plane of an 8-bit planar frame. FFmpeg's
    scaler leaves them uninitialised and x264 reads them: the same frames encoded twice in one
    process gave different bytes (chroma rows of 40 px in 48-byte lines, 2026-12-03)."""
    for plane in frame.planes:
        if plane.line_size > plane.width:
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
            rows[:, plane.width:] = 0


class VideoWriter:
    """Stream frames into a video file atomically (see module doc).

    `write(frame, time=None)` takes `uint8 H×W×3` RGB (or an `av.VideoFrame`); `time` in
    seconds keeps variable frame rates (default: frame number / fps). Odd sizes are padded by
    one edge-replicated row/column for 4:2:0 pixel formats, which need even dimensions.
    `audio_from` copies (or, when the container cannot hold it, re-encodes) the audio of
    another file alongside. `time_base` (default `1/fps`) sets the timestamp resolution: give
    a finer one to keep variable frame rates. Use as a context manager: an exception discards the temporary file.
    """

    def __init__(self, path: str | os.PathLike, fps: float | Fraction = 25, codec: str = "h264",
                 crf: int | None = None, preset: str | None = None, pix_fmt: str | None = None,
                 options: dict[str, str] | None = None, overwrite: bool = False,
                 audio_from: str | os.PathLike | None = None, bit_rate: int | None = None,
                 container_options: dict[str, str] | None = None,
                 time_base: Fraction | None = None):
        self.path = check_output(path, overwrite)
        self.encoder = encoder_name(codec)
        self.rate = as_rate(fps)
        self.pix_fmt = pix_fmt or ("yuvj420p" if self.encoder == "mjpeg" else "yuv420p")
        self.options = {**encoder_options(self.encoder, crf, preset), **(options or {})}
        self.bit_rate = bit_rate
        self.container_options = container_options or {}
        self.time_base = Fraction(time_base) if time_base else None
        self.audio_from = Path(audio_from) if audio_from else None
        self.frames_written = 0
        self._tmp = temp_path_for(self.path)
        self._out: Any = None
        self._stream: Any = None
        self._audio: Any = None
        self._last_pts = -1
        self._closed = False

    def _open(self, width: int, height: int) -> None:
        if self.encoder == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # errors only; SVT prints banners otherwise
        try:
            self._out = av.open(str(self._tmp), "w", options=self.container_options)
            stream = self._out.add_stream(self.encoder, rate=self.rate)
            stream.width, stream.height, stream.pix_fmt = width, height, self.pix_fmt
            fixed_rate = self._out.format.name == "avi"  # AVI has one tick per frame
            stream.codec_context.time_base = (1 / self.rate if fixed_rate or not self.time_base
                                              else self.time_base)
            if self.bit_rate:
                stream.bit_rate = self.bit_rate
            stream.options = self.options
            if str(self.options.get("threads", "")).isdigit():
                # PyAV opens the codec with its own thread_count (0 = auto), which overrides the
                # "threads" option; a pinned count is what makes x264 output reproducible
                stream.codec_context.thread_count = int(self.options["threads"])
            self._stream = stream
            if self.audio_from is not None:
                from vidlab.io.audio import AudioPassthrough

                self._audio = AudioPassthrough(self.audio_from, self._out)
        except (av.error.FFmpegError, ValueError) as exc:
            self.abort()
            raise VideoWriteError(f"cannot open the {self.encoder} encoder ({exc})", self.path) from None

    def _padded(self, frame: np.ndarray) -> np.ndarray:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise VideoWriteError(f"frames must be uint8 H×W×3 RGB, got {frame.dtype} "
                                  f"{frame.shape}", self.path)
        h, w = frame.shape[:2]
        if "420" in self.pix_fmt or "422" in self.pix_fmt:
            ph, pw = h % 2, w % 2
            if ph or pw:
                frame = np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge")
        return frame

    def write(self, frame: np.ndarray | av.VideoFrame, time: float | None = None) -> None:
        """Encode one frame shown at `time` seconds (default: `frames_written / fps`)."""
        if isinstance(frame, np.ndarray):
            frame = av.VideoFrame.from_ndarray(self._padded(np.asarray(frame)), format="rgb24")
        if self._out is None:
            self._open(frame.width, frame.height)
        ctx = self._stream.codec_context
        tb = ctx.time_base
        t = self.frames_written / self.rate if time is None else Fraction(time)
        pts = int(round(t / tb))
        pts = max(pts, self._last_pts + 1)  # encoders need strictly increasing timestamps
        self._last_pts = pts
        frame.pts, frame.time_base = pts, tb
        frame.pict_type = av.video.frame.PictureType.NONE
        if frame.width != self._stream.width or frame.height != self._stream.height:
            frame = frame.reformat(width=self._stream.width, height=self._stream.height)
        if self.pix_fmt in _PLANAR_8BIT:
            if frame.format.name != self.pix_fmt:
                frame = frame.reformat(format=self.pix_fmt)
            _clear_row_padding(frame)
        try:
            for packet in self._stream.encode(frame):
                self._mux(packet)
        except av.error.FFmpegError as exc:
            self.abort()
            raise VideoWriteError(f"encoding frame {self.frames_written} failed ({exc})",
                                  self.path) from None
        self.frames_written += 1

    def _mux(self, packet: av.Packet) -> None:
        if self._audio is not None and packet.pts is not None:
            self._audio.mux_until(float(packet.pts * packet.time_base))
        self._out.mux(packet)

    def close(self) -> Path:
        """Flush, finish the file and move it into place; returns the final path."""
        if self._closed:
            return self.path
        if self._out is None:
            self.abort()
            raise VideoWriteError("no frames to write", self.path)
        try:
            for packet in self._stream.encode(None):
                self._mux(packet)
            if self._audio is not None:
                self._audio.finish()
            self._out.close()
        except av.error.FFmpegError as exc:
            self.abort()
            raise VideoWriteError(f"finishing the file failed ({exc})", self.path) from None
        os.replace(self._tmp, self.path)
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Discard everything written so far (the target path is left untouched)."""
        self._closed = True
        for closeable in (self._audio, self._out):
            try:
                if closeable is not None:
                    closeable.close()
            except Exception:  # noqa: BLE001 - best effort while failing already
                pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray],
                fps: float = 25, codec: str = "h264", crf: int | None = None,
                preset: str | None = None, pix_fmt: str | None = None,
                timestamps: Sequence[float] | None = None, overwrite: bool = False,
                audio_from: str | os.PathLike | None = None,
                options: dict[str, str] | None = None,
                container_options: dict[str, str] | None = None) -> Path:
    """Encode `uint8 T×H×W×3` RGB frames (array or iterable) to `path`, atomically.

    `timestamps` (seconds, one per frame) keep a variable frame rate; `options` go to the
    encoder, `container_options` to the muxer (e.g. `{"movflags": "faststart"}`). Odd sizes are padded to
    even for 4:2:0 (see `VideoWriter`). Raises `OutputExistsError` unless `overwrite=True`.
    """
    writer = VideoWriter(path, fps=fps, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt,
                         options=options, overwrite=overwrite, audio_from=audio_from,
                         container_options=container_options,
                         time_base=Fraction(1, 90000) if timestamps is not None else None)
    with writer:
        for i, frame in enumerate(frames):
            writer.write(frame, None if timestamps is None else timestamps[i])
    return writer.path


def moving_pattern(num_frames: int = 48, size: tuple[int, int] = (96, 128),
                 seed: int = 0) -> np.ndarray:
    """`uint8 T×H×W×3` frames of a textured background with a moving square (every frame
    different, smooth enough for lossy codecs)."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([(xx * 255 // max(1, w - 1)), (yy * 255 // max(1, h - 1)),
                           ((xx + yy) * 2) % 256], -1).astype(np.uint8)
    colour = rng.integers(60, 255, size=3).astype(np.uint8)
    side = max(4, min(h, w) // 4)
    frames = np.repeat(background[None], num_frames, axis=0)
    for t in range(num_frames):
        x0 = (t * 3) % max(1, w - side)
        y0 = int((h - side) / 2 + (h - side) / 3 * np.sin(t / 6))
        frames[t, y0:y0 + side, x0:x0 + side] = colour
    return frames


def make_test_video(path: str | os.PathLike, num_frames: int = 48,
                    size: tuple[int, int] = (96, 128), fps: float = 24,
                    overwrite: bool = True) -> Path:
    """Write a small real H.264 MP4 of moving content (for demos and smoke tests); unlike
    `write_video` it replaces an existing file by default, as it is meant for temp paths."""
    return write_video(path, moving_pattern(num_frames, size), fps=fps, codec="h264",
                       overwrite=overwrite)
