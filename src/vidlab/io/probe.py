"""Probing: what a video file is, and its exact frame table built from packets (demux only).

The frame table is the basis of exact random access: frame `i` is the packet with the `i`-th
smallest presentation timestamp, which is the `i`-th frame a full sequential decode yields.
Building it reads every packet but decodes only the first frame (to check that the stream
decodes and to read its display rotation), so it costs milliseconds, not a decode.
"""

from __future__ import annotations

import bisect
import io
import logging
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidlab.errors import VideoDecodeError, VideoOpenError

log = logging.getLogger(__name__)


@dataclass
class VideoInfo:
    """What `probe` reports. `width`/`height` are the displayed (rotation applied) size."""

    path: str
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str | None
    rotation: int
    """Degrees the stored frames are turned clockwise for display (0, 90, 180, 270) — the
    legacy `rotate` tag; ffprobe's display-matrix `rotation` is its negative."""
    fps: float
    """Average frame rate: `num_frames / duration`."""
    num_frames: int
    """Exact: counted from the packets, not taken from the container header."""
    duration: float
    bit_rate: int | None
    has_audio: bool
    keyframes: int | None
    container: str = ""
    coded_width: int = 0
    coded_height: int = 0
    truncated: bool = False
    """The container declares more data than the file holds; `num_frames` counts what is there."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FrameTable:
    """Frame index ↔ timestamp table of one video stream, in presentation order.

    `pts[i]` is the timestamp of frame `i`; `seek_pos[i]` the decode-order position of the
    keyframe packet to start decoding from to get frame `i` (-1: from the start of the file);
    `dec_pts`/`dec_dts` the timestamps of each decode-order position and `key_pos` the
    positions of keyframes (for seeking).
    """

    pts: np.ndarray
    seek_pos: np.ndarray
    dec_pts: np.ndarray
    dec_dts: np.ndarray
    key_pos: np.ndarray
    time_base: Fraction
    index_of_pts: dict[int, int] = field(default_factory=dict)
    pos_of_pts: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index_of_pts = {int(p): i for i, p in enumerate(self.pts)}
        self.pos_of_pts = {int(p): d for d, p in enumerate(self.dec_pts)}

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def seconds(self) -> np.ndarray:
        """Presentation time of each frame, in seconds from the first frame."""
        return (self.pts - (self.pts[0] if len(self.pts) else 0)) * float(self.time_base)


@dataclass(frozen=True, repr=False)
class VideoBytes:
    """A video held in memory (a sample streamed from a shard): read like a file, named in
    messages by `name` (e.g. `train-000003.tar:000123.mp4`)."""

    data: bytes
    name: str

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"VideoBytes({self.name!r}, {len(self.data)} bytes)"


Source = str | os.PathLike | VideoBytes
"""What can be opened as a video: a path, or a `VideoBytes`."""


def as_source(source: Source) -> Path | VideoBytes:
    """A `Path`, or the `VideoBytes` as it is."""
    return source if isinstance(source, VideoBytes) else Path(source)


def _check_file(path: Path | VideoBytes) -> None:
    if isinstance(path, VideoBytes):
        if not path.data:
            raise VideoOpenError("empty (0 bytes)", path)
        return
    if not path.exists():
        raise VideoOpenError("no such file", path)
    if path.is_dir():
        raise VideoOpenError("is a directory, not a video file", path)
    if path.stat().st_size == 0:
        raise VideoOpenError("empty file (0 bytes)", path)


def _looks_like_mp4(path: Path | VideoBytes) -> bool:
    if isinstance(path, VideoBytes):
        head = path.data[:12]
    else:
        with open(path, "rb") as fh:
            head = fh.read(12)
    return head[4:8] in (b"ftyp", b"mdat", b"free", b"wide", b"moov")


def open_container(path: Source) -> av.container.InputContainer:
    """Open a file (or `VideoBytes`) for reading, turning FFmpeg's errors into
    `VideoOpenError`/`VideoDecodeError`."""
    path = as_source(path)
    _check_file(path)
    target = io.BytesIO(path.data) if isinstance(path, VideoBytes) else str(path)
    try:
        container = av.open(target, "r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        if _looks_like_mp4(path):
            raise VideoDecodeError(
                f"truncated or incomplete MP4, cannot be read (moov atom missing?): {exc}", path
            ) from None
        raise VideoOpenError(f"not a video file FFmpeg can read ({exc})", path) from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise VideoOpenError(f"no video stream (streams: {', '.join(kinds)})", path)
    return container


def _seek_positions(dec_pts: np.ndarray, dec_key: np.ndarray) -> dict[int, int]:
    """For each packet (by pts), the decode position of the keyframe to start decoding from.

    That is the last keyframe at or before the packet in decode order whose own pts is not
    after the packet's: open-GOP leading B-frames (shown before their I-frame but decoded
    after it) then start from the previous GOP, whose frames they reference.
    """
    key_positions = np.flatnonzero(dec_key).tolist()
    out: dict[int, int] = {}
    for d, p in enumerate(dec_pts.tolist()):
        k = bisect.bisect_right(key_positions, d) - 1
        while k >= 0 and dec_pts[key_positions[k]] > p:
            k -= 1
        out[p] = key_positions[k] if k >= 0 else -1
    return out


def _first_frame_rotation(ctx: Any, packet: av.Packet, state: dict) -> None:
    """Feed packets until the decoder yields its first frame; remember its rotation."""
    try:
        for frame in ctx.decode(packet):
            state["rotation"] = int(round(frame.rotation or 0))
            state["decoded"] = True
            return
    except av.error.FFmpegError as exc:
        state["errors"] += 1
        state["last_error"] = str(exc)


def scan(path: Source) -> tuple[VideoInfo, FrameTable]:
    """Probe `path` (a file or `VideoBytes`) and build its frame table in one demux pass (see
    module doc)."""
    path = as_source(path)
    container = open_container(path)
    try:
        return _scan_open(path, container)
    finally:
        container.close()


def _scan_open(path: Path | VideoBytes, container: av.container.InputContainer) -> tuple[VideoInfo, FrameTable]:
    stream = container.streams.video[0]
    ctx = stream.codec_context
    ctx.thread_type = "SLICE"  # no frame-threading delay: the first frame comes out at once
    pts_list: list[int] = []
    dts_list: list[int] = []
    key_list: list[bool] = []
    durations: list[int] = []
    total_bytes = 0
    state = {"decoded": False, "rotation": 0, "errors": 0, "last_error": ""}
    truncated = False
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                raise VideoOpenError("packets carry no timestamps (raw elementary stream?); "
                                     "remux it into MP4/MKV first", path)
            pts_list.append(int(ts))
            dts_list.append(int(packet.dts) if packet.dts is not None else int(ts))
            key_list.append(bool(packet.is_keyframe))
            durations.append(int(packet.duration or 0))
            total_bytes += packet.size
            if not state["decoded"] and state["errors"] < 50:
                _first_frame_rotation(ctx, packet, state)
    except av.error.FFmpegError as exc:
        truncated = True
        log.warning("%s: stopped reading packets after %d frames: %s", path, len(pts_list), exc)
    if not state["decoded"] and pts_list:
        try:  # decoders with delay (frame threads, B-frames) give their first frame on flush
            for frame in ctx.decode(None):
                state["rotation"], state["decoded"] = int(round(frame.rotation or 0)), True
                break
        except av.error.FFmpegError as exc:
            state["last_error"] = str(exc)
    if not pts_list:
        raise VideoDecodeError("no video frames in the file (truncated beyond use?)", path)
    if not state["decoded"]:
        raise VideoDecodeError(
            f"no frame of the video stream decodes ({state['last_error'] or 'unknown error'})", path
        )

    dec_pts = np.asarray(pts_list, np.int64)
    dec_key = np.asarray(key_list, bool)
    unique_pts, first = np.unique(dec_pts, return_index=True)
    if len(unique_pts) != len(dec_pts):
        log.warning("%s: %d packets share a timestamp with another; keeping the first of each",
                    path, len(dec_pts) - len(unique_pts))
    seek_of = _seek_positions(dec_pts, dec_key)
    table = FrameTable(
        pts=unique_pts,
        seek_pos=np.asarray([seek_of[int(p)] for p in unique_pts], np.int64),
        dec_pts=dec_pts,
        dec_dts=np.asarray(dts_list, np.int64),
        key_pos=np.flatnonzero(dec_key),
        time_base=Fraction(stream.time_base),
    )
    declared = stream.frames or 0
    if declared > len(unique_pts) and not container.format.name.startswith("matroska"):
        truncated = True
    if truncated:
        log.warning("%s: truncated: %d frames readable%s", path, len(unique_pts),
                    f" of {declared} declared" if declared else "")

    num = len(unique_pts)
    last_dur = durations[int(first[-1])] or (int(np.median(np.diff(unique_pts))) if num > 1 else 0)
    duration = float((unique_pts[-1] - unique_pts[0] + last_dur) * stream.time_base)
    if duration <= 0 and stream.average_rate:
        duration = num / float(stream.average_rate)
    fps = num / duration if duration > 0 else float(stream.average_rate or 0)
    if not truncated and not container.streams.audio and container.duration and fps > 0:
        # MKV/WebM declare no frame count, but a header duration far beyond the packets
        # found means the file was cut short.
        declared_s = container.duration / av.time_base
        if duration + 2.0 / fps < 0.98 * declared_s:
            truncated = True
            log.warning("%s: truncated: packets cover %.3f s of the %.3f s declared",
                        path, duration, declared_s)
    rotation = (-state["rotation"]) % 360
    w, h = ctx.width, ctx.height
    if rotation in (90, 270):
        w, h = h, w
    info = VideoInfo(
        path=str(path),
        codec=ctx.codec.canonical_name or ctx.name,
        profile=ctx.profile,
        width=w,
        height=h,
        pix_fmt=ctx.pix_fmt,
        rotation=rotation,
        fps=round(fps, 6),
        num_frames=num,
        duration=round(duration, 6),
        bit_rate=int(container.bit_rate) if container.bit_rate else
        (int(total_bytes * 8 / duration) if duration > 0 else None),
        has_audio=bool(container.streams.audio),
        keyframes=int(dec_key.sum()),
        container=container.format.name,
        coded_width=ctx.width,
        coded_height=ctx.height,
        truncated=truncated,
    )
    return info, table


def probe(path: Source) -> VideoInfo:
    """Describe a video file (or `VideoBytes`): codec, displayed size, exact frame count, fps, rotation, audio.

    Raises `VideoOpenError` (missing, empty, not a video, no video stream) or
    `VideoDecodeError` (truncated or corrupt beyond use).
    """
    return scan(path)[0]
