"""Hugging Face video classifiers (VideoMAE, TimeSformer, ViViT, V-JEPA 2, ...) as vidlab models.

A model name `hf:PATH` names a local directory written by `save_pretrained` (`config.json`, the
weights, `preprocessor_config.json`). Whatever `transformers.AutoModelForVideoClassification`
builds from it runs behind vidlab's interface: `B×C×T×H×W` float clips in, logits out,
`forward_features`, `reset_classifier`. The checkpoint's own head becomes `head`; its input
(frames, size, mean, std) comes from the two JSON files, read as data — `transformers` 5's video
processors import torchvision, which need not be installed. Nothing is ever downloaded.

A bundle stores the HF config (`hf_config`) and the preprocessing beside the weights, so the
model is rebuilt from the bundle alone after the original directory is gone.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidlab.errors import ModelError
from vidlab.models.base import VideoModel

log = logging.getLogger(__name__)

PREFIX = "hf:"
CONFIG_FILE = "config.json"
PREPROCESSOR_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
INSTALL_HINT = "install the Hugging Face extra: pip install 'vidlab[hf]'"
# what a processor does when its preprocessor_config.json leaves a key out (transformers 5)
_DEFAULT_MEAN = _DEFAULT_STD = (0.5, 0.5, 0.5)
_RESCALE_DEFAULTS = {"VivitImageProcessor": (1 / 127.5, True)}


def is_hf_name(name: str) -> bool:
    return name.startswith(PREFIX)


def hf_path(name: str) -> Path:
    path = name[len(PREFIX):].strip()
    if not path:
        raise ModelError(f"model name {name!r} names no directory (hf:PATH)")
    return Path(path).expanduser()


def require_transformers():
    """The `transformers` module, or a `ModelError` saying how to install it."""
    try:
        import transformers
    except ImportError as exc:
        raise ModelError(f"hf: models need the `transformers` library ({exc}); {INSTALL_HINT}") \
            from None
    return transformers


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(config, preprocessor)` dicts of a `save_pretrained` directory, checking it is whole.

    Raises `ModelError` naming the directory and the first missing or unreadable file.
    """
    p = Path(path)
    if not p.is_dir():
        raise ModelError("no such checkpoint directory (hf:PATH wants a local directory written "
                         "by save_pretrained; nothing is downloaded)", p)
    config = _read_json(p / CONFIG_FILE, p)
    if not any((p / w).is_file() for w in WEIGHT_FILES):
        raise ModelError(f"no weights: expected one of {', '.join(WEIGHT_FILES)}", p)
    pre_file = next((p / f for f in PREPROCESSOR_FILES if (p / f).is_file()), None)
    if pre_file is None:
        raise ModelError(f"no {PREPROCESSOR_FILES[0]} (the checkpoint's input size and "
                         "normalization); copy it from the model's repository", p)
    return config, _read_json(pre_file, p)


def _read_json(path: Path, checkpoint: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"no {path.name}", checkpoint)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path.name} is unreadable ({exc})", checkpoint) from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path.name} is not a JSON object", checkpoint)
    return data


def input_from_config(config: dict[str, Any], preprocessor: dict[str, Any],
                      source: str | Path | None = None) -> dict[str, Any]:
    """vidlab's preprocessing (`num_frames`, `crop_size`, `short_side`, `mean`, `std`) that
    reproduces the checkpoint's processor: resize the short side, centre crop, rescale, normalize.

    HF processors compute `(x·rescale_factor − offset − mean) / std` on 0–255 pixels; vidlab
    normalizes 0–1 pixels, so the mean and std are converted to that scale.
    """
    num_frames = config.get("num_frames") or config.get("frames_per_clip")
    size = _side(preprocessor.get("crop_size")) or _side(config.get("image_size")) \
        or _side(config.get("crop_size"))
    if not num_frames or not size:
        raise ModelError("config.json gives no num_frames/image_size for this architecture "
                         f"({config.get('model_type', '?')})", source)
    short = _side(preprocessor.get("size")) or size
    default_factor, default_offset = _RESCALE_DEFAULTS.get(
        str(preprocessor.get("image_processor_type", "")), (1 / 255, False))
    factor = float(preprocessor.get("rescale_factor", default_factor)) \
        if preprocessor.get("do_rescale", True) else 1.0
    offset = 1.0 if preprocessor.get("offset", default_offset) else 0.0
    if preprocessor.get("do_normalize", True):
        mean = _triple(preprocessor.get("image_mean", _DEFAULT_MEAN))
        std = _triple(preprocessor.get("image_std", _DEFAULT_STD))
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    scale = 255.0 * factor  # a 0–1 pixel u becomes u·scale − offset before normalization
    return {"num_frames": int(num_frames), "crop_size": int(size), "short_side": int(short),
            "mean": tuple((offset + m) / scale for m in mean),
            "std": tuple(s / scale for s in std)}


def _side(value: Any) -> int | None:
    """A square side from an HF size field: 224, [224, 224], {"shortest_edge": 224}, ..."""
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, list | tuple) and value:
        return int(min(value))
    if isinstance(value, dict):
        for key in ("shortest_edge", "height", "width"):
            if value.get(key):
                return int(value[key])
    return None


def _triple(value: Any) -> tuple[float, float, float]:
    values = [float(v) for v in (value if isinstance(value, list | tuple) else [value] * 3)]
    if len(values) != 3:
        raise ModelError(f"image_mean/image_std must have 3 values, got {value!r}")
    return values[0], values[1], values[2]


@lru_cache(maxsize=32)
def _checkpoint_input(path: str, mtime: float) -> dict[str, Any]:
    config, pre = read_checkpoint(path)
    return input_from_config(config, pre, path)


def checkpoint_input(name: str) -> dict[str, Any]:
    """The preprocessing of the checkpoint `hf:PATH` names (cached per directory)."""
    p = hf_path(name)
    cfg = p / CONFIG_FILE
    return dict(_checkpoint_input(str(p), cfg.stat().st_mtime if cfg.is_file() else 0.0))


class HFVideoClassifier(VideoModel):
    """An HF `*ForVideoClassification` model behind vidlab's interface.

    The HF model's `classifier` is moved out to `head` (an `nn.Linear`) and replaced by an
    identity, so `backbone(pixel_values).logits` are the pooled features each architecture
    computes its own way (VideoMAE's mean + norm, TimeSformer's and ViViT's class token, ...).
    """

    def __init__(self, backbone: nn.Module, preprocess: dict[str, Any]):
        super().__init__()
        head = getattr(backbone, "classifier", None)
        if not isinstance(head, nn.Linear):
            raise ModelError(f"{type(backbone).__name__} has no linear `classifier` head; "
                             "vidlab supports the AutoModelForVideoClassification families")
        backbone.classifier = nn.Identity()
        self.backbone, self.head = backbone, head
        self.num_features, self.num_classes = head.in_features, head.out_features
        self.preprocess = dict(preprocess)
        self.default_num_frames = int(preprocess["num_frames"])
        self.default_size = int(preprocess["crop_size"])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # vidlab clips are B×C×T×H×W; HF video models take pixel_values B×T×C×H×W
        return self.backbone(pixel_values=x.transpose(1, 2)).logits

    def rebuild_kwargs(self) -> dict[str, Any]:
        """What `create` needs to rebuild this model without the checkpoint directory."""
        config = json.loads(self.backbone.config.to_json_string(use_diff=False))
        config.pop("id2label", None), config.pop("label2id", None)
        return {"hf_config": config, "preprocess": {k: list(v) if isinstance(v, tuple) else v
                                                    for k, v in self.preprocess.items()}}

    def blocks(self) -> nn.ModuleList:
        """The transformer blocks, in order (layer-wise LR decay, freezing, FSDP units)."""
        lists = [m for m in self.backbone.modules() if isinstance(m, nn.ModuleList)]
        if not lists:
            raise ModelError(f"{type(self.backbone).__name__}: no list of blocks found")
        return max(lists, key=len)


def create_hf(name: str, num_classes: int, num_frames: int | None = None,
              hf_config: dict[str, Any] | None = None, preprocess: dict[str, Any] | None = None,
              drop_rate: float | None = None, drop_path_rate: float | None = None,
              attn_implementation: str | None = None) -> HFVideoClassifier:
    """Build `hf:PATH` with `num_classes` outputs.

    From the directory (its weights loaded in fp32) unless `hf_config` is given: then the
    architecture is built from that dict with fresh weights (a bundle loads its own). A head of
    another size than the checkpoint's is replaced by a fresh one (fine-tuning on new labels).
    `drop_rate`/`drop_path_rate` set the HF config's `hidden_dropout_prob`/`drop_path_rate`;
    `attn_implementation` ("eager", "sdpa", ...) defaults to what transformers picks.
    """
    transformers = require_transformers()
    overrides: dict[str, Any] = {}
    if drop_rate is not None:
        overrides["hidden_dropout_prob"] = drop_rate
    if drop_path_rate is not None:
        overrides["drop_path_rate"] = drop_path_rate
    auto = transformers.AutoModelForVideoClassification
    attn = {"attn_implementation": attn_implementation} if attn_implementation else {}
    hf_logging = transformers.utils.logging
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # vidlab reports its own progress
    try:
        if hf_config is not None:
            cfg = transformers.AutoConfig.for_model(**hf_config)
            for key, value in overrides.items():
                if hasattr(cfg, key):
                    setattr(cfg, key, value)
            backbone = auto.from_config(cfg, dtype=torch.float32, **attn)
            pre = dict(preprocess) if preprocess else input_from_config(hf_config, {})
        else:
            path = hf_path(name)
            config, pre_json = read_checkpoint(path)
            cfg = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
            for key, value in overrides.items():
                if hasattr(cfg, key):
                    setattr(cfg, key, value)
            backbone = auto.from_pretrained(str(path), config=cfg, local_files_only=True,
                                            dtype=torch.float32, **attn)
            pre = input_from_config(config, pre_json, path)
    except ModelError:
        raise
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"transformers cannot build a video classifier from it: {first}",
                         name[len(PREFIX):]) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if num_frames is not None and int(num_frames) != int(pre["num_frames"]):
        raise ModelError(f"the checkpoint takes {pre['num_frames']} frames, not {num_frames} "
                         f"(leave data.num_frames unset to use its own)", name[len(PREFIX):])
    model = HFVideoClassifier(backbone.float(), pre)
    if model.num_classes != num_classes:
        if hf_config is None:
            log.info("%s: head has %d classes, the data %d: starting a new head",
                     name, model.num_classes, num_classes)
        model.reset_classifier(num_classes)
    return model


def checkpoint_labels(name: str) -> list[str]:
    """The class names of `hf:PATH`'s classifier (`id2label`, by index)."""
    config, _ = read_checkpoint(hf_path(name))
    id2label = config.get("id2label") or {}
    try:
        pairs = sorted((int(k), str(v)) for k, v in id2label.items())
    except (TypeError, ValueError) as exc:
        raise ModelError(f"config.json id2label is malformed ({exc})", hf_path(name)) from exc
    if not pairs or [i for i, _ in pairs] != list(range(len(pairs))):
        raise ModelError("config.json has no complete id2label (a classifier's label names)",
                         hf_path(name))
    return [label for _, label in pairs]
