"""A tiny model registry in timm's style: `@register_model`, `create`, `list_models`.

A builder is a plain function `name(num_classes, num_frames=..., **kwargs) -> VideoModel`,
registered at import time under its function name, so the name a user types reaches the
`nn.Module` that runs in one jump.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidlab.errors import ModelError

_REGISTRY: dict[str, ModelEntry] = {}
_HELPERS = {"base", "registry", "weights", "layers", "export", "flops", "tuning", "hf", "lora",
            "blocks"}
"""Modules of `vidlab.models` that register no model (not imported by `list_models`)."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    builder: Callable[..., Any]
    num_frames: int
    size: int
    description: str = ""
    preprocess: dict[str, Any] | None = None
    """Input the model's weights expect (`num_frames`, `crop_size`, `short_side`, `mean`, `std`):
    set for checkpoints that carry their own preprocessing (`hf:PATH`)."""


def register_model(family: str, num_frames: int, size: int, description: str = ""):
    """Register a builder under its function name with its default input (`num_frames`×`size`²)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"model {fn.__name__} registered twice")
        _REGISTRY[fn.__name__] = ModelEntry(fn.__name__, family, fn, num_frames, size,
                                            description or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a glob pattern, sorted."""
    _import_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_entry(name: str) -> ModelEntry:
    """The registry entry of `name`; `hf:PATH` gets one read from the checkpoint directory."""
    if name.startswith("hf:"):
        from vidlab.models.hf import checkpoint_input, create_hf

        pre = checkpoint_input(name)
        return ModelEntry(name, "hf", create_hf, pre["num_frames"], pre["crop_size"],
                          "Hugging Face video classifier", preprocess=pre)
    _import_families()
    if name not in _REGISTRY:
        close = [n for n in _REGISTRY if name.split("_")[0] in n][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}{hint} (see `vidlab models`)")
    return _REGISTRY[name]


def create(name: str, num_classes: int, num_frames: int | None = None,
           weights: str | Path | None = None, **kwargs: Any):
    """Build a registered model; `weights` is a local state-dict file (.pth/.pt/.safetensors).

    With `weights`, the file is loaded safely (`weights_only=True` / safetensors). A checkpoint
    whose classifier head has another number of classes loads everything but the head, which
    stays freshly initialised: fine-tuning on a new label set replaces only the head.
    """
    if name.startswith("hf:"):  # built from its checkpoint (or a bundle's `hf_config`)
        from vidlab.models.hf import create_hf

        entry, builder = None, functools.partial(create_hf, name)
    else:
        entry = model_entry(name)
        builder = entry.builder
    try:
        model = builder(num_classes=num_classes,
                        num_frames=num_frames or (entry.num_frames if entry else None), **kwargs)
    except TypeError as exc:
        raise ModelError(f"bad arguments for model {name!r}: {exc}") from exc
    if weights is not None:
        from vidlab.models.weights import load_pretrained

        load_pretrained(model, weights)
    return model


def _import_families() -> None:
    """Import every module of `vidlab.models` so their `@register_model` builders run."""
    import importlib
    import pkgutil

    import vidlab.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in _HELPERS:
            importlib.import_module(f"vidlab.models.{info.name}")
