"""Evaluation: top-1/top-5, mean class accuracy, per-class precision/recall, confusion matrix,
multi-view testing (clips × crops, softmax-averaged) — one evaluation for every runner.

Runner-agnostic: `evaluate` takes a bundle (run with `vidlab.runtime.load_runner`), a torch
module, an ONNX Runtime session, or any callable mapping a float `B×C×T×H×W` batch (numpy) to
`B×num_classes` logits, so PyTorch, ONNX, INT8 and pruned variants are measured by exactly the
same code — over entries (decoded here), a `vidlab.data.clips.ClipSet` (decoded once, measured
many times) or a DataLoader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidlab.errors import DatasetError
from vidlab.train.distributed import DistInfo, ResumableShardSampler, all_gather_objects
from vidlab.train.metrics import classification_metrics, cross_entropy


@dataclass
class EvalResult:
    """What `evaluate` measured; `views` are the (temporal clips, spatial crops) per video the
    figures were taken with (`views_label(result.views)` → "3x1"). Figures are None when no
    clip had a known label."""

    top1: float | None
    top5: float | None
    mean_class_acc: float | None
    num_clips: int
    loss: float | None
    views: tuple[int, int]
    labels: list[str]
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion_matrix: list[list[int]] = field(default_factory=list)
    confusion_png: str | None = None
    runtime: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(bundle_or_model: Any, entries: Any, views: tuple[int, int] = (1, 1), *,
             labels: list[str] | None = None, preprocess: Any = None, data_config: Any = None,
             runtime: str = "auto", split: str | None = None, batch_size: int = 8,
             num_workers: int | None = None,
             confusion_png: str | Path | None = None) -> EvalResult:
    """Accuracy of a runner on `entries`, class probabilities averaged over each video's views.

    - `bundle_or_model` (the runner): a bundle path or `Bundle` (labels and preprocessing come
      from it, run with `runtime`), an `nn.Module`, an ONNX Runtime `InferenceSession`, or any
      callable `float32 numpy B×C×T×H×W → logits`.
    - `entries` (the data): a `ClipSet` (its labels and views are used as they are), a
      DataLoader of `(clips, targets)` batches, or entries / a folder / a manifest path, decoded
      here with `views` (temporal clips, spatial crops) per video and the bundle's
      preprocessing, else `preprocess`, else `data_config.preprocess()` (`split` keeps only
      that split).
    - `labels` are needed unless the runner is a bundle or the data a `ClipSet`.
    Writes the confusion matrix PNG to `confusion_png` when given.
    """
    from vidlab.data.clips import ClipSet

    fn, runtime_name, bundle = as_runner(bundle_or_model, runtime)
    data = entries
    if bundle is not None:
        labels = labels or bundle.labels
        preprocess = preprocess or bundle.preprocess()
        data_config = data_config or data_config_of(bundle)
    if isinstance(data, ClipSet):
        labels, views = labels or data.labels, data.views
        logits, targets = clipset_logits(fn, data, batch_size)
    elif isinstance(data, torch.utils.data.DataLoader):
        views = tuple(getattr(data.dataset, "views", views))
        logits, targets = loader_logits(fn, data)
    else:
        if labels is None or (preprocess is None and data_config is None):
            raise ValueError("labels and preprocess (or data_config) are required to evaluate "
                             "entries unless the runner is a bundle")
        loader = eval_loader(_resolve_entries(data, split), labels, data_config, views,
                             batch_size, preprocess=preprocess, num_workers=num_workers)
        logits, targets = loader_logits(fn, loader)
    if labels is None:
        raise ValueError("labels are required to evaluate a DataLoader")
    known = targets >= 0
    logits, targets = logits[known], targets[known]
    m = classification_metrics(logits, targets, labels)
    empty = len(targets) == 0
    result = EvalResult(top1=None if empty else m["top1"], top5=None if empty else m["top5"],
                        mean_class_acc=None if empty else m["mean_class_acc"],
                        num_clips=m["num_clips"],
                        loss=None if empty else cross_entropy(logits, targets),
                        views=tuple(views), labels=list(labels), per_class=m["per_class"],
                        confusion_matrix=m["confusion_matrix"], runtime=runtime_name)
    if confusion_png is not None and not empty:
        from vidlab.train.plots import plot_confusion

        result.confusion_png = str(plot_confusion(m["confusion_matrix"], labels, confusion_png,
                                                  title=f"top-1 {m['top1']:.3f} ({views[0]}x{views[1]} views)"))
    return result


def as_runner(runner: Any, runtime: str = "auto") -> tuple[Callable[[Any], np.ndarray], str | None, Any]:
    """`(fn, runtime name, bundle or None)`: `fn` maps a float batch (torch or numpy) to numpy
    logits, whatever `runner` is (bundle or its path, module, ORT session, callable)."""
    from vidlab.bundle import Bundle, load_bundle

    if isinstance(runner, str | Path):
        runner = load_bundle(runner)
    if isinstance(runner, Bundle):
        from vidlab.runtime import load_runner

        loaded = load_runner(runner, runtime)
        return _numpy_fn(loaded), loaded.name, runner
    if isinstance(runner, nn.Module):
        return _module_fn(runner), "torch", None
    if hasattr(runner, "run") and hasattr(runner, "get_inputs"):  # an ORT InferenceSession
        name = runner.get_inputs()[0].name
        return _numpy_fn(lambda x: runner.run(None, {name: x})[0]), "onnxruntime", None
    if callable(runner):
        return _numpy_fn(runner), getattr(runner, "name", None), None
    raise TypeError(f"cannot evaluate a {type(runner).__name__}")


def evaluate_module(model: nn.Module, entries: list[dict[str, Any]], labels: list[str],
                    data_config: Any, views: tuple[int, int] = (1, 1),
                    info: DistInfo | None = None, device: torch.device | None = None,
                    batch_size: int = 8, memory_format: torch.memory_format = torch.contiguous_format,
                    autocast: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Metrics of a module during training: each rank evaluates its shard, results are gathered."""
    info = info or DistInfo()
    was_training = model.training
    model.eval()
    fn = _module_fn(model, device, memory_format, autocast)
    sampler = ResumableShardSampler(len(entries), info, shuffle=False)
    loader = eval_loader(entries, labels, data_config, views, batch_size, sampler=sampler)
    logits, targets = loader_logits(fn, loader)
    order = sampler.indices()
    parts = all_gather_objects((order, logits, targets), info)
    seen: dict[int, tuple[np.ndarray, int]] = {}
    for idx, lg, tg in parts:
        for i, row, t in zip(idx, lg, tg, strict=True):
            seen.setdefault(i, (row, int(t)))  # padding repeats a few indices: keep one
    keys = sorted(seen)
    all_logits = np.stack([seen[k][0] for k in keys]) if keys else np.zeros((0, len(labels)))
    all_targets = np.array([seen[k][1] for k in keys], dtype=np.int64)
    model.train(was_training)
    m = classification_metrics(all_logits, all_targets, labels)
    m["loss"] = cross_entropy(all_logits, all_targets)
    return m


def eval_loader(entries: list[dict[str, Any]], labels: list[str], data_config: Any,
                views: tuple[int, int], batch_size: int, *, preprocess: Any = None,
                sampler: Any = None, num_workers: int | None = None):
    """The evaluation DataLoader: `views` of every entry, decoded with `preprocess` (default:
    `data_config.preprocess()`), in entry order (or `sampler`'s)."""
    from vidlab.data.config import DataConfig
    from vidlab.data.loader import make_loader

    config = data_config if data_config is not None else DataConfig()
    if num_workers is not None:
        config = config.model_copy(update={"num_workers": num_workers})
    return make_loader(entries, labels, config, train=False, batch_size=batch_size, seed=0,
                       sampler=sampler, views=tuple(views), preprocess=preprocess)


def loader_logits(fn: Callable[[Any], np.ndarray], batches: Iterable[tuple[Any, Any]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-video log of view-averaged class probabilities, and the targets (loader order)."""
    out, tgt = [], []
    for clips, targets in batches:
        if clips.ndim == 6:  # B×V×C×T×H×W: every view of a video, probabilities averaged
            b, v = clips.shape[:2]
            probs = _softmax(fn(clips.flatten(0, 1))).reshape(b, v, -1).mean(axis=1)
        else:
            probs = _softmax(fn(clips))
        out.append(np.log(np.clip(probs, 1e-12, None)))
        tgt.append(np.asarray(targets).reshape(-1))
    if not out:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(out).astype(np.float32), np.concatenate(tgt).astype(np.int64)


def clipset_logits(fn: Callable[[Any], np.ndarray], clips: Any, batch_size: int = 8
                   ) -> tuple[np.ndarray, np.ndarray]:
    """`loader_logits` over a `ClipSet`: rows of one video (its views) are averaged."""
    probs = np.concatenate([_softmax(fn(x)) for x, _ in clips.batches(batch_size)])
    videos, first, group = np.unique(clips.video, return_index=True, return_inverse=True)
    order = np.argsort(first)  # videos in the order their first row appears
    sums = np.zeros((len(videos), probs.shape[1]))
    np.add.at(sums, group, probs)
    mean = sums / np.bincount(group)[:, None]
    logp = np.log(np.clip(mean[order], 1e-12, None)).astype(np.float32)
    return logp, clips.targets[first[order]].astype(np.int64)


def data_config_of(bundle: Any):
    """The `DataConfig` a bundle was trained with, its clip settings taken from the bundle's
    saved preprocessing (which wins: nothing re-derives it); defaults for a bundle without a
    training config."""
    from vidlab.data.config import DataConfig

    data = dict((bundle.config.get("train") or {}).get("data") or {})
    data.update({k: v for k, v in bundle.preprocess_spec.items()
                 if k in DataConfig.model_fields and v is not None})
    return DataConfig.model_validate(data)


def _resolve_entries(entries: list[dict[str, Any]] | str | Path, split: str | None) -> list[dict]:
    if isinstance(entries, str | Path):
        from vidlab.data.manifest import load_entries

        source = entries
        entries = load_entries(source)
        if split and not any(e.get("split") for e in entries):
            split = None  # a plain folder: evaluate every clip
    else:
        source = "entries"
    if split:
        entries = [e for e in entries if e.get("split") == split]
    if not entries:
        raise DatasetError(f"no clips to evaluate{f' in split {split!r}' if split else ''}",
                           source if isinstance(source, str | Path) else None)
    return entries


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _numpy_fn(runner: Callable[[np.ndarray], Any]) -> Callable[[Any], np.ndarray]:
    def fn(x: Any) -> np.ndarray:
        x = x.numpy() if isinstance(x, torch.Tensor) else x
        out = runner(np.ascontiguousarray(x, dtype=np.float32))
        return np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out,
                          dtype=np.float32)

    return fn


def _module_fn(model: nn.Module, device: torch.device | None = None,
               memory_format: torch.memory_format = torch.contiguous_format,
               autocast: Callable[[], Any] | None = None) -> Callable[[Any], np.ndarray]:
    model.eval()
    if device is None:
        device = next(model.parameters()).device

    def fn(x: Any) -> np.ndarray:
        with torch.inference_mode(), (autocast() if autocast else nullcontext()):
            x = torch.as_tensor(x).to(device).to(memory_format=memory_format)
            return model(x).float().cpu().numpy()

    return fn
