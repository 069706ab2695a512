"""A clip as a user's decoder gives it: RGB frames (unbiased), each frame's QP, the codec and
the decoder's own Y planes — what training, calibration, the protocol and `vidlab enhance`
all read from a coded file, so they agree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidlab.io.reader import EXACT_RGB


@dataclass
class CodedClip:
    """A clip as a user's decoder gives it: frames, each frame's QP (None: unknown), codec, and
    the decoder's own 8-bit Y planes (what MFQE/LDV and `vidlab quality` score)."""

    frames: np.ndarray
    qps: list[float | None]
    codec: str
    qp_source: str
    luma: np.ndarray | None = None


def coded_luma(frames: np.ndarray) -> np.ndarray:
    """The 8-bit Y planes an encoder is given for `uint8 T×H×W×3` RGB frames (FFmpeg's
    RGB → YUV 4:2:0 conversion, BT.601 limited range): how an output is scored on the
    codec's own scale."""
    import av

    h = frames.shape[1]
    return np.stack([av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                     .reformat(format="yuv420p").to_ndarray()[:h] for f in frames])


def read_coded(path: str | Path, with_luma: bool = True) -> CodedClip:
    """Decode a file with the QP information `vidlab enhance` uses (`frame_qps`); `with_luma`
    also keeps the decoder's Y planes, from the same decode (scoring needs them, training not)."""
    from vidlab.io import VideoReader

    with VideoReader(path, pixel_format=EXACT_RGB) as r:
        codec = r.info.codec
        _, _, frames, maps, lumas = zip(*r.iter_frames_with_qp_and_luma(luma=with_luma),
                                        strict=True)
    qps, source = frame_qps(list(maps), path)
    return CodedClip(np.stack(frames), qps, codec, source,
                     np.stack(lumas) if with_luma else None)


def frame_qps(maps: list[np.ndarray | None], path: str | Path) -> tuple[list[float | None], str]:
    """Per-frame QP: the mean of the decoder's H.264 QP map where there is one, else the
    stream's nominal QP from x264/x265 settings (`vidlab.io.qp`), else None; and the source."""
    from vidlab.io.qp import nominal_qp, stream_encoder_settings

    if maps and all(m is not None for m in maps):
        return [float(m.mean()) for m in maps], "h264 qp map"
    settings = stream_encoder_settings(path)
    qp = nominal_qp(settings)
    if qp is None:
        return [None] * len(maps), "unknown"
    return [qp] * len(maps), f"{settings['encoder']} {settings['rc']} setting"
