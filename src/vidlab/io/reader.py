"""`VideoReader`: exact, fast random access to the frames of one video.

Frame `i` is the `i`-th frame of a full sequential decode (presentation order). To get it the
reader seeks to the keyframe the frame table names, decodes forward, and matches decoded frames
to indices by their timestamps; it keeps the decoder running when the next wanted frame lies
ahead without a better keyframe in between. Only kept frames are converted to RGB, and the
resize happens in FFmpeg's scaler during that conversion.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import av
import numpy as np

from vidlab.errors import VideoDecodeError
from vidlab.io.probe import FrameTable, Source, VideoInfo, as_source, open_container, scan
from vidlab.io.qp import EXPORT_OPTIONS, qp_map

log = logging.getLogger(__name__)

Size = int | tuple[int, int] | None
_SKIP_NONREF_DECODERS = {"h264", "hevc", "vp9"}
_INHERITED: list[Any] = []  # containers inherited through fork: never freed in the child


def output_size(width: int, height: int, size: Size) -> tuple[int, int]:
    """`(h, w)` for `size`: None keeps `height×width`; an int is the short side (aspect kept,
    long side rounded to an even number); a tuple is `(h, w)` exactly."""
    if size is None:
        return height, width
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if height <= width:
            return size, max(2, int(round(width * size / height / 2)) * 2)
        return max(2, int(round(height * size / width / 2)) * 2), size
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return h, w


class VideoReader:
    """Random access to RGB frames of `path`, optionally resized (`size`: short side or `(h, w)`).

    Opens lazily and reopens after a fork, and pickles by path, so it can be built in the main
    process and used in torch `DataLoader` workers. `path` may be a `VideoBytes` (a video in
    memory, e.g. streamed from a shard): it is read exactly as the same bytes on disk. `threads=0` lets FFmpeg choose.
    `pixel_format="gray"` returns the coded luma plane `T×H×W` instead of RGB (for `quality`);
    `EXACT_RGB` unbiased RGB for pixel-exact work (enhancement; see `frame_to_array`).
    `num_corrupt` counts packets that failed to decode and frames the decoder flagged corrupt.
    """

    def __init__(self, path: Source, size: Size = None, threads: int = 0,
                 pixel_format: str = "rgb24"):
        self.path = as_source(path)
        self.size, self.threads, self.pixel_format = size, threads, pixel_format
        self.num_corrupt = 0
        self.packets_decoded = 0
        """Packets sent to the decoder so far (to check that access stays local)."""
        self._info: VideoInfo | None = None
        self._table: FrameTable | None = None
        self._reset_decoder_state()
        self._container: Any = None
        self._pid = -1
        self._robust = False
        self._wanted: set[int] | None = None  # frames the current request needs (None: all)
        self._export_qp = False  # decoder attaches QP maps (set by iter_frames_with_qp)

    # -- metadata ---------------------------------------------------------------------------
    def _load(self) -> None:
        if self._table is None:
            self._info, self._table = scan(self.path)

    @property
    def info(self) -> VideoInfo:
        self._load()
        return self._info  # type: ignore[return-value]

    @property
    def table(self) -> FrameTable:
        """The frame index ↔ timestamp table (built once per reader, from packets only)."""
        self._load()
        return self._table  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.info.num_frames

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def timestamps(self) -> np.ndarray:
        """Presentation time of each frame in seconds (from the first frame; VFR-exact)."""
        return self.table.seconds

    @property
    def shape(self) -> tuple[int, int]:
        """`(h, w)` of the frames this reader returns."""
        return output_size(self.info.width, self.info.height, self.size)

    # -- lifecycle ---------------------------------------------------------------------------
    def _reset_decoder_state(self) -> None:
        self._frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._pos = -2  # decode position of the last packet sent (-2: decoder not started)
        self._last_out = -1  # index of the last frame the decoder gave
        self._skipped: set[int] = set()  # unwanted frames the decoder may skip (if non-ref)

    def _ensure_open(self) -> None:
        if self._container is not None and self._pid == os.getpid():
            return
        self._drop_inherited()
        self._load()
        self._container = open_container(self.path)
        self._pid = os.getpid()
        stream = self._container.streams.video[0]
        # Frame threading is faster but can swallow frames next to damaged data without an
        # error; after the first missing frame the reader switches to slice threading.
        stream.thread_type = "SLICE" if self._robust else "AUTO"
        stream.codec_context.thread_count = self.threads
        if self._export_qp:
            stream.codec_context.options = dict(EXPORT_OPTIONS)
        self._reset_decoder_state()

    def _drop_inherited(self) -> None:
        """Forget a container inherited through fork without freeing it: freeing would join
        the parent's decoder threads, which do not exist in this process, and hang."""
        if self._container is not None and self._pid != os.getpid():
            _INHERITED.append((self._container, self._frames))
            self._frames = None
        self._container = None

    def close(self) -> None:
        if self._container is not None and self._pid == os.getpid():
            self._container.close()
        self._drop_inherited()
        self._reset_decoder_state()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_container=None, _pid=-1, _frames=None, _pos=-2, _last_out=-1,
                     _skipped=set())
        return state

    # -- decoding ----------------------------------------------------------------------------
    def _packets(self) -> Iterator[av.Packet | None]:
        """Demuxed video packets from the current position, then `None` (flush) at the end —
        also when the file ends in damaged or missing data."""
        try:
            for packet in self._container.demux(self._container.streams.video[0]):
                if packet.size:
                    yield packet
        except av.error.FFmpegError as exc:
            self._corrupt(f"reading packets stopped: {exc}")
        yield None

    def _decode_from_here(self, packets: Iterable[av.Packet | None]
                          ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Frames `(index, frame)` decoded from `packets` (demuxed from the current position)."""
        ctx = self._container.streams.video[0].codec_context
        table = self.table
        skip_mode = ctx.skip_frame
        # Only FFmpeg's own decoders honour a per-packet skip_frame (libdav1d, for one, does
        # not); after a missing frame (robust mode) nothing is skipped.
        can_skip = ctx.codec.name in _SKIP_NONREF_DECODERS and not self._robust
        for packet in packets:
            if packet is not None:
                ts = packet.pts if packet.pts is not None else packet.dts
                pos = table.pos_of_pts.get(ts)
                if pos is not None:
                    self._pos = pos
                self.packets_decoded += 1
                # Frames nobody wants and no frame references need not be decoded at all.
                idx = table.index_of_pts.get(ts)
                skip = (self._wanted is not None and idx is not None and idx not in self._wanted
                        and can_skip)
                if skip:
                    self._skipped.add(idx)
                mode = "NONREF" if skip else "DEFAULT"
                if mode != skip_mode:
                    ctx.skip_frame = skip_mode = mode
            try:
                frames = ctx.decode(packet)
            except av.error.FFmpegError as exc:
                where = f"packet at pts {packet.pts}" if packet is not None else "decoder flush"
                self._corrupt(f"{where} failed to decode: {exc}")
                if packet is None:
                    break
                continue
            for frame in frames:
                if frame.is_corrupt:
                    self._corrupt(f"frame at pts {frame.pts} decoded with errors")
                ts = frame.pts if frame.pts is not None else frame.dts
                idx = table.index_of_pts.get(ts)
                if idx is not None:
                    yield idx, frame
        self._pos = len(table.dec_pts) + 1  # past the end: only a seek can go on

    def _corrupt(self, what: str) -> None:
        self.num_corrupt += 1
        log.warning("%s: %s (corrupt data skipped)", self.path, what)

    def _seek(self, index: int, from_start: bool = False) -> None:
        """Position the demuxer at the keyframe that frame `index` needs (or the file start).

        Containers index seeks by pts or by dts, so the keyframe's pts is tried first, then its
        dts, then earlier keyframes; the first packet read back tells where the seek landed.
        """
        self._ensure_open()
        table = self.table
        stream = self._container.streams.video[0]
        self._reset_decoder_state()
        pos = -1 if from_start else int(table.seek_pos[index])
        for ts in self._seek_targets(pos):
            self._container.seek(ts, backward=True, any_frame=False, stream=stream)
            packets = self._packets()
            first = next(packets)
            if first is None:
                continue
            landed = table.pos_of_pts.get(first.pts if first.pts is not None else first.dts)
            if landed is not None and landed <= pos:
                self._frames = self._decode_from_here(itertools.chain([first], packets))
                self._pos = -1
                return
        self.close()  # reopening is the one seek to the start that works for every container
        self._ensure_open()
        self._frames = self._decode_from_here(self._packets())
        self._pos = -1

    def _seek_targets(self, pos: int) -> list[int]:
        if pos < 0:
            return []
        table = self.table
        targets = [int(table.dec_pts[pos]), int(table.dec_dts[pos])]
        before = table.key_pos[table.key_pos < pos][-2:][::-1]  # then up to two GOPs back
        targets += [int(min(table.dec_pts[k], table.dec_dts[k])) for k in before]
        return list(dict.fromkeys(targets))

    def _make_robust(self) -> None:
        if not self._robust:
            self._robust = True
            self.close()
        self._frames = None

    def _next_frame(self) -> tuple[int, av.VideoFrame] | None:
        assert self._frames is not None
        try:
            return next(self._frames)
        except StopIteration:
            self._frames = None
            return None

    def _decode_wanted(self, wanted: list[int], consume: Any) -> None:
        """Decode the sorted unique `wanted` indices, calling `consume(index, frame)` for each."""
        table = self.table
        wanted_set = set(wanted)
        self._wanted = wanted_set
        done: set[int] = set()
        for target in wanted:
            if target in done:
                continue
            from_start = False
            while True:
                must_seek = (self._frames is None or target <= self._last_out
                             or table.seek_pos[target] > self._pos)
                if must_seek:
                    self._seek(target, from_start)
                maybe_skipped = not must_seek and target in self._skipped
                if self._advance_to(target, wanted_set, done, consume):
                    break
                if maybe_skipped:  # an earlier request let the decoder skip it: seek back
                    self._frames = None
                    continue
                if from_start:
                    raise VideoDecodeError(
                        f"frame {target} of {len(table)} cannot be decoded (corrupt or missing "
                        f"data; {self.num_corrupt} corrupt packets/frames seen)", self.path)
                # Retry once robustly (slice threads), then from the start of the file.
                from_start = self._robust
                self._make_robust()

    def _advance_to(self, target: int, wanted_set: set[int], done: set[int], consume: Any) -> bool:
        while True:
            item = self._next_frame()
            if item is None:
                return False
            idx, frame = item
            if idx <= self._last_out:
                continue  # e.g. leading frames of an open GOP we did not ask for
            self._last_out = idx
            if idx in wanted_set and idx not in done:
                consume(idx, frame)
                done.add(idx)
            if idx >= target:
                return idx == target or target in done

    def _convert(self, frame: av.VideoFrame, pixel_format: str | None = None) -> np.ndarray:
        return frame_to_array(frame, *self.shape, pixel_format or self.pixel_format,
                              self.info.rotation)

    def _convert_qp(self, frame: av.VideoFrame) -> np.ndarray | None:
        qp = qp_map(frame)
        if qp is None:
            return None
        turn = self.info.rotation // 90
        h, w = self.shape[::-1] if turn % 2 else self.shape
        if qp.shape != (h, w):  # nearest neighbour: a block's QP is not blended
            qp = qp[(np.arange(h) * qp.shape[0] // h)[:, None], np.arange(w) * qp.shape[1] // w]
        return np.ascontiguousarray(np.rot90(qp, k=-turn)) if turn else qp

    def _out_shape(self) -> tuple[int, ...]:
        h, w = self.shape
        return (h, w) if self.pixel_format == "gray" else (h, w, 3)

    def get_frames(self, indices: Iterable[int]) -> np.ndarray:
        """Frames at `indices` (any order, repeats allowed) as `uint8 T×H×W×3` RGB, in that order.

        Raises `IndexError` for indices outside `[0, len)` and `VideoDecodeError` (naming the
        file and frame) for a frame that cannot be decoded.
        """
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices,
                         dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = int(idx[(idx < 0) | (idx >= n)][0])
            raise IndexError(f"{self.path}: frame {bad} out of range (video has {n} frames)")
        out = np.empty((len(idx), *self._out_shape()), np.uint8)
        if not idx.size:
            return out
        positions: dict[int, list[int]] = {}
        for pos, v in enumerate(idx.tolist()):
            positions.setdefault(v, []).append(pos)
        self._ensure_open()

        def keep(i: int, frame: av.VideoFrame) -> None:  # straight into the output, no copy
            first, *repeats = positions[i]
            out[first] = self._convert(frame)
            for pos in repeats:
                out[pos] = out[first]

        self._decode_wanted(sorted(positions), keep)
        return out

    def __getitem__(self, index: int) -> np.ndarray:
        return self.get_frames([index])[0]

    def iter_frames_with_time(self, start: int = 0, stop: int | None = None,
                              step: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
        """Stream `(index, seconds, frame)` for `range(start, stop, step)`; memory: one frame.

        Frames that cannot be decoded (corrupt data) are skipped with a warning and counted in
        `num_corrupt`, so a long stream survives local damage.
        """
        for idx, seconds, frame in self._iter_decoded(start, stop, step):
            yield idx, seconds, self._convert(frame)

    def iter_frames_with_qp(self, start: int = 0, stop: int | None = None
                            ) -> Iterator[tuple[int, float, np.ndarray, np.ndarray | None]]:
        """As `iter_frames_with_time`, each frame with its decoder's QP map (`uint8 H×W`, the
        H.264 quantiser of each pixel's block, resized and rotated like the frame) or None where
        the codec exports none (see `vidlab.io.qp`)."""
        for idx, seconds, frame, qp, _ in self.iter_frames_with_qp_and_luma(start, stop, False):
            yield idx, seconds, frame, qp

    def iter_frames_with_qp_and_luma(self, start: int = 0, stop: int | None = None,
                                     luma: bool = True) -> Iterator[tuple[
                                         int, float, np.ndarray, np.ndarray | None,
                                         np.ndarray | None]]:
        """As `iter_frames_with_qp`, each frame also with the decoder's own 8-bit Y plane
        (`uint8 H×W`, as `pixel_format="gray"` gives it; None unless `luma`) from the same
        decode: what video PSNR is scored on, beside the frames a model is given."""
        if not self._export_qp:
            self._export_qp = True
            self.close()  # the decoder must be opened with the export option
        for idx, seconds, frame in self._iter_decoded(start, stop, 1):
            y = self._convert(frame, "gray") if luma else None
            yield idx, seconds, self._convert(frame), self._convert_qp(frame), y

    def _iter_decoded(self, start: int, stop: int | None,
                      step: int) -> Iterator[tuple[int, float, av.VideoFrame]]:
        n = len(self)
        stop = n if stop is None else min(stop, n)
        if step < 1:
            raise ValueError("step must be >= 1")
        seconds = self.timestamps
        wanted = list(range(max(0, start), stop, step))
        if not wanted:
            return
        self._ensure_open()
        wanted_set = set(wanted)
        self._wanted = wanted_set if step > 1 else None
        self._seek(wanted[0])
        expected = 0
        while expected < len(wanted):
            item = self._next_frame() if self._frames is not None else None
            idx = item[0] if item is not None else n
            if idx < wanted[expected] or (item is not None and idx not in wanted_set):
                continue
            if idx > wanted[expected] and not self._robust:
                # a wanted frame went missing: decode that stretch again robustly
                self._make_robust()
                self._seek(wanted[expected])
                continue
            while expected < len(wanted) and wanted[expected] < idx:
                self._corrupt(f"frame {wanted[expected]} missing from the decode")
                expected += 1
            if item is None:
                break
            expected += 1
            yield idx, float(seconds[idx]), item[1]

    def iter_frames(self, start: int = 0, stop: int | None = None,
                    step: int = 1) -> Iterator[np.ndarray]:
        """Stream frames `H×W×3` for `range(start, stop, step)` (use `iter_frames_with_time`
        for their indices and timestamps); memory is bounded by one frame."""
        for _, _, frame in self.iter_frames_with_time(start, stop, step):
            yield frame

    def __repr__(self) -> str:
        return f"VideoReader({str(self.path)!r}, size={self.size!r})"


def frame_rotation(frame: av.VideoFrame) -> int:
    """Degrees a decoded frame is turned clockwise for display (0, 90, 180, 270), from its
    display matrix (as `VideoInfo.rotation`)."""
    return (-int(round(frame.rotation or 0))) % 360


EXACT_RGB = "rgb24:exact"
"""`pixel_format` for RGB without swscale's fast 4:2:0/4:2:2 → RGB path, which is ~1 grey level
too dark on average (−1.03 on a natural 640×480 frame, mean error 2.23 vs 1.81; measured
2026-12-03 with PyAV 18): re-encoding its frames costs 0.07–0.21 dB of luma PSNR before any
processing. The frame goes through full-chroma YUV first (~2 ms more per 640×480 frame);
classifiers do not care, restoration does."""
_FULL_CHROMA = {"yuv420p": "yuv444p", "yuv422p": "yuv444p", "nv12": "yuv444p",
                "yuvj420p": "yuvj444p", "yuvj422p": "yuvj444p",
                "yuv420p10le": "yuv444p10le", "yuv422p10le": "yuv444p10le"}


SINGLE_THREAD_MAX_PIXELS = 1280 * 720
"""Frames up to this size are converted on one thread. FFmpeg's scaler otherwise sets up a
pool of threads for every call, which costs more than the conversion itself on small frames
(13x on a 176x144 exact-RGB frame); vidlab parallelises across clips instead
(`python benchmarks/convert.py`)."""


def _threads(frame: av.VideoFrame) -> int:
    """Threads for the scaler: 1 for a small frame, 0 (FFmpeg's choice) for a large one."""
    return 1 if frame.width * frame.height <= SINGLE_THREAD_MAX_PIXELS else 0


def frame_to_array(frame: av.VideoFrame, height: int, width: int, pixel_format: str = "rgb24",
                   rotation: int = 0) -> np.ndarray:
    """A decoded frame as `uint8 H×W×3` (`gray`: the luma plane `H×W`; `EXACT_RGB`: RGB via
    full-chroma YUV, unbiased), upright and `height`×`width` as displayed, resized by FFmpeg's
    scaler (area filter) while it converts — the one conversion of files and live streams, so
    equal frames give equal arrays."""
    turn = rotation // 90
    if turn % 2:
        height, width = width, height
    threads = _threads(frame)
    if pixel_format == "gray":
        array = _luma_plane(frame, width, height, threads)
    elif pixel_format == EXACT_RGB:
        full = _FULL_CHROMA.get(frame.format.name)
        if full is not None:
            frame = frame.reformat(width=width, height=height, format=full, interpolation="AREA",
                                   threads=threads)
        array = frame_to_array(frame, height, width)
    elif (frame.width, frame.height) == (width, height):  # plain, as a sequential decode
        array = frame.to_ndarray(format=pixel_format, threads=threads)
    else:
        array = frame.to_ndarray(width=width, height=height, format=pixel_format,
                                 interpolation="AREA", threads=threads)
    if turn:
        array = np.ascontiguousarray(np.rot90(array, k=-turn))
    return array


def exact_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as unbiased `uint8 H×W×3` RGB at its coded size (`EXACT_RGB`)."""
    return frame_to_array(frame, frame.height, frame.width, EXACT_RGB)


def _luma_plane(frame: av.VideoFrame, width: int, height: int, threads: int) -> np.ndarray:
    """The coded 8-bit Y plane (no range expansion, as video PSNR is measured), resized by the
    scaler if needed; other pixel formats go through 8-bit 4:2:0 of the same range first."""
    name = frame.format.name
    if name not in ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p") or \
            (frame.width, frame.height) != (width, height):
        target = "yuvj420p" if name.startswith("yuvj") else "yuv420p"
        frame = frame.reformat(width=width, height=height, format=target, interpolation="AREA",
                               threads=threads)
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, :plane.width].copy()
