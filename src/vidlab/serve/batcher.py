"""Dynamic micro-batching: clips from concurrent requests share one forward pass.

One worker thread owns the model. It takes the first waiting clip, then keeps collecting until
it holds `max_batch` clips or `max_wait_s` has passed, runs them as one batch and resolves each
clip's future with its own row. Clips whose request gave up (timeout) are skipped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

log = logging.getLogger(__name__)


class MicroBatcher:
    """Batch `C×T×H×W` clips into `run(B×C×T×H×W) -> B×K` calls on one worker thread."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int = 8,
                 max_wait_s: float = 0.01,
                 on_batch: Callable[[int, float], None] | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run, self.max_batch, self.max_wait_s = run, max_batch, max(0.0, max_wait_s)
        self.on_batch = on_batch
        self._queue: queue.Queue[tuple[np.ndarray, Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="vidlab-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pending(self) -> int:
        """Clips waiting for a forward pass."""
        return self._queue.qsize()

    def submit(self, clip: np.ndarray) -> Future:
        """Queue one clip; the future resolves to its output row (or the batch's exception)."""
        future: Future = Future()
        self._queue.put((clip, future))
        return future

    def _collect(self, first: tuple[np.ndarray, Future]) -> tuple[list, bool]:
        batch, deadline = [first], time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else \
                    self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch, stopping = self._collect(first)
            live = [(clip, fut) for clip, fut in batch if fut.set_running_or_notify_cancel()]
            if not live:
                continue
            t0 = time.perf_counter()
            try:
                out = self.run(np.stack([clip for clip, _ in live]))
            except Exception as exc:  # one bad batch fails its requests, not the server
                log.exception("inference failed for a batch of %d", len(live))
                for _, fut in live:
                    fut.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(len(live), time.perf_counter() - t0)
            for (_, fut), row in zip(live, out, strict=True):
                fut.set_result(row)
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        """On stop, fail clips still queued so no request waits forever."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item[1].set_running_or_notify_cancel():
                item[1].set_exception(RuntimeError("the server is shutting down"))
