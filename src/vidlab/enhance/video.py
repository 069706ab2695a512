"""`enhance_video`: a whole video through an enhancer, streamed, timestamps and audio kept."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

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
    (4x slower). A model trained with QP maps (`--qp`) reads them from the decoder (H.264);
    for other codecs it runs blind (`qp_map_frames` counts the frames that had one). Returns what was done and how fast.
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
    qps: deque[np.ndarray | None] = deque()
    with_qp = [0]  # frames whose QP map the model read
    decoded = (reader.iter_frames_with_qp() if model.qp_input else
               ((i, t, f, None) for i, t, f in reader.iter_frames_with_time()))

    def frames() -> Iterator[np.ndarray]:
        for _, seconds, frame, qp in decoded:
            times.append(seconds)
            qps.append(qp)
            with_qp[0] += qp is not None
            yield frame

    def frame_qps() -> Iterator[np.ndarray | None]:  # in step: zip asks for a frame first
        while qps:
            yield qps.popleft()

    started = time.perf_counter()
    with writer:
        bar = progress(total=n, desc=f"enhance ({b.config.get('enhance_task')})")
        for i, out in enumerate(enhance_stream(model, frames(), tile, ensemble, frame_qps())):
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
        "qp_map_frames": with_qp[0],
        "frames_per_s": round(writer.frames_written / max(elapsed, 1e-9), 2),
        "skipped_corrupt": reader.num_corrupt,
    }
