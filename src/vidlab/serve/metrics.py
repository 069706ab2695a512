"""Prometheus metrics of one server: each app owns its registry, so apps never share counters."""

from __future__ import annotations

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
