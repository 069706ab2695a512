"""Shared test inputs for the model zoo: the smallest clip each model is exercised with."""

from __future__ import annotations

import torch

from vidlab.models import list_models, model_entry

TEMPORAL = ("r2plus1d", "x3d", "tsm", "lrcn", "timesformer")
"""Name prefixes of the families whose output must depend on frame order."""

_SMALL = {"x3d_xs": (4, 64), "x3d_s": (4, 64)}


def small_input_shape(name: str) -> tuple[int, int]:
    """(frames, size) for tests: tiny models at 8×32², full-size ones at 8×64² where valid."""
    if name in _SMALL:
        return _SMALL[name]
    if name.endswith("_tiny"):
        return 8, (64 if name.startswith("timesformer") else 32)
    return 8, 64


def clip(name: str, batch: int = 2, seed: int = 0) -> torch.Tensor:
    frames, size = small_input_shape(name)
    gen = torch.Generator().manual_seed(seed)
    channels = 3
    return torch.randn(batch, channels, frames, size, size, generator=gen)


def all_models() -> list[str]:
    return list_models()


def is_tiny(name: str) -> bool:
    return name.endswith("_tiny") or model_entry(name).size <= 64
