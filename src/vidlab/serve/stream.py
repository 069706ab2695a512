"""Watching live video: a bundle's labels for camera streams, as they happen.

`watch(bundle, sources, **options)` yields records (the JSON Lines of `vidlab watch`):

- `{"type": "window", "source", "t_start", "t_end", "wall_time", "latency_ms", "top": [{"label",
  "prob"}], "window"}` — one per window run: `t_*` in seconds of the source's clock,
  `wall_time` the unix time its newest frame was decoded, `latency_ms` from then to the record;
- `{"type": "event", "event": "start"|"end", "source", "label", ...}` — with `on=[labels]`, the
  hysteresis of `vidlab.serve.events` (and `"clip"`, the recording's path, with `record`);
- `{"type": "status", "source", "status": "connected"|"down"|"reconnected"|"ended"|"gave_up"|
  "failed", ...}` and `{"type": "clip", "source", "label", "path", ...}` once a clip is written.

Underneath, each source is a `vidlab.data.live.FrameSource` (its own decode thread and ring of
frames); this loop takes the newest due window of every source, runs them as one batch,
and emits. When the model is slower than real time, windows are skipped (counted), never
queued, so latency stays bounded. Windows also go to the SQLite prediction log (`db`) that
`vidlab monitor` reads, events to a webhook (`events_url`), and `port` serves `/metrics`.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.bundle import Bundle
from vidlab.data.live import FrameSource, LiveClip
from vidlab.errors import ConfigError
from vidlab.io.live import Backoff, is_file
from vidlab.io.record import Clip, Recordings
from vidlab.serve.events import Hysteresis, Webhook
from vidlab.serve.log import PredictionLog
from vidlab.serve.metrics import WatchMetrics
from vidlab.serve.predict import Predictor, _clip_features

log = logging.getLogger(__name__)

_GONE = ("ended", "gave_up", "failed")


@dataclass
class WatchOptions:
    """Everything `watch` can be told (each is a `vidlab watch` flag)."""

    stride: float = 0.5  # seconds between windows
    window: float | None = None  # seconds per window (None: one training clip's span)
    top_k: int = 3
    runtime: str = "auto"
    realtime: bool = False  # play files at their own frame rate
    max_batch: int = 8  # windows per forward pass
    on: list[str] = field(default_factory=list)  # labels that make start/end events
    min_prob: float = 0.5
    off_prob: float | None = None  # default: min_prob - 0.1
    min_duration: float = 1.0
    record: Path | None = None  # a directory for clips around events
    pre_roll: float = 2.0
    post_roll: float = 2.0
    max_clip_s: float = 60.0
    events_url: str | None = None
    db: Path | None = None
    retention_days: float | None = 30.0
    stall_timeout: float = 5.0
    give_up_s: float | None = None  # stop reconnecting after this long down (None: never)
    ffmpeg_options: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # serve /metrics here
    host: str = "127.0.0.1"
    max_lag: float = 1.0


class Watcher:
    """Sources, model and sinks of one watch; `run()` is the loop, `stop()` ends it cleanly.

    `infer(batch) -> probabilities` defaults to the predictor's runtime (the server passes its
    micro-batcher instead, so uploads and streams share one model).
    """

    def __init__(self, predictor: Predictor, sources: list[str], options: WatchOptions,
                 infer: Callable[[np.ndarray], np.ndarray] | None = None,
                 registry: Any = None):
        if not sources:
            raise ConfigError("give at least one source to watch")
        if len(set(sources)) != len(sources):
            raise ConfigError("the same source is given twice")
        o = self.options = options
        if o.stride <= 0 or (o.window is not None and o.window <= 0) or o.max_batch < 1:
            raise ConfigError("stride and window must be positive and max-batch at least 1")
        unknown = [label for label in o.on if label not in predictor.labels]
        if unknown:
            raise ConfigError(f"--on {', '.join(unknown)}: not a label of this model "
                              f"({', '.join(predictor.labels)})")
        self.predictor, self.pre = predictor, predictor.preprocess
        self.infer = infer or predictor.probabilities
        self.hysteresis = Hysteresis(list(o.on), o.min_prob, o.off_prob, o.min_duration)
        self.webhook = Webhook(o.events_url) if o.events_url else None
        if o.record is not None:
            Path(o.record).mkdir(parents=True, exist_ok=True)
        self.wakeup = threading.Condition()
        self._outbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self.sources = [self._source(s) for s in sources]
        self.metrics = WatchMetrics(lambda: self.sources, registry)
        self.db = PredictionLog(o.db, o.retention_days) if o.db else None
        self.latest: dict[str, dict[str, Any]] = {s: {"status": "starting"} for s in sources}
        self._http: Any = None

    def _source(self, source: str) -> FrameSource:
        o = self.options
        recordings = None
        if o.record is not None:
            recordings = Recordings(o.pre_roll, o.max_clip_s,
                                    on_clip=lambda clip, s=source: self._clip_done(s, clip))
        return FrameSource(source, self.pre, window=o.window, stride=o.stride,
                           realtime=o.realtime, stall_timeout=o.stall_timeout,
                           give_up_s=o.give_up_s, backoff=Backoff(maximum=30.0),
                           options=o.ffmpeg_options, recordings=recordings, wakeup=self.wakeup,
                           max_lag=o.max_lag)

    # -- the loop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """End `run()` after the current batch (safe from a signal handler or any thread)."""
        self._stopping.set()
        with self.wakeup:
            self.wakeup.notify_all()

    def _ready(self) -> bool:
        return (self._stopping.is_set() or not self._outbox.empty()
                or any(s.has_status() or s.due() for s in self.sources)
                or all(s.ended for s in self.sources))

    def run(self) -> Iterator[dict[str, Any]]:
        """Records until `stop()` or until every source has ended (files) or given up."""
        if self.options.port is not None:
            from prometheus_client import start_http_server

            self._http, _ = start_http_server(self.options.port, self.options.host,
                                              self.metrics.registry)
        for s in self.sources:
            s.start()
        try:
            while not self._stopping.is_set():
                with self.wakeup:
                    self.wakeup.wait_for(self._ready, timeout=0.5)
                yield from self._drain()
                if self._stopping.is_set():
                    break
                clips = [c for c in (s.take() for s in self.sources) if c is not None]
                if clips:
                    yield from self._run_windows(clips)
                elif all(s.ended and not s.has_status() for s in self.sources):
                    break
            for s in self.sources:
                s.stop()
                yield from self._gone(s.source, "stopped")
            yield from self._drain()
        finally:
            self._close()

    def _run_windows(self, clips: list[LiveClip]) -> Iterator[dict[str, Any]]:
        tensors = [self.pre(c.frames).numpy() for c in clips]
        step = self.options.max_batch
        for i in range(0, len(clips), step):
            chunk = clips[i:i + step]
            t0 = time.perf_counter()
            probs = np.asarray(self.infer(np.stack(tensors[i:i + step])))
            infer_s = time.perf_counter() - t0
            self.metrics.inference_time.observe(infer_s)
            self.metrics.batch_size.observe(len(chunk))
            rows = []
            for clip, p in zip(chunk, probs, strict=True):
                record = self._window_record(clip, p)
                rows.append(self._log_row(clip, record, infer_s / len(chunk)))
                yield record
                yield from self._events(clip, record, p)
            if self.db is not None:
                self.db.append_many(rows)

    def _window_record(self, clip: LiveClip, probs: np.ndarray) -> dict[str, Any]:
        latency = time.time() - clip.wall
        top = self.predictor.top(probs, self.options.top_k)
        record = {"type": "window", "source": clip.source, "t_start": clip.t_start,
                  "t_end": clip.t_end, "wall_time": round(clip.wall, 3),
                  "latency_ms": round(latency * 1e3, 1), "top": top, "window": clip.number}
        self.metrics.latency.labels(clip.source).observe(latency)
        self.metrics.predictions.labels(clip.source, top[0]["label"]).inc()
        self.latest[clip.source].update(window=record)
        if self.webhook is not None and not self.options.on:
            self.webhook.post(record)
        return record

    def _events(self, clip: LiveClip, window: dict[str, Any],
                probs: np.ndarray) -> Iterator[dict[str, Any]]:
        if not self.options.on:
            return
        by_label = dict(zip(self.predictor.labels, probs.tolist(), strict=True))
        for event in self.hysteresis.update(clip.source, clip.t_start, clip.t_end, by_label):
            yield self._emit_event(clip.source, event, window)

    def _emit_event(self, source: str, event: dict[str, Any],
                    window: dict[str, Any] | None = None) -> dict[str, Any]:
        record = {"type": "event", "source": source, **event,
                  "wall_time": round(window["wall_time"] if window else time.time(), 3)}
        if window is not None:
            record["latency_ms"] = window["latency_ms"]
        fs = next(s for s in self.sources if s.source == source)
        if fs.recordings is not None:
            if event["event"] == "start":
                path = Path(self.options.record) / clip_name(source, event["label"])  # type: ignore[arg-type]
                if fs.recordings.start(event["label"], path, event["t_start"]):
                    record["clip"] = str(path)
            else:
                fs.recordings.finish(event["label"], event["t_end"] + self.options.post_roll)
        self.metrics.events.labels(source, event["label"], event["event"]).inc()
        self.latest[source]["active"] = self.hysteresis.active(source)
        if self.webhook is not None:
            self.webhook.post(record)
        return record

    def _drain(self) -> Iterator[dict[str, Any]]:
        """Status and clip records that arrived from the decode threads."""
        for s in self.sources:
            for status in s.statuses():
                self.latest[s.source]["status"] = status["status"]
                if self.webhook is not None:
                    self.webhook.post(status)
                yield status
                if status["status"] in _GONE:
                    yield from self._gone(s.source, status["status"])
                    if s.recordings is not None:
                        s.recordings.close()
        while not self._outbox.empty():
            yield self._outbox.get_nowait()

    def _gone(self, source: str, reason: str) -> Iterator[dict[str, Any]]:
        for event in self.hysteresis.close(source, reason):
            yield self._emit_event(source, event)

    def _clip_done(self, source: str, clip: Clip) -> None:
        record = {"type": "clip", "source": source, "path": str(clip.path),
                  "t_start": clip.t_start, "t_end": clip.t_end, "packets": clip.packets}
        if clip.error:
            record["error"] = clip.error
        if self.webhook is not None:
            self.webhook.post(record)
        self._outbox.put(record)
        with self.wakeup:
            self.wakeup.notify_all()

    def _log_row(self, clip: LiveClip, record: dict[str, Any], infer_s: float) -> dict[str, Any]:
        fs = next(s for s in self.sources if s.source == clip.source)
        info = fs.stream.stream_info
        return {"ts": time.time(), "model_version": self.predictor.version,
                "runtime": self.predictor.runtime, "status": 200,
                "latency_ms": record["latency_ms"], "inference_ms": round(infer_s * 1e3, 2),
                "top_label": record["top"][0]["label"], "confidence": record["top"][0]["prob"],
                "num_clips": 1, "width": info.get("width"), "height": info.get("height"),
                "fps": fs.fps, "duration": round(clip.t_end - clip.t_start, 3),
                "source": clip.source, **_clip_features(clip.frames)}

    def _close(self) -> None:
        self._stopping.set()
        for s in self.sources:
            s.stop()
        if self.webhook is not None:
            self.webhook.close()
        if self.db is not None:
            self.db.close()
        if self._http is not None:
            self._http.shutdown()

    def report(self) -> dict[str, Any]:
        """Per source: status, frames decoded and dropped, corrupt packets, windows run and
        skipped, reconnections (what `vidlab watch` prints at the end)."""
        out = {}
        for s in self.sources:
            c = s.stream.counters
            out[s.source] = {"status": s.state, "error": s.error, "frames": c.frames,
                             "dropped": c.dropped, "corrupt": c.corrupt,
                             "windows": s.windows_run, "skipped": s.windows_skipped,
                             "reconnects": c.reconnects}
        if self.webhook is not None:
            out["webhook"] = {"sent": self.webhook.sent, "failed": self.webhook.failed,
                              "dropped": self.webhook.dropped}
        return out


def clip_name(source: str, label: str) -> str:
    """`<source>-<label>-<local time>.mp4`, with anything unsafe in a file name replaced."""
    name = Path(source).stem if is_file(source) else source.split("://")[-1]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.")[-60:]
    safe_label = re.sub(r"[^A-Za-z0-9._-]+", "_", label)
    return f"{slug or 'source'}-{safe_label}-{time.strftime('%Y%m%d-%H%M%S')}.mp4"


def watch(bundle: Bundle | str | Path | Predictor, sources: list[str],
          **options: Any) -> Iterator[dict[str, Any]]:
    """Watch live `sources` with `bundle`: yields records (see the module doc) until every
    source has ended or the generator is closed. `options` are `WatchOptions` fields."""
    known = {f.name for f in fields(WatchOptions)}
    wrong = sorted(set(options) - known)
    if wrong:
        raise TypeError(f"unknown watch option(s): {', '.join(wrong)}")
    opts = WatchOptions(**options)
    predictor = bundle if isinstance(bundle, Predictor) else Predictor(bundle, opts.runtime)
    yield from Watcher(predictor, [str(s) for s in sources], opts).run()
