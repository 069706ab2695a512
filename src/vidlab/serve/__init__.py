"""Deployment: predict files, serve a bundle over HTTP with micro-batching, monitor its log.

- `vidlab.serve.predict.Predictor(bundle).predict_file(path)` — top-k labels and a timeline;
- `vidlab.serve.create_app(bundle, ...)` — the FastAPI app behind `vidlab serve`;
- `vidlab.serve.monitor.monitor_report(db, bundle)` — drift and health report behind `vidlab monitor`.

Names are imported lazily so `import vidlab.serve` stays cheap (no FastAPI, no torch).
"""

from __future__ import annotations

from vidlab.lazy import lazy_getattr

_LAZY = {
    "create_app": "vidlab.serve.app",
    "Predictor": "vidlab.serve.predict",
    "predict_files": "vidlab.serve.predict",
    "monitor_report": "vidlab.serve.monitor",
    "PredictionLog": "vidlab.serve.log",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
