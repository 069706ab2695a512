"""PNG plots for the run directory: training curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidlab.plotting import pyplot


def plot_curves(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Loss and accuracy per epoch (train and val) from metrics.jsonl records."""
    plt = pyplot()
    epochs = [r for r in records if r.get("phase") == "epoch"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [r["epoch"] for r in epochs]
    for key, ax in (("train_loss", ax_loss), ("val_loss", ax_loss),
                    ("train_top1", ax_acc), ("val_top1", ax_acc), ("val_ema_top1", ax_acc)):
        ys = [r.get(key) for r in epochs]
        if any(y is not None for y in ys):
            ax.plot(xs, [np.nan if y is None else y for y in ys], marker="o", label=key)
    ax_loss.set_title("loss"), ax_acc.set_title("accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_confusion(cm: list[list[int]] | np.ndarray, labels: list[str], path: str | Path,
                   title: str = "confusion matrix") -> Path:
    """Row-normalised confusion matrix with counts written in the cells."""
    plt = pyplot()
    cm = np.asarray(cm, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.6 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
