"""`vidlab serve --watch SOURCE`: the server watches live streams beside its uploads.

A `Watcher` runs on its own thread and sends its windows through the server's micro-batcher,
so uploads and streams share one model and one forward pass; its metrics join the server's
`/metrics`, its windows the server's prediction log, and `GET /v1/streams` (what the web page
shows) holds each stream's status, newest labels and open events.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

import numpy as np

from vidlab.serve.batcher import MicroBatcher
from vidlab.serve.predict import Predictor
from vidlab.serve.stream import Watcher, WatchOptions

log = logging.getLogger(__name__)


class LiveStreams:
    """The server's watched streams (see the module doc)."""

    def __init__(self, predictor: Predictor, sources: list[str], batcher: MicroBatcher,
                 registry: Any = None, timeout_s: float = 60.0, **options: Any):
        options.setdefault("realtime", True)  # a server plays a file as a camera
        self.batcher, self.timeout_s = batcher, timeout_s
        self.watcher = Watcher(predictor, sources, WatchOptions(**options), infer=self._infer,
                               registry=registry)
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)
        self._thread = threading.Thread(target=self._run, name="vidlab-watch", daemon=True)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        futures = [self.batcher.submit(clip) for clip in batch]
        return np.stack([f.result(self.timeout_s) for f in futures])

    def _run(self) -> None:
        try:
            for record in self.watcher.run():
                if record["type"] != "window":
                    self.events.append(record)
        except Exception:  # the server keeps serving uploads; the page shows the streams' state
            log.exception("watching stopped")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.watcher.stop()
        self._thread.join(30)

    def snapshot(self) -> dict[str, Any]:
        """`{"streams": [{source, status, window, active, counters}], "events": [...]}`: the
        newest window of each stream and the last 50 events and status changes."""
        report = self.watcher.report()
        streams = []
        for source, latest in self.watcher.latest.items():
            streams.append({"source": source, "status": latest.get("status"),
                            "window": latest.get("window"), "active": latest.get("active", []),
                            "counters": report[source]})
        return {"streams": streams, "events": list(self.events)}
