"""The baselines an enhancer must beat: FFmpeg's own filters (run through PyAV's filter graph,
on the same frames) and bicubic upscaling.

`hqdn3d` is GPL-only and absent from PyAV's bundled FFmpeg; `available_filters()` says which of
the classic denoisers/deblockers this build has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction

import av
import numpy as np

from vidlab.enhance.degrade import upscale2x_bicubic
from vidlab.io.reader import exact_rgb

DENOISERS = {
    "hqdn3d": "hqdn3d",
    "nlmeans": "nlmeans",
    "atadenoise": "atadenoise",
    "deblock": "deblock",
    "bm3d": "bm3d=sigma=10",
}
"""Baseline name → FFmpeg filter description (default settings unless given)."""


def available_filters() -> dict[str, bool]:
    """Which baseline filters this FFmpeg build has."""
    from av.filter import filters_available

    return {name: spec.split("=")[0] in filters_available for name, spec in DENOISERS.items()}


def filter_frames(frames: Iterable[av.VideoFrame], spec: str) -> Iterator[av.VideoFrame]:
    """Stream `av.VideoFrame`s through the FFmpeg filter chain `spec` (e.g. "nlmeans=s=3")."""
    graph = None
    src = sink = None
    for frame in frames:
        if graph is None:
            graph = av.filter.Graph()
            src = graph.add_buffer(width=frame.width, height=frame.height,
                                   format=frame.format.name,
                                   time_base=frame.time_base or Fraction(1, 25))
            last = src
            for part in spec.split(","):
                name, _, args = part.partition("=")
                node = graph.add(name, args or None)
                last.link_to(node)
                last = node
            sink = graph.add("buffersink")
            last.link_to(sink)
            graph.configure()
        src.push(frame)
        yield from _drain(sink)
    if graph is not None:
        src.push(None)
        yield from _drain(sink)


def _drain(sink) -> Iterator[av.VideoFrame]:
    while True:
        try:
            yield sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


def ffmpeg_filter(frames: np.ndarray, spec: str) -> np.ndarray:
    """`uint8 T×H×W×3` RGB through an FFmpeg filter applied in yuv420p (as on a decoded video)."""
    def to_av() -> Iterator[av.VideoFrame]:
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf = vf.reformat(format="yuv420p")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            yield vf

    spec = DENOISERS.get(spec, spec)
    out = [exact_rgb(f) for f in filter_frames(to_av(), spec)]
    return np.stack(out)


def bicubic2x(frames: np.ndarray) -> np.ndarray:
    """Bicubic 2x upscaling of `uint8 T×H×W×3` (the same interpolation sr2x refines)."""
    return upscale2x_bicubic(frames)
