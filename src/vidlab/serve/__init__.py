"""Deployment: predict files, serve a bundle over HTTP with micro-batching, monitor its log.

- `vidlab.serve.predict.Predictor(bundle).predict_file(path)` — top-k labels and a timeline;
- `vidlab.serve.create_app(bundle, ...)` — the FastAPI app behind `vidlab serve`;
- `vidlab.serve.monitor.monitor_report(db, bundle)` — drift and health report behind `vidlab monitor`.

Names are imported lazily so `import vidlab.serve` stays cheap (no FastAPI, no torch).
"""

from __future__ import annotations

from vidlab.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__, app=("create_app",), predict=("Predictor", "predict_files"),
    monitor=("monitor_report",), log=("PredictionLog",))
