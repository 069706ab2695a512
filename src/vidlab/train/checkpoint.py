"""Training checkpoints: atomic writes, safe loads, and the RNG state that makes resume exact.

A checkpoint is written to a temporary sibling and renamed over the old one, so a kill at any
moment (even `kill -9` mid-write) leaves either the previous complete checkpoint or the new one.
Loading uses `torch.load(weights_only=True)`: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidlab.errors import CheckpointError


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write `state` (tensors, numbers, strings, lists, dicts) to `path`."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` without unpickling arbitrary objects."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError("no checkpoint to resume from", p)
    from vidlab.models.weights import load_torch_data

    try:
        state = load_torch_data(p)
    except ValueError as exc:
        raise CheckpointError(f"not a vidlab checkpoint: {exc}", p) from exc
    if not isinstance(state, dict):
        raise CheckpointError("not a vidlab checkpoint (expected a dict of training state)", p)
    return state


def capture_rng_state() -> dict[str, Any]:
    """Every global RNG a training step touches, as checkpoint-safe tensors and lists."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": _python_state_to_list(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the RNG state captured by `capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _python_state_to_list(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]
