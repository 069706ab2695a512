"""The model bundle: a directory `NAME.vidlab/` holding everything needed to run a model.

Layout (contract, see DESIGN.md):

- `config.json` — `{"format": 1, "task", "model": {"name", "num_classes", "kwargs"}, "labels",
  "preprocess": Preprocess.to_dict(), "train": {...}, "versions": {...}}`
- `weights.safetensors` — the PyTorch state dict
- `metrics.json` — accuracy, latency, size per variant (`{"val": {...}, "variants": {...}}`)
- `data_stats.json` — statistics of the training data, the baseline for drift monitoring
- optional `model.onnx`, `model.int8.onnx` and other runtime files

Loading never unpickles: JSON and safetensors only. Saving writes a temporary sibling directory
and renames it into place, so an interrupted save never leaves a half bundle.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidlab.bundle_schema import check_config, check_preprocess
from vidlab.errors import BundleError, OutputExistsError

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
METRICS_FILE = "metrics.json"
DATA_STATS_FILE = "data_stats.json"
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"


@dataclass
class Bundle:
    """A loaded bundle: its parsed JSON files; weights are read on demand."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    data_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.config.get("task", "classify")

    @property
    def labels(self) -> list[str]:
        return list(self.config.get("labels", []))

    @property
    def num_classes(self) -> int:
        """Classes the model outputs: `model.num_classes`, else the number of labels."""
        return int(self.model_spec.get("num_classes") or len(self.labels))

    @property
    def model_spec(self) -> dict[str, Any]:
        return dict(self.config.get("model", {}))

    @property
    def preprocess_spec(self) -> dict[str, Any]:
        return dict(self.config.get("preprocess", {}))

    def check_runnable(self) -> None:
        """`BundleError` (naming config.json and the field) unless this is a classifier with
        everything needed to run it: a model and its labels."""
        check_config(self.config, self.path / CONFIG_FILE, FORMAT_VERSION, runnable=True)

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def state_dict(self) -> dict[str, Any]:
        """The weights as a dict of tensors (safetensors: no code runs while loading)."""
        from safetensors.torch import load_file

        weights = self.path / WEIGHTS_FILE
        if not weights.is_file():
            raise BundleError(f"no {WEIGHTS_FILE}", self.path)
        try:
            return load_file(str(weights))
        except Exception as exc:  # safetensors raises its own error types
            raise BundleError(f"{WEIGHTS_FILE} is unreadable ({exc})", self.path) from exc

    def build_model(self, load_weights: bool = True):
        """Instantiate the bundle's model (eval mode) and load its weights."""
        from vidlab.models import create

        spec = self.model_spec
        if "name" not in spec:
            raise BundleError("config.json has no model.name", self.path)
        model = create(spec["name"], num_classes=self.num_classes, **spec.get("kwargs", {}))
        if spec.get("pruned_channels"):  # structurally pruned by `vidlab optimize --prune`
            fit_shapes(model, self.state_dict())
        if load_weights:
            try:
                missing, unexpected = model.load_state_dict(self.state_dict(), strict=False)
            except RuntimeError as exc:  # shape mismatches, which strict=False does not excuse
                raise BundleError(f"weights do not fit model {spec['name']} with "
                                  f"{self.num_classes} classes ({str(exc).strip().splitlines()[-1]})",
                                  self.path / WEIGHTS_FILE) from exc
            if missing or unexpected:
                raise BundleError(
                    f"weights do not fit model {spec['name']}: missing {missing[:3]}, "
                    f"unexpected {unexpected[:3]}", self.path)
        return model.eval()

    def preprocess(self):
        """The evaluation/serving preprocessing object the model was trained with."""
        from vidlab.data.transforms import Preprocess

        try:
            pre = Preprocess.from_dict(self.preprocess_spec)
        except (TypeError, ValueError) as exc:  # e.g. an unknown sampling word
            raise BundleError(f"preprocess: {exc}", self.path / CONFIG_FILE) from exc
        check_preprocess(pre, self.path / CONFIG_FILE)
        return pre

    def update_metrics(self, updates: dict[str, Any]) -> None:
        """Merge `updates` into metrics.json (atomic replace of that one file)."""
        from vidlab.config import deep_merge

        merged = deep_merge(self.metrics, updates)
        write_json_atomic(self.path / METRICS_FILE, merged)
        self.metrics = merged


def save_bundle(
    path: str | Path,
    *,
    config: dict[str, Any],
    state_dict: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    data_stats: dict[str, Any] | None = None,
    extra_files: dict[str, str | Path] | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Write a bundle directory atomically and return it loaded.

    `extra_files` maps a file name inside the bundle to a source path (copied). An existing
    `path` raises `OutputExistsError` unless `overwrite`.
    """
    from vidlab import versions

    dest = check_bundle_output(path, overwrite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cfg = {"format": FORMAT_VERSION, **config}
    cfg.setdefault("versions", versions())
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, default=str))
        (tmp / METRICS_FILE).write_text(json.dumps(metrics or {}, indent=2, default=str))
        (tmp / DATA_STATS_FILE).write_text(json.dumps(data_stats or {}, indent=2, default=str))
        if state_dict is not None:
            from safetensors.torch import save_file

            tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
            save_file(_unshare(tensors), str(tmp / WEIGHTS_FILE))
        for name, src in (extra_files or {}).items():
            shutil.copy2(src, tmp / name)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return load_bundle(dest)


def check_bundle_output(path: str | Path, overwrite: bool) -> Path:
    """`path` as a place to write a bundle: `OutputExistsError` if it exists and not
    `overwrite`, and always if it is anything but a bundle (it has a config) or an empty
    folder — `--overwrite` replaces a bundle, never a user's file or folder of other things."""
    dest = Path(path)
    if not dest.exists():
        return dest
    if not overwrite:
        raise OutputExistsError(path=dest)
    if not (dest.is_dir() and (_is_bundle(dest) or not any(dest.iterdir()))):
        raise OutputExistsError("exists and is not a vidlab bundle; --overwrite only replaces a "
                                "bundle: choose another path", dest)
    return dest


def _is_bundle(path: Path) -> bool:
    """A folder `save_bundle` wrote: its config.json carries the bundle format (a training run
    or a Hugging Face checkpoint has a config.json too, and is not to be replaced)."""
    try:
        return "format" in json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return False


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle directory; raises `BundleError` naming what is wrong."""
    p = Path(path)
    if not p.exists():
        raise BundleError("no such bundle", p)
    if not p.is_dir():
        raise BundleError("a bundle is a directory (NAME.vidlab/), this is a file", p)
    cfg_path = p / CONFIG_FILE
    if not cfg_path.is_file():
        raise BundleError(f"not a vidlab bundle: no {CONFIG_FILE}", p)
    config = _read_json(cfg_path, p)
    if not isinstance(config, dict) or "format" not in config:
        raise BundleError(f"{CONFIG_FILE} is not a vidlab bundle config", p)
    check_config(config, cfg_path, FORMAT_VERSION)
    metrics = _read_object(p / METRICS_FILE, p)
    stats = _read_object(p / DATA_STATS_FILE, p)
    return Bundle(path=p, config=config, metrics=metrics, data_stats=stats)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to a temporary sibling then rename: readers never see a half-written file."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with open(fd, "w") as f:
            json.dump(data, f, indent=2, default=str)
        Path(tmp).replace(p)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _read_json(path: Path, bundle: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path.name} is unreadable ({exc})", bundle) from exc


def _read_object(path: Path, bundle: Path) -> dict[str, Any]:
    """An optional JSON file that must hold an object (`{}` when absent)."""
    if not path.is_file():
        return {}
    data = _read_json(path, bundle)
    if not isinstance(data, dict):
        raise BundleError(f"expected a JSON object, got {type(data).__name__}", path)
    return data


def _unshare(tensors: dict[str, Any]) -> dict[str, Any]:
    """safetensors refuses tensors that share memory (tied weights): clone the repeats."""
    seen: set[int] = set()
    out = {}
    for k, t in tensors.items():
        ptr = t.data_ptr() if t.numel() else -1
        out[k] = t.clone() if ptr in seen else t
        if ptr != -1:
            seen.add(ptr)
    return out


def fit_shapes(model, state: dict[str, Any]) -> None:
    """Resize conv/BN/linear layers to the weight shapes saved (a pruned model has fewer channels)."""
    import torch
    from torch import nn

    for name, m in model.named_modules():
        w = state.get(f"{name}.weight")
        if w is None or not isinstance(m, nn.modules.conv._ConvNd | nn.modules.batchnorm._BatchNorm
                                       | nn.Linear) or m.weight.shape == w.shape:
            continue
        for key in ("weight", "bias"):
            if getattr(m, key, None) is not None and f"{name}.{key}" in state:
                setattr(m, key, nn.Parameter(torch.empty_like(state[f"{name}.{key}"])))
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.num_features = w.shape[0]
            m.running_mean, m.running_var = torch.zeros(w.shape[0]), torch.ones(w.shape[0])
        elif isinstance(m, nn.Linear):
            m.out_features, m.in_features = w.shape
        else:
            m.out_channels, m.in_channels = w.shape[0], w.shape[1] * m.groups
