"""`import_pretrained`: a pretrained classifier, as it is, into a self-contained bundle.

`vidlab import hf:PATH -o NAME.vidlab` keeps the checkpoint's own labels, weights and
preprocessing, and stores its HF config in the bundle, so `predict`, `serve`, `optimize`,
`bench` and `monitor` take it like a trained bundle and it loads after PATH is gone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from vidlab.bundle import Bundle, check_bundle_output, save_bundle
from vidlab.data.config import DataConfig
from vidlab.errors import ModelError

log = logging.getLogger(__name__)


def import_pretrained(name: str, out: str | Path, *, stride: int | None = None,
                      target_fps: float | None = None, data: str | Path | None = None,
                      overwrite: bool = False) -> Bundle:
    """Write bundle `out` from the pretrained classifier `name` (`hf:PATH`).

    Frames, size, mean and std come from the checkpoint; checkpoints do not record how far
    apart their frames were sampled, so pass `stride` (frames) or `target_fps` as the model
    was trained (VideoMAE's Kinetics models: 16 frames, stride 4). With `data` (a folder or
    manifest of videos like those it will see), the bundle gets that data's statistics as
    the drift-monitoring baseline. Raises `OutputExistsError` if `out` exists and not
    `overwrite`, `ModelError` for a checkpoint that is not a complete video classifier.
    """
    from vidlab.models import create, model_entry
    from vidlab.models.hf import checkpoint_labels, is_hf_name
    from vidlab.models.lora import parameter_counts

    if not is_hf_name(name):
        raise ModelError(f"{name!r}: import takes a pretrained checkpoint, hf:PATH")
    check_bundle_output(out, overwrite)
    labels = checkpoint_labels(name)
    entry = model_entry(name)
    update: dict[str, Any] = {k: v for k, v in (entry.preprocess or {}).items()}
    update.update({k: v for k, v in (("stride", stride), ("target_fps", target_fps))
                   if v is not None})
    preprocess = DataConfig(**update).preprocess()
    model = create(name, num_classes=len(labels)).eval()
    stats = _data_stats(data, labels, preprocess) if data is not None else {}
    config = {
        "task": "classify",
        "model": {"name": name, "num_classes": len(labels),
                  "kwargs": {"num_frames": preprocess.num_frames, **model.rebuild_kwargs()}},
        "labels": labels,
        "preprocess": preprocess.to_dict(),
        "source": {"imported": name},
    }
    metrics = {"params": parameter_counts(model)["params_total"]}
    return save_bundle(out, config=config, state_dict=model.state_dict(), metrics=metrics,
                       data_stats=stats, overwrite=overwrite)


def _data_stats(data: str | Path, labels: list[str], preprocess) -> dict[str, Any]:
    """Input statistics of `data`; label counts only when its labels are the model's."""
    from vidlab.data.manifest import load_entries
    from vidlab.data.stats import compute_data_stats

    entries = load_entries(data)
    stats = compute_data_stats(entries, labels, preprocess)
    if not {str(e["label"]) for e in entries} <= set(labels):
        log.warning("%s: its labels are not the model's: no label-drift baseline", data)
        stats.pop("class_counts", None)
    return stats
