"""From per-window predictions to events, and events to the outside world.

- `Hysteresis` turns the probabilities of watched labels, window after window, into start and
  end events that do not flap: a label starts once it has stayed at or above `on_prob` for
  `min_duration` seconds of stream and ends once it has stayed below `off_prob` (lower) as long.
- `Webhook` POSTs records as JSON to a URL from its own thread: a bounded queue (the oldest
  record goes when it is full), retries with exponential back-off, and counters of what was
  sent, failed and dropped — it never blocks the watcher and never loses a record silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from vidlab.errors import ConfigError
from vidlab.io.live import Backoff

log = logging.getLogger(__name__)


@dataclass
class _LabelState:
    active: bool = False
    since: float | None = None  # t_start of the first window of the pending change
    start: float = 0.0  # t_start of the active event
    last_on: float = 0.0  # t_end of the last window at or above off_prob
    peak: float = 0.0


@dataclass
class Hysteresis:
    """Start/end events of `labels` per source (see the module doc)."""

    labels: list[str]
    on_prob: float = 0.5
    off_prob: float | None = None
    min_duration: float = 1.0
    _states: dict[tuple[str, str], _LabelState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.off_prob is None:
            self.off_prob = max(0.0, self.on_prob - 0.1)
        if not 0.0 <= self.off_prob <= self.on_prob <= 1.0:
            raise ConfigError(f"need 0 <= off-prob ({self.off_prob}) <= min-prob "
                              f"({self.on_prob}) <= 1")

    def update(self, source: str, t_start: float, t_end: float,
               probs: dict[str, float]) -> list[dict[str, Any]]:
        """The events one window of `source` causes (usually none)."""
        events = []
        for label in self.labels:
            st = self._states.setdefault((source, label), _LabelState())
            p = float(probs.get(label, 0.0))
            if st.active:
                if p >= self.off_prob:  # still on
                    st.last_on, st.peak, st.since = t_end, max(st.peak, p), None
                    continue
                st.since = t_start if st.since is None else st.since
                if t_end - st.since + 1e-6 >= self.min_duration:
                    events.append(self._end(label, st))
            else:
                if p < self.on_prob:  # still off
                    st.since, st.peak = None, 0.0
                    continue
                if st.since is None:
                    st.since, st.peak = t_start, p
                st.peak = max(st.peak, p)
                if t_end - st.since + 1e-6 >= self.min_duration:
                    st.active, st.start, st.last_on, st.since = True, st.since, t_end, None
                    events.append({"event": "start", "label": label,
                                   "t_start": round(st.start, 3), "prob": round(st.peak, 4)})
        return events

    def close(self, source: str, reason: str) -> list[dict[str, Any]]:
        """End every active event of `source` (it was lost, or watching stops)."""
        out = []
        for (src, label), st in self._states.items():
            if src == source and st.active:
                out.append({**self._end(label, st), "reason": reason})
        return out

    def active(self, source: str) -> list[str]:
        return [label for (src, label), st in self._states.items() if src == source and st.active]

    def _end(self, label: str, st: _LabelState) -> dict[str, Any]:
        event = {"event": "end", "label": label, "t_start": round(st.start, 3),
                 "t_end": round(st.last_on, 3), "duration": round(st.last_on - st.start, 3),
                 "prob": round(st.peak, 4)}
        st.active, st.since, st.peak = False, None, 0.0
        return event


class Webhook:
    """POST JSON records to `url` in the background (see the module doc)."""

    def __init__(self, url: str, max_queue: int = 1000, retries: int = 5,
                 backoff: Backoff = Backoff(0.5, 2.0, 30.0), timeout: float = 5.0):
        if not url.lower().startswith(("http://", "https://")):
            raise ConfigError(f"events URL {url!r} must start with http:// or https://")
        self.url, self.retries, self.backoff, self.timeout = url, retries, backoff, timeout
        self.sent = self.failed = self.dropped = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(max_queue)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vidlab-webhook", daemon=True)
        self._thread.start()

    def post(self, record: dict[str, Any]) -> None:
        """Queue a record; when the queue is full the oldest queued record is dropped."""
        while True:
            try:
                self._queue.put_nowait(record)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                    log.warning("%s: webhook queue full, oldest event dropped", self.url)
                except queue.Empty:
                    pass

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (for at most `timeout` seconds, then count it dropped)."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._closing.set()
        self._thread.join(1.0)
        while not self._queue.empty():
            if self._queue.get_nowait() is not None:
                self.dropped += 1

    def _loop(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            self._deliver(record)

    def _deliver(self, record: dict[str, Any]) -> None:
        body = json.dumps(record).encode()
        for attempt in range(1, self.retries + 2):
            if self._closing.is_set():
                break
            request = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    answer.read()
                self.sent += 1
                return
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code != 429:  # the receiver refuses it: no retry
                    log.error("%s: webhook refused an event (HTTP %d)", self.url, exc.code)
                    break
                error: Exception = exc
            except (urllib.error.URLError, OSError) as exc:
                error = exc
            if attempt <= self.retries:
                delay = self.backoff.delay(attempt)
                log.warning("%s: webhook failed (%s); retry %d in %.1f s", self.url, error,
                            attempt, delay)
                if self._closing.wait(delay):
                    break
        self.failed += 1
