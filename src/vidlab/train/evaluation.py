"""Evaluation: top-1/top-5, mean class accuracy, per-class precision/recall, confusion matrix,
multi-view testing (clips × crops, softmax-averaged).

Runner-agnostic: `evaluate` takes a bundle (run with `vidlab.runtime.load_runner`), a torch
module, or any callable mapping a float `B×C×T×H×W` batch (numpy) to `B×num_classes` logits, so
ONNX, INT8 and pruned variants are measured by exactly the same code.
"""

from __future__ import annotations

from collections.abc import Callable
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
    top1: float
    top5: float
    mean_class_acc: float
    num_clips: int
    loss: float
    views: tuple[int, int]
    labels: list[str]
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion_matrix: list[list[int]] = field(default_factory=list)
    confusion_png: str | None = None
    runtime: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(bundle_or_model: Any, entries: list[dict[str, Any]] | str | Path,
             views: tuple[int, int] = (1, 1), *, labels: list[str] | None = None,
             data_config: Any = None, runtime: str = "auto", split: str | None = None,
             batch_size: int = 8, num_workers: int | None = None,
             confusion_png: str | Path | None = None) -> EvalResult:
    """Accuracy of a bundle / module / logits-callable on `entries` with `views` test views.

    - `bundle_or_model`: a bundle path or `Bundle` (labels and preprocessing come from it, run
      with `runtime`), an `nn.Module`, or any callable `float32 numpy B×C×T×H×W → logits`;
      the latter two need `labels` and `data_config` (a `DataConfig`).
    - `entries`: manifest entries, or a folder/manifest path; `split` keeps only that split.
    - `views`: (temporal clips, spatial crops) per video; class probabilities are averaged.
    Writes the confusion matrix PNG to `confusion_png` when given.
    """
    from vidlab.bundle import Bundle, load_bundle

    runtime_name = None
    if isinstance(bundle_or_model, str | Path):
        bundle_or_model = load_bundle(bundle_or_model)
    if isinstance(bundle_or_model, Bundle):
        from vidlab.runtime import load_runner

        bundle = bundle_or_model
        labels = labels or bundle.labels
        data_config = data_config or data_config_of(bundle)
        runner = load_runner(bundle, runtime)
        runtime_name, fn = runner.name, _numpy_fn(runner)
    elif isinstance(bundle_or_model, nn.Module):
        runtime_name, fn = "torch", _module_fn(bundle_or_model)
    elif callable(bundle_or_model):
        runtime_name = getattr(bundle_or_model, "name", None)
        fn = _numpy_fn(bundle_or_model)
    else:
        raise TypeError(f"cannot evaluate a {type(bundle_or_model).__name__}")
    if labels is None or data_config is None:
        raise ValueError("labels and data_config are required unless evaluating a bundle")
    entries = _resolve_entries(entries, split)
    if num_workers is not None:
        data_config = data_config.model_copy(update={"num_workers": num_workers})
    logits, targets = collect_logits(fn, entries, labels, data_config, views, batch_size)
    m = classification_metrics(logits, targets, labels)
    result = EvalResult(top1=m["top1"], top5=m["top5"], mean_class_acc=m["mean_class_acc"],
                        num_clips=m["num_clips"], loss=cross_entropy(logits, targets),
                        views=tuple(views), labels=list(labels), per_class=m["per_class"],
                        confusion_matrix=m["confusion_matrix"], runtime=runtime_name)
    if confusion_png is not None:
        from vidlab.train.plots import plot_confusion

        result.confusion_png = str(plot_confusion(m["confusion_matrix"], labels, confusion_png,
                                                  title=f"top-1 {m['top1']:.3f} ({views[0]}x{views[1]} views)"))
    return result


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
    logits, targets = collect_logits(fn, entries, labels, data_config, views, batch_size, sampler)
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


def collect_logits(fn: Callable[[torch.Tensor], np.ndarray], entries: list[dict[str, Any]],
                   labels: list[str], data_config: Any, views: tuple[int, int],
                   batch_size: int, sampler: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-video log of view-averaged class probabilities, and the targets (loader order)."""
    from vidlab.data.loader import make_loader

    loader = make_loader(entries, labels, data_config, train=False, batch_size=batch_size,
                         seed=0, sampler=sampler, views=tuple(views))
    out, tgt = [], []
    for clips, targets in loader:
        if clips.ndim == 6:  # B×V×C×T×H×W: every view of a video, probabilities averaged
            b, v = clips.shape[:2]
            probs = _softmax(fn(clips.flatten(0, 1))).reshape(b, v, -1).mean(axis=1)
        else:
            probs = _softmax(fn(clips))
        out.append(np.log(np.clip(probs, 1e-12, None)))
        tgt.append(np.asarray(targets).reshape(-1))
    if not out:
        return np.zeros((0, len(labels)), np.float32), np.zeros(0, np.int64)
    return np.concatenate(out).astype(np.float32), np.concatenate(tgt).astype(np.int64)


def data_config_of(bundle: Any):
    """The `DataConfig` a bundle was trained with (else one matching its preprocessing)."""
    from vidlab.data.config import DataConfig

    data = (bundle.config.get("train") or {}).get("data")
    if data:
        return DataConfig.model_validate(data)
    shared = ("num_frames", "stride", "short_side", "crop_size", "mean", "std", "target_fps",
              "short_video")
    return DataConfig.model_validate({k: v for k, v in bundle.preprocess_spec.items()
                                      if k in shared and v is not None})


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


def _numpy_fn(runner: Callable[[np.ndarray], Any]) -> Callable[[torch.Tensor], np.ndarray]:
    def fn(x: torch.Tensor) -> np.ndarray:
        out = runner(np.ascontiguousarray(x.numpy(), dtype=np.float32))
        return np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out,
                          dtype=np.float32)

    return fn


def _module_fn(model: nn.Module, device: torch.device | None = None,
               memory_format: torch.memory_format = torch.contiguous_format,
               autocast: Callable[[], Any] | None = None) -> Callable[[torch.Tensor], np.ndarray]:
    model.eval()
    if device is None:
        device = next(model.parameters()).device

    def fn(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode(), (autocast() if autocast else nullcontext()):
            x = x.to(device).to(memory_format=memory_format)
            return model(x).float().cpu().numpy()

    return fn
