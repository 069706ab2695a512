"""`DataConfig`: every data setting of a training run (embedded as `config.data` by training)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from vidlab.data.transforms import KINETICS_MEAN, KINETICS_STD, Preprocess, sampling_word

log = logging.getLogger(__name__)

DATASET_FILE = "dataset.json"
_DIRECTION_WORDS = re.compile(r"(^|[^a-z])(left|right|clockwise|counterclockwise|anticlockwise|"
                              r"cw|ccw)([^a-z]|$)", re.IGNORECASE)


class DataConfig(BaseModel):
    """Clip sampling, augmentation, loading and evaluation views.

    Flip safety: horizontal flip turns "move left" into "move right". With `direction_sensitive`
    true, a clip is flipped only if its label is in `flip_map` (and its target becomes the mapped
    label); without a map, flip is off. `direction_sensitive: null` means "decide from the data":
    a `dataset.json` next to the class folders wins (the built-in dataset ships one), else labels
    naming a direction (left/right/cw/ccw/clockwise) make it true.
    """

    # what a clip is
    num_frames: int = Field(16, ge=1)
    stride: int = Field(2, ge=1)
    target_fps: float | None = Field(None, gt=0)
    short_side: int = Field(128, ge=8)
    crop_size: int = Field(112, ge=8)
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    short_video: Literal["loop", "pad"] = "loop"
    # which frames make a clip (`transforms.SAMPLING`, the word the bundle's `Preprocess` keeps):
    # "clips" = contiguous clips (a random start in training, evenly spread views in
    # evaluation); "segments" = TSN, one frame per equal segment (num_frames segments) of the
    # whole video, at one random offset (shared by every segment) in training. "random" (the word
    # older configs used for "clips") is still accepted.
    sampling: Literal["clips", "segments"] = "clips"
    temporal_jitter: bool = True
    # augmentation (train only; every frame of a clip gets the same draw). Mild by default, as in
    # MMAction2's/PySlowFast's 3D-CNN recipes (crop + flip, no colour jitter): on the built-in
    # dataset, scale (0.5, 1) with colour jitter p 0.8 kept a tiny R(2+1)D at chance ~2x longer
    # than scale (0.8, 1) without jitter (docs/train.md).
    scale: tuple[float, float] = (0.8, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = Field(0.5, ge=0, le=1)
    flip_map: dict[str, str] | None = None
    direction_sensitive: bool | None = None
    # upside-down flip and time reversal: only for the classes their map names (each mapped to
    # the class the changed clip becomes); off by default, see the recipe's rules
    vflip: float = Field(0.0, ge=0, le=1)
    vflip_map: dict[str, str] | None = None
    time_reverse: float = Field(0.0, ge=0, le=1)
    reverse_map: dict[str, str] | None = None
    brightness: float = Field(0.2, ge=0)
    contrast: float = Field(0.2, ge=0)
    saturation: float = Field(0.2, ge=0)
    color_jitter_p: float = Field(0.0, ge=0, le=1)
    random_erasing: float = Field(0.0, ge=0, le=1)
    mixup_alpha: float = Field(0.0, ge=0)
    cutmix_alpha: float = Field(0.0, ge=0)
    # loading
    num_workers: int = Field(2, ge=0)
    cache: bool | str = False
    cache_mb: int = Field(2048, ge=0)
    max_retries: int = Field(10, ge=1)
    shuffle_buffer: int = Field(1000, ge=1)
    """Samples held for shuffling when training streams from shards (per DataLoader worker)."""
    # evaluation views: (temporal clips, spatial crops)
    val_views: tuple[int, int] = (1, 1)
    test_views: tuple[int, int] = (3, 1)

    @field_validator("sampling", mode="before")
    @classmethod
    def _sampling_word(cls, value: Any) -> Any:
        try:
            return sampling_word(value)
        except ValueError:
            return value  # pydantic then names the allowed words

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.crop_size > self.short_side:
            raise ValueError(f"crop_size {self.crop_size} exceeds short_side {self.short_side}")
        if not (0 < self.scale[0] <= self.scale[1] <= 1):
            raise ValueError(f"scale {self.scale} must satisfy 0 < min <= max <= 1")
        if min(self.val_views) < 1 or min(self.test_views) < 1:
            raise ValueError("views must be at least (1, 1)")
        return self

    def preprocess(self) -> Preprocess:
        """The evaluation/serving preprocessing (saved in bundles)."""
        return Preprocess(num_frames=self.num_frames, stride=self.stride,
                          short_side=self.short_side, crop_size=self.crop_size,
                          mean=tuple(self.mean), std=tuple(self.std), target_fps=self.target_fps,
                          short_video=self.short_video, sampling=self.sampling)

    def flip_targets(self, labels: list[str]) -> list[int]:
        """Per class index: the class a horizontally flipped clip belongs to, or -1 (never flip)."""
        index = {name: i for i, name in enumerate(labels)}
        if self.direction_sensitive is None:
            sensitive = any(_DIRECTION_WORDS.search(name.replace("_", " ")) for name in labels)
        else:
            sensitive = self.direction_sensitive
        fmap = self.flip_map or {}
        unknown = sorted((set(fmap) | set(fmap.values())) - set(index))
        if unknown:
            log.warning("flip_map names labels not in the dataset: %s", ", ".join(unknown))
        if not sensitive:
            return [index.get(fmap.get(name, name), i) for i, name in enumerate(labels)]
        return [index[fmap[name]] if fmap.get(name) in index else -1 for name in labels]

    @staticmethod
    def map_targets(fmap: dict[str, str] | None, labels: list[str]) -> list[int]:
        """Per class index: the class `fmap` turns it into, or -1 (not in `fmap`: left alone).
        Without a map every class keeps its own label."""
        index = {name: i for i, name in enumerate(labels)}
        if fmap is None:
            return list(range(len(labels)))
        return [index[fmap[name]] if fmap.get(name) in index else -1 for name in labels]

    def for_dataset(self, root_or_manifest: str | Path | None) -> DataConfig:
        """A copy with `flip_map`/`direction_sensitive` filled from the dataset's `dataset.json`
        (only the fields left unset here)."""
        return self.with_dataset_info(read_dataset_info(root_or_manifest) if root_or_manifest
                                      else {})

    def for_entries(self, entries: list[dict[str, Any]]) -> DataConfig:
        """A copy with the unset flip fields filled from the `dataset.json` of the
        folder-per-class tree holding `entries` (unchanged when both are set)."""
        if self.flip_map is not None and self.direction_sensitive is not None:
            return self
        return self.with_dataset_info(find_dataset_info([e["path"] for e in entries]))

    def with_dataset_info(self, info: dict[str, Any]) -> DataConfig:
        """A copy with the unset flip fields taken from a parsed `dataset.json`."""
        update: dict[str, Any] = {}
        if self.flip_map is None and isinstance(info.get("flip_map"), dict):
            update["flip_map"] = {str(k): str(v) for k, v in info["flip_map"].items()}
        if self.direction_sensitive is None and "direction_sensitive" in info:
            update["direction_sensitive"] = bool(info["direction_sensitive"])
        return self.model_copy(update=update) if update else self


def read_dataset_info(root_or_manifest: str | Path) -> dict[str, Any]:
    """The `dataset.json` of a dataset folder (or of a manifest's folder); `{}` when none."""
    p = Path(root_or_manifest)
    candidates = [p / DATASET_FILE] if p.is_dir() else [p.parent / DATASET_FILE]
    for c in candidates:
        if c.is_file():
            try:
                data = json.loads(c.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                log.warning("%s: ignored, not valid JSON (%s)", c, exc)
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def find_dataset_info(paths: list[str]) -> dict[str, Any]:
    """`dataset.json` of the folder-per-class tree holding these files (`root/<label>/<file>`)."""
    roots = {str(Path(p).parent.parent) for p in paths[:1000]}
    if len(roots) != 1:
        return {}
    return read_dataset_info(Path(roots.pop()))
