"""The schema of a bundle's `config.json`, checked whenever a bundle is loaded.

A classifier bundle is run by code that trusts its fields (label lists indexed by class,
preprocessing that sizes every tensor), so each field is checked for type, range and
consistency with the others before anything runs; enhancement and generator bundles get the
common checks and are checked further by their own loaders. Every failure is one
`BundleError` naming `config.json` and the field: `x.vidlab/config.json: labels: 4 names but
model.num_classes is 3`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidlab.errors import BundleError

MAX_CLIP_VALUES = 3 * 64 * 512 * 512
"""Largest clip (floats) a bundle may ask for: 64 frames at 512×512. Beyond it a config is taken
as broken rather than a model: the server holds `queue_size × max_clips` such clips."""

_Size = Annotated[int, Field(ge=8, le=2048)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class _ModelSpec(_Strict):
    name: Annotated[str, Field(min_length=1)]
    num_classes: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)


class _PreprocessSpec(_Strict):
    """`data.transforms.Preprocess` as stored; absent fields take its defaults."""

    num_frames: Annotated[int, Field(ge=1, le=512)] | None = None
    stride: Annotated[int, Field(ge=1, le=1000)] | None = None
    short_side: _Size | None = None
    crop_size: _Size | None = None
    mean: Annotated[list[float], Field(min_length=3, max_length=3)] | None = None
    std: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=3, max_length=3)] | None = None
    target_fps: Annotated[float, Field(gt=0, le=1000)] | None = None
    short_video: Literal["loop", "pad"] | None = None
    sampling: str | None = None  # its words (and older spellings) are `Preprocess`'s to check


class _Common(_Strict):
    format: int
    task: str = "classify"
    labels: list[str] = Field(default_factory=list)


class _Classifier(_Common):
    """What a classifier's fields must be when present (any bundle that loads)."""

    model: _ModelSpec | None = None
    preprocess: _PreprocessSpec = Field(default_factory=_PreprocessSpec)


class _RunnableClassifier(_Classifier):
    """What a classifier needs to be run (`Predictor`): a model and its labels."""

    model: _ModelSpec
    labels: Annotated[list[str], Field(min_length=1)]


def check_config(config: Any, path: Path, newest_format: int, runnable: bool = False) -> None:
    """Raise `BundleError` (naming `path`, the config file, and the field) unless `config` is a
    bundle config this vidlab reads; with `runnable`, one of a classifier it can run."""
    if not isinstance(config, dict):
        raise BundleError(f"expected a JSON object, got {_kind(config)}", path)
    schema: type[_Common] = _Common
    if runnable:
        if config.get("task", "classify") != "classify":
            raise BundleError(f"task: {config.get('task')!r} is not a classifier", path)
        schema = _RunnableClassifier
    elif config.get("task", "classify") == "classify":
        schema = _Classifier
    try:
        parsed = schema.model_validate(config)
    except ValidationError as exc:
        raise BundleError(_one_line(exc), path) from None
    if parsed.format < 1:
        raise BundleError(f"format: {parsed.format} is not a bundle format (1 or more)", path)
    if parsed.format > newest_format:
        raise BundleError(f"format: {parsed.format} is newer than this vidlab "
                          f"({newest_format}); upgrade vidlab", path)
    if isinstance(parsed, _Classifier):
        _check_classifier(parsed, path)


def _check_classifier(cfg: _Classifier, path: Path) -> None:
    labels = cfg.labels
    classes = cfg.model.num_classes if cfg.model is not None else None
    if classes is not None and labels and len(labels) != classes:
        raise BundleError(f"labels: {len(labels)} names but model.num_classes is {classes}", path)
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise BundleError(f"labels: repeated names {repeated[:3]}", path)
    for name in ("mean", "std"):
        values = getattr(cfg.preprocess, name)
        if values is not None and not all(math.isfinite(v) for v in values):
            raise BundleError(f"preprocess.{name}: {list(values)} is not three finite numbers", path)


def check_preprocess(pre: Any, path: Path) -> None:
    """The checks that need `Preprocess`'s defaults for absent fields (called where it is built,
    so that loading a bundle does not import torch)."""
    if pre.crop_size > pre.short_side:
        raise BundleError(f"preprocess.crop_size: {pre.crop_size} is larger than "
                          f"preprocess.short_side {pre.short_side} (the centre crop would come "
                          "out smaller)", path)
    if 3 * pre.num_frames * pre.crop_size ** 2 > MAX_CLIP_VALUES:
        raise BundleError(f"preprocess: {pre.num_frames} frames of {pre.crop_size}×"
                          f"{pre.crop_size} make a clip larger than the 64 frames of 512×512 a "
                          "bundle may ask for", path)


def _one_line(exc: ValidationError) -> str:
    """Pydantic's first error as `field.path: what is wrong (got VALUE)`."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "(top level)"
    got = repr(err.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{where}: {err.get('msg', 'invalid')} (got {got})"


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number",
            type(None): "null", bool: "true/false"}.get(type(value), type(value).__name__)
