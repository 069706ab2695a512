"""`transcode`: re-encode a video (codec, quality, size, frame rate), streaming and atomic.

Frames stream from a `VideoReader` (rotation applied, resized in FFmpeg's scaler) into a
`VideoWriter`, so memory is a few frames whatever the length; the source's timestamps are kept
(variable frame rates survive) unless `fps` asks for a constant rate, and audio is carried over.
The result reports the size change and the luma PSNR of the output on sampled frames.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.io.probe import probe
from vidlab.io.quality import psnr
from vidlab.io.reader import Size, VideoReader
from vidlab.io.writer import VideoWriter, check_output

PSNR_SAMPLES = 8


@dataclass
class TranscodeResult:
    """What a transcode produced: sizes, compression ratio, sampled-frame PSNR, time."""

    src: str
    dst: str
    codec: str
    crf: int | None
    preset: str | None
    width: int
    height: int
    fps: float
    num_frames: int
    input_bytes: int
    output_bytes: int
    compression_ratio: float
    """`input_bytes / output_bytes` (above 1: the output is smaller)."""
    psnr: float
    """Mean luma PSNR (dB) of output vs input on `psnr_frames` evenly spaced frames."""
    psnr_frames: int
    seconds: float
    has_audio: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _source_for_output(times: np.ndarray, fps: float | None) -> np.ndarray:
    """Source frame index of each output frame: all of them, or at a constant `fps` the last
    source frame shown at each output instant (frames dropped or repeated by time)."""
    if fps is None:
        return np.arange(len(times))
    end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1.0 / fps)
    out_times = np.arange(int(np.ceil(end * fps - 1e-6))) / fps
    return np.clip(np.searchsorted(times, out_times + 1e-6, side="right") - 1, 0, len(times) - 1)


def transcode(src: str | os.PathLike, dst: str | os.PathLike, codec: str = "h264",
              crf: int | None = None, preset: str | None = None, size: Size = None,
              fps: float | None = None, overwrite: bool = False, gop: int | None = None,
              threads: int | None = None) -> TranscodeResult:
    """Re-encode `src` into `dst` with `codec` (`h264`, `h265`, `vp9`, `av1`).

    `size` is a short side or `(h, w)`; `fps` resamples to a constant rate; `gop` caps the
    keyframe interval (short GOPs keep random access cheap); `threads` pins the encoder's
    threads (1: the same bytes on every machine, for reproducible datasets). Raises
    `OutputExistsError` if `dst` exists and not `overwrite`; a failure leaves no partial file.
    """
    started = time.perf_counter()
    src, dst = Path(src), check_output(dst, overwrite, source=src)
    info = probe(src)
    reader = VideoReader(src, size=size)
    times = reader.timestamps
    source_of = _source_for_output(times, fps)
    sample_out = np.linspace(0, len(source_of) - 1, min(PSNR_SAMPLES, len(source_of)))
    sample_out = sorted(set(sample_out.round().astype(int).tolist()))
    out_rate = fps or info.fps
    options = {"g": str(gop)} if gop else {}
    if threads:
        options["threads"] = str(threads)
    writer = VideoWriter(dst, fps=out_rate, codec=codec, crf=crf, preset=preset,
                         options=options, overwrite=overwrite, audio_from=src if info.has_audio else None,
                         time_base=reader.table.time_base if fps is None else None)
    with reader, writer:
        k = 0
        for i, t, frame in reader.iter_frames_with_time():
            while k < len(source_of) and source_of[k] <= i:
                if source_of[k] == i:
                    writer.write(frame, time=t if fps is None else k / fps)
                k += 1
    out_h, out_w = reader.shape
    # PSNR on the coded luma planes, as `quality` measures it, on evenly spaced frames.
    with VideoReader(src, size=(out_h, out_w), pixel_format="gray") as ref, \
            VideoReader(dst, pixel_format="gray") as out_reader:
        expected = ref.get_frames(source_of[sample_out])
        decoded = out_reader.get_frames(sample_out)[:, :out_h, :out_w]  # drop 4:2:0 padding
        scores = [psnr(a, b) for a, b in zip(expected, decoded, strict=True)]
        out_info = out_reader.info
    in_bytes, out_bytes = src.stat().st_size, dst.stat().st_size
    return TranscodeResult(
        src=str(src), dst=str(dst), codec=writer.encoder, crf=crf, preset=preset,
        width=out_info.width, height=out_info.height, fps=out_info.fps,
        num_frames=out_info.num_frames, input_bytes=in_bytes, output_bytes=out_bytes,
        compression_ratio=round(in_bytes / max(1, out_bytes), 4),
        psnr=round(float(np.mean(scores)), 4) if scores else float("nan"),
        psnr_frames=len(scores), seconds=round(time.perf_counter() - started, 3),
        has_audio=out_info.has_audio,
    )
