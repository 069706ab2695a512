"""Live frames → model windows: one decode thread per source, a ring of its recent frames.

A live source is a source of frames feeding the same clip path as `predict`: its decode
thread (`vidlab.io.live.LiveStream`) resizes every frame with FFmpeg's scaler to the bundle's
`short_side` and keeps the most recent ones in a bounded ring; window `k` covers
`[k·stride, k·stride + window]` seconds of the source's clock, and its clip is the one
`SlidingWindowSampler.clip` picks for that window — the same frames `predict` takes for the
same window of a file, so the bundle's `Preprocess` turns them into the same tensor.

Two ways to keep up, chosen by the source:

- **live** (a stream, or a file played in real time): frames never wait. `take()` hands out the
  newest full window; windows that fell due while inference was busy are skipped and counted
  (`windows_skipped`), so the delay stays bounded whatever the model's speed;
- **lossless** (a file read as fast as possible): the decode thread waits until each window
  is taken, so every window runs, as in `predict`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidlab.data.samplers import SlidingWindowSampler
from vidlab.data.transforms import Preprocess
from vidlab.errors import StreamError
from vidlab.io.live import Backoff, LiveFrame, LiveStream, is_file
from vidlab.io.record import Recordings

log = logging.getLogger(__name__)


@dataclass
class LiveClip:
    """One window of a source: `uint8 T×H×W×3` frames (the clip, before crop and
    normalization), their numbers on the source's frame grid (`round(time·fps)`), the window's
    span in source seconds and the unix time its newest frame was decoded."""

    source: str
    number: int
    t_start: float
    t_end: float
    wall: float
    frames: np.ndarray
    indices: np.ndarray


class FrameSource:
    """One source decoded on its own thread into a ring of recent frames, cut into windows.

    `window` (seconds; None: the span of one training clip) and `stride` (seconds between
    windows) define the windows; `wakeup` is a condition shared with the consumer, notified
    whenever a window falls due or a status arrives. Status records (connected, down,
    reconnected, ended, gave_up, failed) are queued for `statuses()`.
    """

    def __init__(self, source: str, preprocess: Preprocess, *, window: float | None = None,
                 stride: float = 0.5, realtime: bool = False, stall_timeout: float = 5.0,
                 give_up_s: float | None = None, backoff: Backoff = Backoff(),
                 options: dict[str, str] | None = None, recordings: Recordings | None = None,
                 wakeup: threading.Condition | None = None, max_lag: float = 1.0):
        if stride <= 0:
            raise ValueError(f"stride must be positive, got {stride}")
        self.source, self.pre = str(source), preprocess
        self.window_s, self.stride = window, stride
        self.lossless = is_file(self.source) and not realtime
        self.recordings = recordings
        self.wakeup = wakeup or threading.Condition()
        self.stream = LiveStream(self.source, preprocess.short_side, realtime=realtime,
                                 stall_timeout=stall_timeout, give_up_s=give_up_s,
                                 backoff=backoff, options=options,
                                 on_packet=recordings.packet if recordings else None,
                                 on_status=self._on_status, max_lag=max_lag)
        self.sampler = SlidingWindowSampler(preprocess, window, stride)
        self.windows_run = 0
        self.windows_skipped = 0
        self.ended = False
        self.error: str | None = None
        self.state = "starting"  # the last status: connected, down, reconnected, ended, ...
        self._ring: OrderedDict[int, LiveFrame] = OrderedDict()
        self._capacity = 0
        self._newest = -1
        self._next = 0  # the next window number to run
        self._resync = True  # the next frame starts a connection: restart the window grid
        self._statuses: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"vidlab-decode:{self.source}",
                                        daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FrameSource:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop decoding (a hung read ends within the stall timeout) and close recordings."""
        self._stop.set()
        with self.wakeup:
            self.wakeup.notify_all()
        self._thread.join(timeout if timeout is not None else self.stream.stall_timeout + 5)
        if self.recordings is not None:
            self.recordings.close()

    @property
    def fps(self) -> float | None:
        return self.stream.fps

    @property
    def window(self) -> float:
        """The window length in seconds (the training clip's span until told otherwise)."""
        if self.window_s:
            return self.window_s
        step = self.pre.stride_for(self.fps)
        return ((self.pre.num_frames - 1) * step + 1) / (self.fps or 25.0)

    @property
    def buffered(self) -> int:
        """Frames in the ring now (at most `capacity`)."""
        return len(self._ring)

    @property
    def capacity(self) -> int:
        """The ring's size in frames: one window, one stride and a margin (0 before the first
        frame, when the frame rate is known)."""
        return self._capacity

    @property
    def newest(self) -> int:
        """The number of the newest frame in the ring (-1: none yet)."""
        return self._newest

    def _run(self) -> None:
        try:
            for frame in self.stream.frames(self._stop):
                self._push(frame)
        except StreamError as exc:
            self.error = str(exc)
            self._on_status("failed", {"error": str(exc)})
        except Exception as exc:  # a bug must not pass silently or kill the other sources
            log.exception("%s: decoding failed", self.source)
            self.error = f"{type(exc).__name__}: {exc}"
            self._on_status("failed", {"error": self.error})
        finally:
            with self.wakeup:
                self.ended = True
                self.wakeup.notify_all()

    def _on_status(self, kind: str, detail: dict[str, Any]) -> None:
        if kind == "reconnected":
            self._resync = True
        self.state = kind
        self._statuses.put({"type": "status", "source": self.source, "status": kind,
                            "wall_time": round(time.time(), 3), **detail})
        with self.wakeup:
            self.wakeup.notify_all()

    def has_status(self) -> bool:
        return not self._statuses.empty()

    def statuses(self) -> list[dict[str, Any]]:
        """Status records queued since the last call."""
        out = []
        while True:
            try:
                out.append(self._statuses.get_nowait())
            except queue.Empty:
                return out

    # -- the ring ----------------------------------------------------------------------------
    def _push(self, frame: LiveFrame) -> None:
        fps = self.fps or 25.0
        number = round(frame.time * fps)
        with self.wakeup:
            if self._resync:  # the first window of a connection starts at or after its frame
                self._next = max(self._next, math.ceil(frame.time / self.stride - 1e-6))
                self._resync = False
            if not self._capacity:
                step = self.pre.stride_for(fps)
                self._capacity = math.ceil((self.window + self.stride) * fps) + 4 * step + 8
            if number <= self._newest:  # a frame faster than the nominal rate: keep the latest
                number = self._newest
            self._ring[number] = frame
            self._newest = number
            while len(self._ring) > self._capacity:
                self._ring.popitem(last=False)
            if self._due(self._next):
                self.wakeup.notify_all()
                while self.lossless and self._due(self._next) and not self._stop.is_set():
                    self.wakeup.wait(0.5)  # every window of a file runs: wait until taken

    def _span(self, k: int) -> tuple[float, float]:
        start = k * self.stride
        return start, start + self.window

    def _plan(self, k: int, num_frames: int | None = None) -> np.ndarray:
        fps = self.fps or 25.0
        start, end = self._span(k)
        return self.sampler.clip(start, end, num_frames or 1 << 62, fps)

    def _due(self, k: int) -> bool:
        """Whether window `k` has ended and every frame of its clip has arrived."""
        if self._newest < 0:
            return False
        fps = self.fps or 25.0
        _, end = self._span(k)
        return (self._newest + 1) / fps >= end - 1e-6 and int(self._plan(k).max()) <= self._newest

    def due(self) -> bool:
        """Whether a window is ready to be taken."""
        with self.wakeup:
            return self._due(self._next)

    def take(self) -> LiveClip | None:
        """The newest full window (None: none is due). In live mode the due windows before
        it are skipped and counted; a lossless source hands out every window in turn."""
        with self.wakeup:
            if not self._due(self._next):
                return None
            k = self._next
            if not self.lossless:
                fps = self.fps or 25.0
                newest = math.floor(((self._newest + 1) / fps - self.window) / self.stride + 1e-6)
                while newest > k and not self._due(newest):
                    newest -= 1
                self.windows_skipped += max(0, newest - k)
                k = max(k, newest)
            clip = self._clip(k)
            self._next = k + 1
            self.windows_run += 1
            self.wakeup.notify_all()
            return clip

    def _clip(self, k: int) -> LiveClip:
        indices = self._plan(k)
        frames = [self._frame_at(int(i)) for i in indices]
        fps = self.fps or 25.0
        start, end = self._span(k)
        first = self._frame_at(round(start * fps))
        last = self._frame_at(max(int(indices.max()), math.ceil(end * fps) - 1))
        return LiveClip(self.source, k, round(first.time, 3), round(last.time + 1 / fps, 3),
                        max(f.wall for f in frames + [last]),
                        np.stack([f.image for f in frames]), indices)

    def _frame_at(self, number: int) -> LiveFrame:
        """Frame `number`, else the nearest earlier one in the ring (a dropped frame), else the
        oldest."""
        if number in self._ring:
            return self._ring[number]
        earlier = [n for n in self._ring if n <= number]
        return self._ring[earlier[-1] if earlier else next(iter(self._ring))]
