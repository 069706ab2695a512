"""Prometheus metrics of one server: each app owns its registry, so apps never share counters."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServeMetrics:
    """The server's counters, gauges and histograms (names all start with `vidlab_`)."""

    def __init__(self, max_batch: int):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("vidlab_requests", "Prediction requests by HTTP status.",
                                ["status"], registry=r)
        self.latency = Histogram("vidlab_request_latency_seconds",
                                 "End-to-end latency of prediction requests (upload included).",
                                 buckets=_LATENCY_BUCKETS, registry=r)
        sizes = sorted({b for b in (1, 2, 4, 8, 16, 32, 64) if b < max_batch} | {max_batch})
        self.batch_size = Histogram("vidlab_batch_size", "Clips per forward pass.",
                                    buckets=[float(s) for s in sizes], registry=r)
        self.queue_depth = Gauge("vidlab_queue_depth",
                                 "Prediction requests admitted and not yet answered.", registry=r)
        self.uploads = Gauge("vidlab_uploads_in_progress",
                             "Uploads being received (they hold no inference slot).", registry=r)
        self.clips_waiting = Gauge("vidlab_clips_waiting",
                                   "Decoded clips waiting for a forward pass.", registry=r)
        self.decode_time = Histogram("vidlab_decode_seconds",
                                     "Time to probe, decode and preprocess one upload.",
                                     buckets=_STAGE_BUCKETS, registry=r)
        self.inference_time = Histogram("vidlab_inference_seconds",
                                        "Time of one batched forward pass.",
                                        buckets=_STAGE_BUCKETS, registry=r)
        self.predictions = Counter("vidlab_predictions", "Predictions by top label.", ["label"],
                                   registry=r)
        self.input_height = Histogram("vidlab_input_height_pixels", "Height of uploaded videos.",
                                      buckets=(144, 240, 360, 480, 720, 1080, 1440, 2160),
                                      registry=r)
        self.input_width = Histogram("vidlab_input_width_pixels", "Width of uploaded videos.",
                                     buckets=(176, 320, 480, 640, 854, 1280, 1920, 2560, 3840),
                                     registry=r)
        self.input_duration = Histogram("vidlab_input_duration_seconds",
                                        "Duration of uploaded videos.",
                                        buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
                                        registry=r)
        self.ready = Gauge("vidlab_ready", "1 once the model is loaded and warmed up.", registry=r)


_WATCH_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)


class WatchMetrics:
    """Metrics of `vidlab watch` (and `serve --watch`), per source: frames decoded and
    dropped, corrupt packets, windows run and skipped, reconnections, whether it is up, and the
    end-to-end latency (frame decoded → result emitted). `sources()` gives the live
    `FrameSource`s, read at scrape time."""

    def __init__(self, sources: Any, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.latency = Histogram("vidlab_watch_latency_seconds",
                                 "Frame capture (decoded) to window result emitted.", ["source"],
                                 buckets=_WATCH_LATENCY_BUCKETS, registry=r)
        self.inference_time = Histogram("vidlab_watch_inference_seconds",
                                        "Time of one batched forward pass over windows.",
                                        buckets=_STAGE_BUCKETS, registry=r)
        self.batch_size = Histogram("vidlab_watch_batch_size", "Windows per forward pass.",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.predictions = Counter("vidlab_watch_predictions", "Windows by top label.",
                                   ["source", "label"], registry=r)
        self.events = Counter("vidlab_watch_events", "Start/end events.",
                              ["source", "label", "event"], registry=r)
        r.register(_SourceCollector(sources))


class _SourceCollector:
    """Counters that live on each source's decode thread, read when Prometheus scrapes."""

    FIELDS = (("frames_decoded", "Frames decoded.", lambda s: s.stream.counters.frames),
              ("frames_dropped", "Frames missing from the stream or skipped to keep up.",
               lambda s: s.stream.counters.dropped),
              ("corrupt_packets", "Packets or frames that failed to decode (skipped).",
               lambda s: s.stream.counters.corrupt),
              ("windows", "Windows run through the model.", lambda s: s.windows_run),
              ("windows_skipped", "Windows skipped because inference was busy.",
               lambda s: s.windows_skipped),
              ("reconnects", "Reconnections after a stall, error or end of stream.",
               lambda s: s.stream.counters.reconnects))

    def __init__(self, sources: Any):
        self.sources = sources

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        sources = list(self.sources())
        for name, doc, read in self.FIELDS:
            family = CounterMetricFamily(f"vidlab_watch_{name}", doc, labels=["source"])
            for s in sources:
                family.add_metric([s.source], read(s))
            yield family
        up = GaugeMetricFamily("vidlab_watch_source_up", "1 while the source delivers frames.",
                               labels=["source"])
        for s in sources:
            up.add_metric([s.source], 1.0 if s.state in ("connected", "reconnected") else 0.0)
        yield up
