"""Classification metrics from logits: top-k, mean class accuracy, precision/recall, confusion."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(targets: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """`num_classes×num_classes` counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (targets.astype(np.int64), preds.astype(np.int64)), 1)
    return cm


def topk_accuracy(logits: np.ndarray, targets: np.ndarray, k: int) -> float:
    if len(targets) == 0:
        return float("nan")
    k = min(k, logits.shape[1])
    top = np.argsort(-logits, axis=1)[:, :k]
    return float((top == targets[:, None]).any(axis=1).mean())


def classification_metrics(logits: np.ndarray, targets: np.ndarray,
                           labels: list[str]) -> dict[str, Any]:
    """Top-1, top-5, mean class accuracy, per-class precision/recall/support, confusion matrix.

    Classes absent from `targets` are left out of the mean class accuracy (their recall is
    undefined) and reported with `recall: null`.
    """
    n = len(labels)
    targets = np.asarray(targets, dtype=np.int64)
    preds = logits.argmax(axis=1) if len(targets) else np.zeros(0, np.int64)
    cm = confusion_matrix(targets, preds, n)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    diag = np.diag(cm)
    recall = [float(diag[i] / support[i]) if support[i] else None for i in range(n)]
    precision = [float(diag[i] / predicted[i]) if predicted[i] else None for i in range(n)]
    present = [r for r in recall if r is not None]
    return {
        "top1": topk_accuracy(logits, targets, 1),
        "top5": topk_accuracy(logits, targets, 5),
        "mean_class_acc": float(np.mean(present)) if present else float("nan"),
        "num_clips": int(len(targets)),
        "per_class": {labels[i]: {"precision": precision[i], "recall": recall[i],
                                  "support": int(support[i])} for i in range(n)},
        "confusion_matrix": cm.tolist(),
    }


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy of float logits (numerically stable log-softmax)."""
    if len(targets) == 0:
        return float("nan")
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(targets)), targets].mean())
