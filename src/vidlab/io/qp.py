"""Quantiser maps from the decoder: how coarsely each block of a decoded frame was coded.

FFmpeg's H.264 decoder exports, when asked (`export_side_data=venc_params`), the quantisation
parameter (QP) of every macroblock. A restoration model that sees it can match its strength to
the damage instead of guessing it from the pixels. FFmpeg's HEVC and AV1 decoders export no
such map, and VP9's quantiser index is on another scale, so only H.264 maps are returned;
everything else reads as unknown (None).
"""

from __future__ import annotations

import struct

import av
import numpy as np

H264_QP_MAX = 51
EXPORT_OPTIONS = {"export_side_data": "venc_params"}
"""Decoder options that make FFmpeg attach the QP map to each frame."""

_HEADER = struct.Struct("<I4xQQii")  # AVVideoEncParams: nb_blocks, blocks_offset, block_size,
_H264 = 1  # type, qp (then delta_qp[4][2]); each block: src_x, src_y, w, h, delta_qp (int32)


def qp_map(frame: av.VideoFrame) -> np.ndarray | None:
    """`uint8 H×W`: the H.264 QP of the block each pixel belongs to; None when the frame
    carries no H.264 QP map (another codec, or a decoder opened without `EXPORT_OPTIONS`)."""
    params = next((sd for sd in frame.side_data if sd.type.name == "VIDEO_ENC_PARAMS"), None)
    if params is None:
        return None
    raw = bytes(params)
    count, offset, stride, kind, base = _HEADER.unpack_from(raw)
    if kind != _H264:
        return None
    h, w = frame.height, frame.width
    qp = np.full((h, w), base, np.int32)
    if count:  # H.264 blocks are the 16×16 macroblocks: a grid, filled at once
        x, y, bw, bh, delta = np.ndarray((count, 5), "<i4", raw, offset, (stride, 4)).T
        side = int(bw[0])
        if side < 1 or (bw != side).any() or (bh != side).any() or (x % side).any() \
                or (y % side).any():
            return None  # not the layout H.264 decoders export: unknown rather than wrong
        grid = np.zeros((-(-h // side), -(-w // side)), np.int32)
        grid[y // side, x // side] = delta
        qp += np.repeat(np.repeat(grid, side, 0), side, 1)[:h, :w]
    return np.clip(qp, 0, H264_QP_MAX).astype(np.uint8)


ENCODER_NAMES = ("x264", "x265")


def encoder_settings(frame: av.VideoFrame) -> dict[str, str] | None:
    """The settings x264/x265 wrote into the stream (a user-data SEI on the first frame:
    `x265 ... options: ... rc=cqp ... qp=37 ...`) as `{"encoder": "x265", "rc": "cqp", "qp":
    "37", "crf": ..., "bframes": ...}`; None when the frame carries none (other encoders,
    stripped streams). FFmpeg's HEVC decoder exports no QP map, so for x265 streams this is
    the quantiser's only trace short of parsing slice headers."""
    for sd in frame.side_data:
        if sd.type.name != "SEI_UNREGISTERED":
            continue
        text = bytes(sd)[16:].decode("latin-1", "replace")  # after the 16-byte UUID
        encoder = next((e for e in ENCODER_NAMES if text.startswith(e)), None)
        if encoder is None:
            continue
        found = {"encoder": encoder}
        for token in text.split():
            key, eq, value = token.partition("=")
            if eq and key in ("rc", "qp", "crf", "bframes") and key not in found:
                found[key] = value
        return found
    return None


def nominal_qp(settings: dict[str, str] | None) -> float | None:
    """The stream's quantiser on the 0–51 scale from `encoder_settings`: the constant QP of a
    `rc=cqp` stream, the CRF of a `rc=crf` one (x264/x265 CRF sits near the mean P-frame QP);
    None for bitrate-driven or unknown rate control."""
    if not settings:
        return None
    key = {"cqp": "qp", "crf": "crf"}.get(settings.get("rc", ""))
    try:
        return float(settings[key]) if key else None
    except (KeyError, ValueError):
        return None


def stream_encoder_settings(path) -> dict[str, str] | None:
    """`encoder_settings` of a video file's first decodable frame (None if it has none or
    cannot be read: this is a hint, never a reason to fail)."""
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                return encoder_settings(frame)
    except (av.error.FFmpegError, OSError, StopIteration):
        return None
    return None
