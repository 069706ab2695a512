"""A trained model in seconds, for testing retrieval quality on what a model actually learned.

The classes are camera pans: a random blocky texture (its colours, contrast and cells new in
every segment) slides left, right, up or down. No single frame tells them apart — only the
motion does — so neither a colour rule nor a random network solves them, yet a tiny 3D CNN
learns them in 60-120 SGD steps (120 here: at 60, seed 0 reached only 83 % on one CPU).
`train_pan_bundle` renders its own training clips (seeded,
never the test videos), trains `r3d_tiny` at widths 8-16-32-32 on 8×24×24 clips, re-estimates
BatchNorm statistics, and saves a real bundle (weights, labels, preprocessing, the accuracy on
fresh held-out clips). Deterministic: one thread, fixed seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidlab.bundle import save_bundle
from vidlab.data.transforms import Preprocess
from vidlab.io import write_video

PANS = {"pan_left": (0, -1), "pan_right": (0, 1), "pan_up": (-1, 0), "pan_down": (1, 0)}
"""Label → (dy, dx) of the picture's motion; the order is the label index."""
LABELS = list(PANS)
SIZE = (48, 64)
CELL, SPEED = 8, 3
"""Texture cells of 8 px moving 3 px a frame (1.5 px at the model's 24 px input)."""
PREPROCESS = Preprocess(num_frames=8, stride=1, short_side=24, crop_size=24)
MODEL = {"name": "r3d_tiny", "num_classes": len(LABELS),
         "kwargs": {"num_frames": 8, "widths": [8, 16, 32, 32]}}


def pan_frames(label: str, num_frames: int, rng: np.random.Generator,
               size: tuple[int, int] = SIZE) -> np.ndarray:
    """`uint8 T×H×W×3`: a new random texture panning in direction `label`."""
    dy, dx = PANS[label]
    h, w = size
    cells = rng.random((-(-h // CELL), -(-w // CELL)))
    texture = np.kron(cells, np.ones((CELL, CELL)))[:h, :w, None]
    lo, hi = rng.integers(0, 100, 3), rng.integers(150, 256, 3)
    texture = (lo + texture * (hi - lo)).astype(np.uint8)
    oy, ox = rng.integers(0, max(h, w), 2)
    return np.stack([np.roll(texture, (int(oy + dy * SPEED * t), int(ox + dx * SPEED * t)), (0, 1))
                     for t in range(num_frames)])


def pan_video(path: Path, labels: list[str], seconds_each: float, fps: int = 10,
              seed: int = 0) -> Path:
    """A real H.264 video of `seconds_each` of each pan in turn (a new texture per segment)."""
    rng = np.random.default_rng([7, seed])
    per = int(round(seconds_each * fps))
    frames = np.concatenate([pan_frames(label, per, rng) for label in labels])
    return write_video(path, frames, fps=fps, overwrite=True)


def _clips(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng([11, seed])
    xs, ys = [], []
    for _ in range(per_class):
        for index, label in enumerate(LABELS):
            xs.append(PREPROCESS(pan_frames(label, PREPROCESS.num_frames, rng)))
            ys.append(index)
    return torch.stack(xs), torch.tensor(ys)


def _augment(x: torch.Tensor, y: torch.Tensor, g: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetries of the task with their label maps (labels: left 0, right 1, up 2, down 3):
    time reversal turns every pan around, a horizontal flip swaps left/right, a vertical one
    up/down, a transpose left↔up and right↔down."""
    x, y = x.clone(), y.clone()

    def pick() -> torch.Tensor:
        return torch.rand(len(x), generator=g) < 0.5

    m = pick()
    x[m], y[m] = x[m].flip(2), y[m] ^ 1
    m = pick()
    x[m], y[m] = x[m].flip(4), torch.where(y[m] < 2, y[m] ^ 1, y[m])
    m = pick()
    x[m], y[m] = x[m].flip(3), torch.where(y[m] >= 2, y[m] ^ 1, y[m])
    m = pick()
    x[m], y[m] = x[m].transpose(3, 4), y[m] ^ 2
    return x, y


def train_pan_model(steps: int = 120, batch: int = 32, seed: int = 0) -> tuple[torch.nn.Module, float]:
    """`(model in eval mode, accuracy on 64 fresh held-out clips)`."""
    from vidlab.models import create

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = create(MODEL["name"], num_classes=MODEL["num_classes"], **MODEL["kwargs"])
        x, y = _clips(48, seed)
        opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=steps,
                                                       pct_start=0.2)
        g = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch,), generator=g)
            xb, yb = _augment(x[idx], y[idx], g)
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        # BatchNorm's running averages lag weights that moved fast: re-estimate them once
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # a plain average over the pass
        with torch.no_grad():
            for i in range(0, len(x), 64):
                model(x[i:i + 64])
        model.eval()
        held_x, held_y = _clips(16, seed + 1000)
        with torch.inference_mode():
            accuracy = float((model(held_x).argmax(1) == held_y).float().mean())
        return model, accuracy
    finally:
        torch.set_num_threads(threads)


def train_pan_bundle(path: Path, steps: int = 120, seed: int = 0) -> Path:
    """Train the pan model and save it as a bundle at `path` (its held-out accuracy in metrics)."""
    model, accuracy = train_pan_model(steps, seed=seed)
    save_bundle(path, config={"task": "classify", "model": MODEL, "labels": LABELS,
                              "preprocess": PREPROCESS.to_dict()},
                state_dict=model.state_dict(), metrics={"val": {"top1": accuracy}})
    return path
