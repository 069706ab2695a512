"""The monitoring PNG: latency over time, confidence over time, labels vs prior, input PSI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_report(report: dict[str, Any], rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Draw a 2×2 summary of `report` (and the logged `rows` behind it) into the PNG `path`."""
    from vidlab.plotting import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ts = np.array([r["ts"] for r in rows], np.float64)
    minutes = (ts - ts.min()) / 60 if len(ts) else ts
    ax = axes[0, 0]
    if len(ts):
        ax.plot(minutes, [r["latency_ms"] for r in rows], ".", ms=3)
        for q in ("p50", "p99"):
            ax.axhline(report["latency_ms"][q], ls="--", lw=1, label=f"{q} "
                       f"{report['latency_ms'][q]:.0f} ms")
        ax.legend(fontsize=8)
    ax.set(title="latency", xlabel="minutes since first request", ylabel="ms")

    ax = axes[0, 1]
    if len(ts):
        conf = np.array([r["confidence"] for r in rows], np.float64)
        window = max(1, len(conf) // 20)
        ax.plot(minutes, conf, ".", ms=3, alpha=0.4)
        ax.plot(minutes, np.convolve(conf, np.ones(window) / window, mode="same"), lw=2,
                label=f"rolling mean ({window})")
        baseline = report["confidence"].get("baseline_mean")
        if baseline is not None:
            ax.axhline(baseline, color="k", ls="--", lw=1, label="baseline")
        ax.legend(fontsize=8)
    ax.set(title="top-1 confidence", xlabel="minutes since first request", ylim=(0, 1.02))

    ax = axes[1, 0]
    labels = list(report["labels"].get("observed", {}))
    x = np.arange(len(labels))
    ax.bar(x - 0.2, [report["labels"]["observed"][k] for k in labels], 0.4, label="served")
    if "prior" in report["labels"]:
        ax.bar(x + 0.2, [report["labels"]["prior"][k] for k in labels], 0.4, label="training")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    ax.set(title=f"predicted labels (PSI {_fmt(report['labels'].get('psi'))})", ylabel="share")
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    drift = report["input_drift"]
    names = list(drift)
    values = [drift[n]["psi"] for n in names]
    limit = report["thresholds"]["psi"]
    ax.bar(names, values, color=["tab:red" if v > limit else "tab:green" for v in values])
    ax.axhline(limit, color="k", ls="--", lw=1, label=f"alert > {limit:g}")
    ax.set(title="input drift (PSI vs training)")
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.legend(fontsize=8)

    fig.suptitle(f"{report['model_version']}: status {report['status'].upper()}",
                 color="tab:red" if report["status"] == "alert" else "tab:green")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "n/a"
