"""`enhance_video`: a whole video through an enhancer, streamed, timestamps and audio kept."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vidlab.enhance.infer import TILE, enhance_stream, load_enhancer
from vidlab.errors import VideoWriteError
from vidlab.progress import progress

DEFAULT_CRF = 18
"""Visually near-transparent for H.264/H.265, so the output does not undo the enhancement."""


def enhance_video(bundle: str | Path, src: str | Path, dst: str | Path, codec: str = "h264",
                  crf: int | None = DEFAULT_CRF, overwrite: bool = False,
                  preset: str | None = None, tile: int = TILE,
                  threads: int | None = None, ensemble: bool = False) -> dict[str, Any]:
    """Enhance every frame of `src` into `dst` (atomic write; `OutputExistsError` unless
    `overwrite`). Frame count and timestamps are kept; audio is copied through.

    Memory is bounded: a sliding window of `num_frames` decoded frames, and frames with a side
    above `tile` are processed in overlapping tiles. `ensemble` averages over input flips
    (4x slower). Returns what was done and how fast.
    """
    import torch

    from vidlab.io import VideoReader, VideoWriter

    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise VideoWriteError("output is the input file; write to another path", dst)
    if threads:
        torch.set_num_threads(threads)
    model, b = load_enhancer(bundle)
    reader = VideoReader(src)
    n, (h, w) = len(reader), reader.shape
    s = model.scale
    odd = (w * s) % 2 or (h * s) % 2  # 4:2:0 needs even sizes; 4:4:4 keeps odd ones exact
    writer = VideoWriter(dst, fps=reader.fps, codec=codec, crf=crf, preset=preset,
                         pix_fmt="yuv444p" if odd else None, overwrite=overwrite,
                         audio_from=src)
    times: list[float] = []

    def frames():
        for _, seconds, frame in reader.iter_frames_with_time():
            times.append(seconds)
            yield frame

    started = time.perf_counter()
    with writer:
        bar = progress(total=n, desc=f"enhance ({b.config.get('enhance_task')})")
        for i, out in enumerate(enhance_stream(model, frames(), tile, ensemble)):
            writer.write(out, times[i])
            bar.update(1)
        bar.close()
    elapsed = time.perf_counter() - started
    reader.close()
    return {
        "bundle": str(b.path), "task": b.config.get("enhance_task"), "src": str(src),
        "dst": str(dst), "frames": writer.frames_written, "fps": round(float(reader.fps), 3),
        "width": w * s, "height": h * s, "input_width": w, "input_height": h,
        "codec": codec, "crf": crf, "ensemble": ensemble, "seconds": round(elapsed, 3),
        "frames_per_s": round(writer.frames_written / max(elapsed, 1e-9), 2),
        "skipped_corrupt": reader.num_corrupt,
    }
