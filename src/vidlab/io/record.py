"""Recording live streams by stream copy: a short clip around each event, with pre-roll.

`Recordings` sits on a `LiveStream`'s packet callback. It keeps the last few seconds of
demuxed packets (from a keyframe on) in a `PacketRing`; `start(path, since)` opens a clip that
begins with the ring's packets from the last keyframe at or before `since` (the pre-roll) and
goes on with live packets until `finish(until)` — the packets are copied, never re-encoded, so a
recording costs no decoding and keeps the camera's quality. MP4 first; codecs MP4 cannot hold
go into Matroska. Clips are written to a hidden temporary file and renamed when complete, and
an existing file is never replaced.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from vidlab.errors import VideoWriteError
from vidlab.io.writer import temp_path_for

log = logging.getLogger(__name__)


class PacketRing:
    """The last `seconds` of a stream's packets, always starting at a keyframe."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._items: collections.deque[tuple[Any, float]] = collections.deque()

    def add(self, packet: Any, t: float) -> None:
        self._items.append((packet, t))
        # drop whole GOPs from the front while the next keyframe is still old enough
        while True:
            keys = [i for i, (p, _) in enumerate(self._items) if p.is_keyframe and i > 0]
            if not keys or t - self._items[keys[0]][1] < self.seconds:
                break
            for _ in range(keys[0]):
                self._items.popleft()

    def since(self, t: float) -> list[tuple[Any, float]]:
        """Packets from the last keyframe at or before `t` (else the oldest keyframe) on."""
        items = list(self._items)
        keys = [i for i, (p, pt) in enumerate(items) if p.is_keyframe]
        if not keys:
            return []
        before = [i for i in keys if items[i][1] <= t]
        return items[before[-1] if before else keys[0]:]

    def clear(self) -> None:
        self._items.clear()


@dataclass
class Clip:
    """A finished recording: its file, its source-time span and how it was written."""

    path: Path
    t_start: float
    t_end: float
    packets: int
    error: str | None = None


class ClipRecorder:
    """One clip being written: packets copied into a container next to `path`."""

    def __init__(self, path: Path, template: Any, until: float | None, max_s: float):
        self.path, self.template = path, template
        self.until, self.max_s = until, max_s
        self.t_start: float | None = None
        self.t_last = 0.0
        self.count = 0
        self._base: int | None = None
        self._tmp = temp_path_for(path)
        self._out, self._stream = self._open()

    def _open(self) -> tuple[Any, Any]:
        errors = []
        for fmt in ("mp4", "matroska"):
            out = None
            try:
                out = av.open(str(self._tmp), "w", format=fmt)
                stream = out.add_stream_from_template(self.template)
                out.start_encoding()
                if fmt != "mp4":
                    self.path = self.path.with_suffix(".mkv")
                return out, stream
            except (av.error.FFmpegError, ValueError) as exc:
                errors.append(f"{fmt}: {exc}")
                if out is not None:
                    out.close()
                self._tmp.unlink(missing_ok=True)
        raise VideoWriteError(f"cannot hold this stream by copy ({'; '.join(errors)})", self.path)

    def add(self, packet: Any, t: float) -> bool:
        """Write one packet; False once the clip is past its end (then `close` it)."""
        if self.t_start is None:
            self.t_start = t
        if (self.until is not None and t > self.until) or t - self.t_start > self.max_s:
            return False
        ts = packet.dts if packet.dts is not None else packet.pts
        if ts is None:
            return True
        if self._base is None:
            self._base = ts
        copy = av.Packet(bytes(packet))
        copy.pts = (packet.pts if packet.pts is not None else ts) - self._base
        copy.dts = ts - self._base
        copy.time_base = packet.time_base
        copy.is_keyframe = packet.is_keyframe
        copy.stream = self._stream
        try:
            self._out.mux(copy)
        except av.error.FFmpegError as exc:  # one bad packet (e.g. a timestamp step) is skipped
            log.debug("%s: packet not recorded: %s", self.path, exc)
            return True
        self.count += 1
        self.t_last = t
        return True

    def close(self) -> Clip:
        """Finish the file and move it into place (under a free name: nothing is replaced)."""
        if not self.count:
            return self.abort("no packet was recorded")
        try:
            self._out.close()
        except av.error.FFmpegError as exc:
            return self.abort(str(exc))
        target = free_path(self.path)
        self._tmp.replace(target)
        return Clip(target, round(self.t_start or 0.0, 3), round(self.t_last, 3), self.count)

    def abort(self, error: str) -> Clip:
        with contextlib.suppress(av.error.FFmpegError):
            self._out.close()
        self._tmp.unlink(missing_ok=True)
        return Clip(self.path, round(self.t_start or 0.0, 3), round(self.t_last, 3), self.count,
                    error)


def free_path(path: Path) -> Path:
    """`path`, or `name-1.ext`, `name-2.ext`, … if it is taken."""
    k, candidate = 0, path
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
    return candidate


class Recordings:
    """The recordings of one source: feed it every packet (`packet(p, t)`, the stream's
    `on_packet`); `start` and `finish` clips from another thread; finished clips go to
    `on_clip`."""

    def __init__(self, pre_roll: float = 2.0, max_s: float = 60.0,
                 on_clip: Callable[[Clip], None] | None = None):
        self.pre_roll, self.max_s, self.on_clip = pre_roll, max_s, on_clip
        self.ring = PacketRing(pre_roll + 1.0)
        self._template: Any = None
        self._active: dict[str, ClipRecorder] = {}
        self._lock = threading.Lock()

    def packet(self, packet: Any, t: float) -> None:
        with self._lock:
            if packet.stream is not self._template:  # a new connection: a new stream
                self._end_all("the stream reconnected")
                self.ring.clear()
                self._template = packet.stream
            self.ring.add(packet, t)
            for key, rec in list(self._active.items()):
                if not rec.add(packet, t):
                    self._done(key, rec.close())

    def start(self, key: str, path: str | Path, since: float) -> bool:
        """Start clip `key` at `path`, from the keyframe at or before `since - pre_roll`."""
        with self._lock:
            if key in self._active or self._template is None:
                return False
            try:
                rec = ClipRecorder(Path(path), self._template, None, self.max_s)
            except (av.error.FFmpegError, VideoWriteError, OSError) as exc:
                log.error("%s: cannot record (%s)", path, exc)
                self._report(Clip(Path(path), since, since, 0, str(exc)))
                return False
            for packet, t in self.ring.since(since - self.pre_roll):
                rec.add(packet, t)
            self._active[key] = rec
            return True

    def finish(self, key: str, until: float) -> None:
        """Clip `key` ends with the first packet after source time `until`."""
        with self._lock:
            if key in self._active:
                self._active[key].until = until

    def close(self) -> None:
        """Finish every open clip now (on stop: what was recorded is kept)."""
        with self._lock:
            for key, rec in list(self._active.items()):
                self._done(key, rec.close())

    def _end_all(self, why: str) -> None:
        for key, rec in list(self._active.items()):
            log.info("%s: clip ends early: %s", rec.path, why)
            self._done(key, rec.close())

    def _done(self, key: str, clip: Clip) -> None:
        del self._active[key]
        self._report(clip)

    def _report(self, clip: Clip) -> None:
        if self.on_clip is not None:
            self.on_clip(clip)
