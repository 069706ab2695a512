"""Load a local state dict into a model safely: safetensors or `torch.load(weights_only=True)`.

Never unpickles arbitrary objects. Everything must fit exactly (`strict`), except a classifier
head whose shape differs from the model's: that is the fine-tuning case (a Kinetics-400
checkpoint into an 8-class model), where the fresh head is kept and the swap is logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidlab.errors import ModelError

log = logging.getLogger(__name__)

_WRAPPERS = ("state_dict", "model", "model_state", "module")


def load_torch_data(path: str | Path) -> Any:
    """`torch.load` of tensors and plain containers only (`weights_only=True`): no code runs.

    Raises `ValueError` with a reason that never repeats torch's advice to load the file
    unsafely (`weights_only=False`): a file holding other pickled objects is not ours to run.
    """
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError("it holds pickled Python objects besides tensors and plain data, "
                         "which vidlab never loads (nothing in the file was run)") from exc
    except Exception as exc:  # RuntimeError and others for junk or truncated files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in first or "trust" in first:
            first = type(exc).__name__
        raise ValueError(f"not a readable PyTorch file ({first})") from exc


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read tensors from `.safetensors` or `.pth`/`.pt`/`.bin` (unwrapping `{"state_dict": …}`)."""
    state = _read(Path(path))
    # DDP / DataParallel checkpoints prefix every key with "module.".
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _read(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError("weights file not found", path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise ModelError(f"unreadable safetensors file ({exc})", path) from exc
        if not obj:
            raise ModelError("holds no tensors", path)
        return obj
    try:
        obj = load_torch_data(path)
    except ValueError as exc:
        raise ModelError(f"not a plain tensor state dict: {exc}", path) from exc
    while isinstance(obj, dict) and not _is_tensor_dict(obj):
        key = next((k for k in _WRAPPERS if k in obj and isinstance(obj[k], dict)), None)
        if key is None:
            break
        obj = obj[key]
    if not _is_tensor_dict(obj):
        raise ModelError("does not hold a state dict of tensors", path)
    return obj


def _is_tensor_dict(obj: object) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _classifier_prefix(model: nn.Module) -> str | None:
    get = getattr(model, "get_classifier", None)
    if get is None:
        return None
    head = get()
    return next((name for name, m in model.named_modules() if m is head), None)


def load_pretrained(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights from `path` into `model` in place (strict except a differently-sized head).

    Raises `ModelError` naming the file and the first mismatching keys when the file does not
    fit the architecture.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    head = _classifier_prefix(model)
    if head is not None:
        head_keys = [k for k in own if k.startswith(head + ".")]
        differs = [k for k in head_keys if k in state and state[k].shape != own[k].shape]
        if differs:
            old = state[f"{head}.weight"].shape[0] if f"{head}.weight" in state else "?"
            log.info("%s: classifier %s has %s classes, model has %s; keeping the new head",
                     path, head, old, own[f"{head}.weight"].shape[0])
            state = {k: v for k, v in state.items() if k not in head_keys}
            state.update({k: own[k] for k in head_keys})
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{label} {items[:3]}{' …' if len(items) > 3 else ''}"
                 for label, items in (("missing", missing), ("unexpected", unexpected),
                                      ("shape mismatch", wrong)) if items]
        name = type(model).__name__
        raise ModelError(f"weights do not fit {name}: " + "; ".join(parts), path)
    model.load_state_dict(state, strict=True)
    return model
