"""Monitoring: read the prediction log and compare what the server sees with what it was trained on.

Reports traffic, latency percentiles, the predicted-label distribution against the training prior
(`data_stats.json` `class_counts`), confidence drift and input drift: the population stability
index (PSI) of each logged input statistic against the bundle's training histograms. Thresholds
turn findings into `status: "alert"` with one reason per finding.

PSI = Σ (a − e)·ln(a / e) over histogram bins of proportions; < 0.1 is usually read as stable,
0.1–0.25 as a moderate shift, > 0.25 as a significant one (the default alert threshold).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.bundle import Bundle, load_bundle
from vidlab.serve.log import read_log

INPUT_FEATURES = ("width", "height", "fps", "duration", "brightness", "contrast", "motion")


@dataclass
class Thresholds:
    """When a finding becomes an alert (each has a `vidlab monitor` flag)."""

    psi: float = 0.25  # input drift, per feature
    label_psi: float = 0.25  # predicted labels vs the training prior
    confidence_drop: float = 0.15  # fall of the mean top-1 probability vs the baseline
    error_rate: float = 0.05  # share of requests answered with an error
    p99_ms: float | None = None  # latency alert (off unless set)
    min_samples: int = 50  # fewer predictions than this: report, but raise no drift alert


def psi_bins(n_current: int, n_baseline: int, most: int = 10) -> int:
    """Histogram bins for a PSI between samples of these sizes.

    PSI grows with the number of bins on small samples even without drift (about
    `(bins − 1)·(1/n + 1/m)`), so bins are merged until that bias is near 0.1: in simulation
    this keeps the no-drift 95th percentile under 0.25 for 30..2000 predictions against 200 or
    2000 training clips, while a one-standard-deviation shift still alarms ≥ 92% of the time.
    """
    bias = 1 / max(n_current, 1) + 1 / max(n_baseline, 1)
    return int(np.clip(0.1 / bias, 2, most))


def rebin(hist: dict[str, Any], bins: int) -> dict[str, Any]:
    """Merge adjacent bins of a `{"edges", "counts"}` histogram into about `bins` of equal mass."""
    counts = np.asarray(hist["counts"], np.float64)
    edges = np.asarray(hist["edges"], np.float64)
    if bins >= len(counts) or counts.sum() <= 0:
        return hist
    cum = np.cumsum(counts) / counts.sum()
    cuts = [0]
    for q in np.linspace(0, 1, bins + 1)[1:-1]:
        i = int(np.searchsorted(cum, q)) + 1
        if cuts[-1] < i < len(counts):
            cuts.append(i)
    cuts.append(len(counts))
    return {**hist, "edges": [float(edges[c]) for c in cuts],
            "counts": [float(counts[a:b].sum()) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]}


def label_psi(prior_counts: np.ndarray, observed_counts: np.ndarray) -> float:
    """PSI of the predicted-label counts against the training label counts."""
    from vidlab.data.stats import psi

    k = len(prior_counts)
    baseline = {"edges": list(range(k + 1)), "counts": list(prior_counts)}
    return psi(baseline, np.repeat(np.arange(k), np.asarray(observed_counts, np.int64)))


def monitor_report(db: str | Path, bundle: Bundle | str | Path, *, since_hours: float | None = None,
                   thresholds: Thresholds | None = None, all_versions: bool = False,
                   plot: str | Path | None = None) -> dict[str, Any]:
    """The health and drift report of a prediction log for `bundle` (optionally a PNG at `plot`).

    Only rows logged by this bundle's exact model version are analysed unless `all_versions`.
    """
    from vidlab.serve.predict import model_version

    th = thresholds or Thresholds()
    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    version = model_version(b)
    since = time.time() - since_hours * 3600 if since_hours else None
    everything = read_log(db, since)
    versions: dict[str, int] = {}
    for r in everything:
        versions[str(r["model_version"])] = versions.get(str(r["model_version"]), 0) + 1
    rows = everything if all_versions else [r for r in everything if r["model_version"] == version]
    ok = [r for r in rows if r["status"] == 200]
    report: dict[str, Any] = {
        "db": str(db), "bundle": str(b.path), "model_version": version,
        "versions_in_log": versions, "thresholds": asdict(th),
        "traffic": _traffic(rows, ok), "latency_ms": _latency(ok),
        "labels": _labels(ok, b), "confidence": _confidence(ok, b),
        "input_drift": _input_drift(ok, b),
    }
    reasons, notes = _judge(report, th, len(ok))
    report.update(status="alert" if reasons else "ok", reasons=reasons, notes=notes)
    if plot:
        from vidlab.serve.monitor_plot import plot_report

        plot_report(report, ok, plot)
        report["plot"] = str(plot)
    return report


def _traffic(rows: list[dict], ok: list[dict]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    first = min((r["ts"] for r in rows), default=None)
    last = max((r["ts"] for r in rows), default=None)
    hours = max((last - first) / 3600, 1 / 60) if first is not None else None
    return {"requests": len(rows), "predictions": len(ok), "errors": len(rows) - len(ok),
            "error_rate": (len(rows) - len(ok)) / len(rows) if rows else 0.0,
            "by_status": statuses,
            "first": _iso(first), "last": _iso(last),
            "requests_per_hour": len(rows) / hours if hours else 0.0}


def _latency(ok: list[dict]) -> dict[str, Any]:
    values = np.array([r["latency_ms"] for r in ok if r["latency_ms"] is not None])
    if not len(values):
        return {}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99),
            "mean": float(values.mean()), "max": float(values.max())}


def _labels(ok: list[dict], b: Bundle) -> dict[str, Any]:
    labels = b.labels
    observed = np.array([sum(r["top_label"] == lab for r in ok) for lab in labels], np.float64)
    prior_counts = b.data_stats.get("class_counts") or {}
    prior = np.array([float(prior_counts.get(lab, 0)) for lab in labels])
    out: dict[str, Any] = {"observed": _shares(labels, observed)}
    if prior.sum() > 0:
        out["prior"] = _shares(labels, prior)
        out["psi"] = label_psi(prior, observed) if observed.sum() else None
    return out


def _confidence(ok: list[dict], b: Bundle) -> dict[str, Any]:
    conf = np.array([r["confidence"] for r in ok if r["confidence"] is not None], np.float64)
    if not len(conf):
        return {}
    val = b.metrics.get("val", {}) if isinstance(b.metrics.get("val"), dict) else {}
    baseline = val.get("mean_confidence")
    if baseline is not None:
        source, current = "metrics.json val.mean_confidence", conf
    else:  # no training baseline: compare the newer half of the log with the older half
        half = len(conf) // 2
        baseline = float(conf[:half].mean()) if half else None
        source, current = "first half of the log", conf[half:]
    out = {"mean": float(current.mean()), "baseline_mean": baseline, "baseline_source": source,
           "low_confidence_share": float((conf < 0.5).mean())}
    out["drop"] = float(baseline - current.mean()) if baseline is not None else None
    return out


def _input_drift(ok: list[dict], b: Bundle) -> dict[str, Any]:
    from vidlab.data.stats import psi

    train = b.data_stats.get("features") or {}
    out = {}
    for name in INPUT_FEATURES:
        ref = train.get(name)
        values = np.array([r[name] for r in ok if r.get(name) is not None], np.float64)
        if not isinstance(ref, dict) or len(ref.get("edges", [])) < 2 or not len(values):
            continue
        bins = psi_bins(len(values), int(np.sum(ref.get("counts", [0]))))
        out[name] = {"psi": psi(rebin(ref, bins), values), "bins": bins,
                     "mean": float(values.mean()), "train_mean": ref.get("mean"),
                     "train_std": ref.get("std"), "samples": int(len(values))}
    return out


def _judge(report: dict[str, Any], th: Thresholds, n: int) -> tuple[list[str], list[str]]:
    reasons, notes = [], []
    traffic = report["traffic"]
    if traffic["requests"] and traffic["error_rate"] > th.error_rate:
        reasons.append(f"error rate {traffic['error_rate']:.1%} > {th.error_rate:.1%}")
    p99 = report["latency_ms"].get("p99")
    if th.p99_ms and p99 is not None and p99 > th.p99_ms:
        reasons.append(f"latency p99 {p99:.0f} ms > {th.p99_ms:g} ms")
    if n < th.min_samples:
        notes.append(f"only {n} predictions (< {th.min_samples}): drift checks not judged")
        return reasons, notes
    drift_psi = report["labels"].get("psi")
    classes = len(report["labels"].get("observed", {}))
    if drift_psi is None and "prior" not in report["labels"]:
        notes.append("data_stats.json has no class_counts: label drift not checked")
    elif n < 10 * classes:  # PSI over k labels needs ~10 predictions per label to mean much
        notes.append(f"only {n} predictions for {classes} labels (< {10 * classes}): "
                     "label drift not judged")
    elif drift_psi is not None and drift_psi > th.label_psi:
        reasons.append(f"predicted-label distribution drifted from the training prior "
                       f"(PSI {drift_psi:.2f} > {th.label_psi:g})")
    drop = report["confidence"].get("drop")
    if drop is not None and drop > th.confidence_drop:
        reasons.append(f"mean confidence fell by {drop:.2f} (> {th.confidence_drop:g}) vs "
                       f"{report['confidence']['baseline_source']}")
    drift = report["input_drift"]
    if not drift:
        notes.append("data_stats.json has no feature histograms: input drift not checked")
    for name, d in drift.items():
        if d["psi"] > th.psi:
            reasons.append(f"input drift in {name}: PSI {d['psi']:.2f} > {th.psi:g} "
                           f"(mean {d['mean']:.3g} vs training {_num(d['train_mean'])})")
    return reasons, notes


def _shares(labels: list[str], counts: np.ndarray) -> dict[str, float]:
    total = counts.sum()
    return {lab: float(c / total) if total else 0.0 for lab, c in zip(labels, counts, strict=True)}


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "?"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
