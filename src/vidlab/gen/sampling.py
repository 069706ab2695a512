"""Load a generator bundle and write generated clips (a grid, or one file per sample)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidlab.errors import BundleError, ConfigError, OutputExistsError
from vidlab.gen.clips import to_uint8
from vidlab.gen.generators import build_generator
from vidlab.gen.nets import GeneratorBase


def load_generator(bundle: Any) -> GeneratorBase:
    """The EMA generator of a `task: "generate"` bundle (eval mode; `label_names` attached)."""
    from vidlab.bundle import load_bundle

    b = load_bundle(bundle) if isinstance(bundle, str | Path) else bundle
    if b.task != "generate":
        raise BundleError(f"not a generator bundle (task={b.task!r}; expected 'generate')", b.path)
    spec = b.model_spec
    try:
        g = build_generator(spec.get("generator", "mocogan"), int(spec["num_classes"]),
                            **spec.get("kwargs", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"config.json has a bad generator spec ({exc})", b.path) from exc
    try:
        g.load_state_dict(b.state_dict())
    except RuntimeError as exc:
        raise BundleError(f"weights do not fit the generator ({str(exc)[:200]})", b.path) from exc
    g.label_names = b.labels
    return g.eval()


def generate(bundle: Any, out: str | Path, label: str | None = None, n: int = 8,
             seed: int = 0, separate: bool = False, overwrite: bool = False) -> list[Path]:
    """Generate `n` clips of `label` (all labels round-robin when None) and write them.

    `out` ending in `.gif` writes GIFs, otherwise H.264 video. Without `separate`, one grid
    file; with it, `OUT_000.mp4`, `OUT_001.mp4`, … Raises `ConfigError` for an unknown label
    and `OutputExistsError` for an existing output unless `overwrite`.
    """
    from vidlab.bundle import load_bundle
    from vidlab.gen.media import make_grid, write_clip

    b = load_bundle(bundle) if isinstance(bundle, str | Path) else bundle
    g = load_generator(b)
    names = list(g.label_names)
    if label is not None and label not in names:
        raise ConfigError(f"unknown label {label!r}; this generator knows {', '.join(names)}")
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    ids = [names.index(label)] * n if label is not None else [i % len(names) for i in range(n)]
    clips = to_uint8(g.generate(torch.tensor(ids), seed=seed)).numpy()
    fps = float(b.config.get("clip", {}).get("fps") or 12.0)
    out = Path(out)
    if not separate:
        return [write_clip(out, make_grid(clips), fps, overwrite=overwrite)]
    paths = [out.with_name(f"{out.stem}_{i:03d}{out.suffix}") for i in range(n)]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(path=existing[0])
    return [write_clip(p, c, fps, overwrite=overwrite) for p, c in zip(paths, clips, strict=True)]
