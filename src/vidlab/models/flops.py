"""FLOP counts and model cards: what `vidlab models` lists.

FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` on the `meta` device, so a
121 M-parameter transformer is counted in milliseconds without allocating or computing
anything; models whose ops have no meta kernel fall back to a real CPU forward pass.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

CARD_NUM_CLASSES = 400
"""Model cards describe the Kinetics-400 head (parameters include it)."""


def count_gflops(model: nn.Module, num_frames: int, size: int) -> float:
    """GFLOPs of one forward pass of one clip `1×C×num_frames×size×size` (a multiply-add = 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    spec = getattr(model, "input_spec", None)
    channels = int(spec().get("channels", 3)) if callable(spec) else 3
    x = torch.zeros(1, channels, num_frames, size, size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e9


@functools.cache
def model_card(name: str) -> dict[str, Any]:
    """name, family, params, gflops, num_frames, size (+ description) of a registered model.

    Counted at the model's default input with a 400-class head; cached per process.
    """
    from vidlab.models.registry import create, model_entry

    entry = model_entry(name)
    try:
        with torch.device("meta"):
            model = create(name, num_classes=CARD_NUM_CLASSES)
        gflops = count_gflops(model, entry.num_frames, entry.size)
    except (NotImplementedError, RuntimeError) as exc:  # an op without a meta kernel
        log.debug("meta FLOP count failed for %s (%s); counting on CPU", name, exc)
        model = create(name, num_classes=CARD_NUM_CLASSES)
        gflops = count_gflops(model, entry.num_frames, entry.size)
    params = sum(p.numel() for p in model.parameters())
    return {"name": name, "family": entry.family, "params": params,
            "gflops": round(gflops, 4), "num_frames": entry.num_frames, "size": entry.size,
            "description": entry.description}


def model_cards(pattern: str = "*") -> list[dict[str, Any]]:
    """Cards of every registered model matching `pattern`."""
    from vidlab.models.registry import list_models

    return [dict(model_card(n)) for n in list_models(pattern)]
