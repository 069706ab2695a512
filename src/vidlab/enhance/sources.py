"""Clean training clips from ordinary videos: downscaled, cut into short segments.

A restoration network learns to undo compression, so its targets must be cleaner than what it
will see. Web and sample videos are themselves compressed; downscaling them 2–6× with an
anti-aliased filter averages their own artifacts away while keeping natural texture, motion
and edges — the usual way restoration training sets (REDS, Vimeo-90K) are prepared. Segments
are written near-lossless (H.264 crf 4) into a folder (`OUT/natural/<video>_s<scale>_<k>.mp4`),
so every vidlab data command reads them and whole segments can be held out for validation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidlab.errors import OutputExistsError, VidlabError
from vidlab.io.reader import EXACT_RGB

log = logging.getLogger(__name__)


def downscale(frames: np.ndarray, factor: float) -> np.ndarray:
    """Anti-aliased bicubic downscaling of `uint8 T×H×W×3` by `factor`, to even sizes."""
    t, h, w, _ = frames.shape
    oh, ow = max(16, round(h / factor)) // 2 * 2, max(16, round(w / factor)) // 2 * 2
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(oh, ow), mode="bicubic", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def derive_clips(videos: Iterable[str | Path], out: str | Path, scales: Iterable[float] = (2, 3),
                 segment_frames: int = 40, overwrite: bool = False) -> list[Path]:
    """Write every video at every downscale factor, cut into `segment_frames`-frame segments.

    Frames are streamed: memory holds one segment, however long the video. Factors that would
    leave frames under 64 px are skipped; unreadable videos are logged and skipped. Raises `OutputExistsError` if a segment exists and not `overwrite`.
    """
    from vidlab.io import VideoReader, write_video

    folder = Path(out) / "natural"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for video in map(Path, videos):
        try:
            with VideoReader(video, pixel_format=EXACT_RGB) as reader:
                fps = reader.fps or 25.0
                factors = [f for f in scales if min(reader.shape) / f >= 64]
                # one segment in memory at a time, however long the video
                for k, segment in enumerate(_segments(reader.iter_frames(), segment_frames)):
                    for factor in factors:
                        path = folder / f"{video.stem}_s{factor:g}_{k:02d}.mp4"
                        if path.exists() and not overwrite:
                            raise OutputExistsError(path=path)
                        write_video(path, downscale(segment, factor), fps=fps, codec="h264",
                                    crf=4, overwrite=overwrite)
                        written.append(path)
        except OutputExistsError:
            raise
        except VidlabError as exc:
            log.warning("%s: skipped (%s)", video, exc)
    return written


def _segments(frames: Iterable[np.ndarray], length: int) -> Iterator[np.ndarray]:
    """Consecutive whole `length`-frame chunks of a frame stream (a short tail is dropped)."""
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == length:
            yield np.stack(chunk)
            chunk = []


def main(argv: list[str] | None = None) -> None:
    """`python -m vidlab.enhance.sources OUT VIDEO... [--scales 2,3] [--segment 40]`"""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("out")
    p.add_argument("videos", nargs="+")
    p.add_argument("--scales", default="2,3")
    p.add_argument("--segment", type=int, default=40)
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    paths = derive_clips(a.videos, a.out, [float(s) for s in a.scales.split(",")], a.segment,
                         a.overwrite)
    print(f"{len(paths)} clips in {Path(a.out) / 'natural'}")


if __name__ == "__main__":
    main()
