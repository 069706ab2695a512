"""Live sources: open what FFmpeg opens, read frames as they come, and survive the network.

A source is any URL or device FFmpeg (through PyAV) opens — `rtsp://`, `udp://`/`rtp://`
(MPEG-TS), `tcp://`, `srt://` (when FFmpeg has libsrt), `http(s)://…m3u8` (HLS), `/dev/videoN`
(V4L2) — or a file, read as fast as possible or at its own frame rate (`realtime`), or followed
while it is still being written (FFmpeg's `follow=1` option: it ends after a stall).

`LiveStream.frames()` yields `LiveFrame`s: the decoded picture, already resized by FFmpeg's
scaler to what the model needs, its time on the source's own clock (seconds since its first
frame, continuous across reconnections) and the wall time it was decoded. Underneath:

- a stall timeout (PyAV's read timeout), so a hung socket is noticed;
- reconnection with exponential back-off after a stall, an error or the end of a live stream,
  optionally giving up after `give_up_s` seconds without frames;
- corrupt packets skipped and counted; frames missing from the sequence counted as drops;
- when decoding falls behind real time, non-reference frames (then all but keyframes) are not
  decoded until it catches up, so the delay stays bounded — those frames count as drops.

Every change of state is reported through `on_status(kind, detail)`; nothing is silent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidlab.errors import StreamError
from vidlab.io.reader import Size, frame_rotation, frame_to_array, output_size

log = logging.getLogger(__name__)

_FATAL = (av.error.ProtocolNotFoundError, av.error.DemuxerNotFoundError,
          av.error.InvalidDataError, av.error.FileNotFoundError, av.error.PermissionError)
"""Errors that no retry will fix on the first connection (wrong protocol, not a stream)."""
_DEFAULT_FPS = 25.0


def is_file(source: str) -> bool:
    """Whether `source` is a plain file path (not a URL and not a device)."""
    return "://" not in source and not source.startswith("/dev/")


def input_options(source: str, stall_timeout: float) -> tuple[str | None, dict[str, str]]:
    """The demuxer name (None: FFmpeg probes) and FFmpeg options for a live `source`: small
    probing for a quick start, no input buffering, and per protocol what keeps it alive."""
    if is_file(source):
        return None, {}
    opts = {"probesize": "1000000", "analyzeduration": "1000000"}
    scheme = source.split("://", 1)[0].lower()
    if source.startswith("/dev/"):
        return "video4linux2", {}
    if scheme in ("udp", "rtp"):
        # a burst larger than the socket buffer must not end the stream
        opts.update(overrun_nonfatal="1", buffer_size=str(4 << 20))
    elif scheme in ("rtsp", "rtsps"):
        opts["timeout"] = str(int(stall_timeout * 1e6))  # socket timeout, microseconds
    elif source.split("?")[0].lower().endswith(".m3u8"):
        opts["live_start_index"] = "-1"  # start at the newest segment (least delay)
    return None, opts


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: `initial` seconds, times `factor` after each failure, at most
    `maximum`."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))


@dataclass
class LiveFrame:
    """One decoded frame: `uint8 H×W×3` at the requested size, its source time in seconds and
    the unix time it was decoded (its capture, as far as vidlab can see)."""

    time: float
    wall: float
    image: np.ndarray


@dataclass
class StreamCounters:
    """What a stream has done so far (read by metrics and reports)."""

    frames: int = 0
    dropped: int = 0
    corrupt: int = 0
    packets: int = 0
    connects: int = 0
    reconnects: int = 0


class LiveStream:
    """One source read frame by frame, reconnected when it stalls or drops.

    - `size`: the frames' size (short side or `(h, w)`, as `VideoReader`); None keeps it.
    - `realtime`: pace a file at its own frame rate (live sources pace themselves).
    - `stall_timeout`: seconds without data before a connection counts as hung.
    - `give_up_s`: stop reconnecting after this long without frames (None: never).
    - `options`: extra FFmpeg options (e.g. `{"rtsp_transport": "tcp"}`), over the defaults.
    - `on_packet(packet, time)`: every demuxed video packet with its source time (for
      recording by stream copy); `on_status(kind, detail)`: "connected", "down",
      "reconnected", "ended", "gave_up", "failed".
    - `max_lag`: seconds behind real time before frames are skipped to catch up.
    """

    def __init__(self, source: str | os.PathLike, size: Size = None, *, realtime: bool = False,
                 stall_timeout: float = 5.0, give_up_s: float | None = None,
                 backoff: Backoff = Backoff(), options: dict[str, str] | None = None,
                 on_packet: Callable[[Any, float], None] | None = None,
                 on_status: Callable[[str, dict[str, Any]], None] | None = None,
                 max_lag: float = 1.0):
        self.source = str(source)
        self.size, self.realtime = size, realtime
        self.stall_timeout, self.give_up_s, self.backoff = stall_timeout, give_up_s, backoff
        self.file = is_file(self.source)
        self.format, self.options = input_options(self.source, stall_timeout)
        self.options.update(options or {})
        # a file still being written (`follow=1`): wait for more, and a stall means it ended
        self.follow = self.file and str(self.options.get("follow")) == "1"
        if self.follow:  # probe what is there already, as for a live stream
            self.options = {"probesize": "32768", "analyzeduration": "500000",
                            **self.options}
        self.on_packet, self.on_status = on_packet, on_status
        # HLS is pulled segment by segment (bursts a segment long, never a growing backlog):
        # skipping frames would only lose them
        self.keep_up = (self.realtime or not self.file) and \
            not self.source.split("?")[0].lower().endswith(".m3u8")
        self.max_lag = max_lag
        self.counters = StreamCounters()
        self.fps: float | None = None
        self.shape: tuple[int, int] | None = None  # (h, w) of the frames given
        self.stream_info: dict[str, Any] = {}
        self.input_stream: Any = None  # the current connection's video stream (a template)
        self._t_last: float | None = None
        self._wall_last = 0.0

    # -- connection --------------------------------------------------------------------------
    def _open(self) -> Any:
        if self.file and not Path(self.source).is_file():
            raise StreamError("no such file", self.source)
        timeout = (max(10.0, 3 * self.stall_timeout), self.stall_timeout)
        container = av.open(self.source, "r", format=self.format, options=self.options,
                            timeout=timeout if not self.file or self.follow else None,
                            metadata_errors="ignore")
        if not container.streams.video:
            container.close()
            raise StreamError("has no video stream", self.source)
        return container

    def _status(self, kind: str, **detail: Any) -> None:
        quiet = kind in ("connected", "reconnected", "ended") or detail.get("attempt", 1) > 1
        (log.info if quiet else log.warning)("%s: %s %s", self.source, kind,
                                             detail.get("error", ""))
        if self.on_status is not None:
            self.on_status(kind, detail)

    def frames(self, stop: threading.Event | None = None) -> Iterator[LiveFrame]:
        """Frames until `stop` is set, a file ends, or a live source gives up (see class doc).

        A source that cannot be opened at all on its first try for a reason no retry fixes
        (no such file, unknown protocol, not a video) raises `StreamError`.
        """
        stop = stop or threading.Event()
        attempt, down_since = 0, None
        while not stop.is_set():
            try:
                container = self._open()
            except StreamError:
                raise
            except (av.error.FFmpegError, OSError) as exc:
                fatal = isinstance(exc, _FATAL) and self.counters.connects == 0
                if self.file or fatal:
                    raise StreamError(f"cannot open ({type(exc).__name__}: {exc})",
                                      self.source) from exc
                attempt += 1
                down_since = down_since or time.time()
                if not self._wait_to_retry(stop, attempt, down_since, exc):
                    return
                continue
            self.counters.connects += 1
            if self.counters.connects > 1:
                self.counters.reconnects += 1
                self._status("reconnected", attempts=attempt,
                             down_s=round(time.time() - (down_since or time.time()), 3))
            else:
                self._status("connected")
            attempt, down_since, error = 0, None, None
            try:
                yield from self._read(container, stop)
            except (av.error.FFmpegError, OSError) as exc:
                error = exc
            finally:
                container.close()
            if stop.is_set():
                return
            if self.file:
                if error is not None and not (self.follow and isinstance(error, av.ExitError)):
                    raise StreamError(f"reading stopped ({type(error).__name__}: {error})",
                                      self.source) from error
                self._status("ended")
                return
            attempt, down_since = 1, time.time()
            if not self._wait_to_retry(stop, attempt, down_since, error or "end of stream"):
                return

    def _wait_to_retry(self, stop: threading.Event, attempt: int, down_since: float,
                       error: Any) -> bool:
        """Report the outage and sleep the back-off; False once the source is given up."""
        down_for = time.time() - down_since
        if self.give_up_s is not None and down_for >= self.give_up_s:
            self._status("gave_up", error=str(error), down_s=round(down_for, 3))
            return False
        delay = self.backoff.delay(attempt)
        self._status("down", error=f"{type(error).__name__}: {error}" if not
                     isinstance(error, str) else error, attempt=attempt, retry_in_s=delay)
        if self.give_up_s is not None:
            delay = min(delay, max(0.0, self.give_up_s - down_for) + 0.01)
        return not stop.wait(delay)

    # -- reading -----------------------------------------------------------------------------
    def _read(self, container: Any, stop: threading.Event) -> Iterator[LiveFrame]:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"  # frame threading holds frames back: latency
        ctx = stream.codec_context
        self.input_stream = stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate and 0 < float(rate) < 1000 else None
        if self.fps is None:
            self.fps = fps or _DEFAULT_FPS
        self.stream_info = {"codec": ctx.name, "width": ctx.width, "height": ctx.height,
                            "fps": self.fps, "format": container.format.name}
        tb = float(stream.time_base) if stream.time_base else 1.0 / self.fps
        now = time.time()
        # the clock continues across reconnections: the outage is real time that passed
        t_base = 0.0 if self._t_last is None else self._t_last + (now - self._wall_last)
        pts0: int | None = None
        wall0, skip, earliest = now, "DEFAULT", 0.0

        def packet_time(ts: int | None) -> float:
            return t_base if pts0 is None or ts is None else t_base + (ts - pts0) * tb

        for frame in self._decode(container, stream, stop, packet_time):
            if frame.is_corrupt:
                self.counters.corrupt += 1
            ts = frame.pts if frame.pts is not None else frame.dts
            if ts is None:
                continue
            first = pts0 is None
            if first:
                pts0, wall0 = ts, time.time()
            t = t_base + (ts - pts0) * tb
            if self._t_last is not None and not (-1.0 < t - self._t_last < 10.0):
                # a timestamp jump (wrap, sender restart): continue the clock instead
                t_base, pts0 = self._t_last + 1.0 / self.fps, ts
                t = t_base
            if self.realtime:
                ahead = wall0 + (t - t_base) - time.time()
                if ahead > 0 and stop.wait(ahead):
                    return
            if self.keep_up:
                # behind real time: how much later than its earliest frame this one came
                late = time.time() - t
                earliest = late if first else min(earliest, late)
                skip = self._keep_up(stream.codec_context, late - earliest, skip)
            yield self._frame(frame, t, count_gap=not first)

    def _decode(self, container: Any, stream: Any, stop: threading.Event,
                packet_time: Callable[[int | None], float]) -> Iterator[Any]:
        """Decoded frames of the stream's packets (each handed to `on_packet` first); corrupt
        packets are skipped and counted; the decoder is flushed when the stream ends."""
        ctx = stream.codec_context
        for packet in container.demux(stream):
            if stop.is_set():
                return
            if packet.size == 0:
                continue
            self.counters.packets += 1
            if self.on_packet is not None:
                self.on_packet(packet, packet_time(packet.pts if packet.pts is not None
                                                   else packet.dts))
            try:
                yield from ctx.decode(packet)
            except av.error.FFmpegError as exc:
                self.counters.corrupt += 1
                log.debug("%s: packet failed to decode: %s", self.source, exc)
        try:
            yield from ctx.decode(None)  # frames the decoder still holds (reordering)
        except av.error.FFmpegError as exc:
            log.debug("%s: decoder flush failed: %s", self.source, exc)

    def _keep_up(self, ctx: Any, lag: float, skip: str) -> str:
        """Skip decoding non-reference frames (then all but keyframes) while `lag` seconds
        behind real time; decode everything again once caught up."""
        want = ("NONKEY" if lag > 2 * self.max_lag else "NONREF" if lag > self.max_lag else
                "DEFAULT" if lag < self.max_lag / 4 else skip)
        if want != skip:
            log.info("%s: %.1f s behind real time; decoding %s frames", self.source, lag,
                     {"DEFAULT": "all", "NONREF": "reference", "NONKEY": "key"}[want])
            ctx.skip_frame = want
        return want

    def _frame(self, frame: Any, t: float, count_gap: bool) -> LiveFrame:
        """The frame as an array; frames missing since the last one of this connection (a gap
        in the timestamps) are counted as dropped."""
        if count_gap and self._t_last is not None and self.fps:
            self.counters.dropped += max(0, round((t - self._t_last) * self.fps) - 1)
        self._t_last, self._wall_last = t, time.time()
        rotation = frame_rotation(frame)
        shown = (frame.height, frame.width) if rotation in (90, 270) else (frame.width,
                                                                            frame.height)
        h, w = output_size(*shown, self.size)
        self.shape = (h, w)
        image = frame_to_array(frame, h, w, rotation=rotation)
        self.counters.frames += 1
        return LiveFrame(round(t, 6), time.time(), image)
