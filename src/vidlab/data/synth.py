"""The built-in dataset: real H.264 clips of moving shapes whose class only motion reveals.

Eight classes — `move_left/right/up/down`, `rotate_cw/ccw`, `grow`, `shrink` — in four pairs
that no single frame can tell apart: shapes, colours, orientations, sizes and backgrounds have
the same distribution in every class, and the two classes of a pair (left/right, up/down,
cw/ccw, grow/shrink) also share their positions; only how the picture changes over time
differs. Objects stay where a centre crop sees them: movers sweep the whole frame along their
axis and wrap around (leaving on one side, re-entering on the other), the others stay in the
central square. Growth is exponential over the whole clip (no resets). So motion is fast and
clearly visible in any 16-frame window, however long the clip.
Every clip is generated from its own seed (`seed`, class, index), so the output is identical for
a seed whatever the number of worker processes.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.data.parallel import parallel_map
from vidlab.errors import OutputExistsError

log = logging.getLogger(__name__)

LABELS = ("grow", "move_down", "move_left", "move_right", "move_up", "rotate_ccw", "rotate_cw",
          "shrink")
FLIP_MAP = {"move_left": "move_right", "move_right": "move_left", "rotate_cw": "rotate_ccw",
            "rotate_ccw": "rotate_cw", "move_up": "move_up", "move_down": "move_down",
            "grow": "grow", "shrink": "shrink"}
"""Horizontal flip: left↔right and clockwise↔counter-clockwise swap; the others are unchanged."""
DATASET_FILE = "dataset.json"
FPS_CHOICES = (15, 20, 24, 25, 30)
ASPECTS = (1.0, 4 / 3, 16 / 9)


def synth(out: str | Path, per_class: int = 40, seed: int = 0, workers: int | None = None,
          overwrite: bool = False, progress: bool = False) -> Path:
    """Write `out/<label>/<label>_NNNN.mp4` for the 8 motion classes plus `out/dataset.json`.

    Raises `OutputExistsError` when `out` exists and is not empty, unless `overwrite` (which only
    replaces files of the same names; nothing else in `out` is touched).
    """
    root = Path(out)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise OutputExistsError("exists and is not empty (pass --overwrite)", root)
    if per_class < 1:
        raise ValueError("per_class must be at least 1")
    jobs = [(root / label / f"{label}_{i:04d}.mp4", label, seed, i)
            for label in LABELS for i in range(per_class)]
    for label in LABELS:
        (root / label).mkdir(parents=True, exist_ok=True)
    results = parallel_map(_make_clip, jobs, workers, progress, desc="synth")
    info = {
        "name": "vidlab-synth-motion", "version": 1, "seed": seed, "per_class": per_class,
        "num_clips": len(results), "labels": list(LABELS), "flip_map": dict(FLIP_MAP),
        "direction_sensitive": True,
        "description": "moving shapes; the class is the motion (direction, rotation sense, "
                       "growth), not the appearance of any single frame",
    }
    (root / DATASET_FILE).write_text(json.dumps(info, indent=2) + "\n")
    log.info("synth: wrote %d clips to %s", len(results), root)
    return root


def _make_clip(job: tuple[Path, str, int, int]) -> dict[str, Any]:
    path, label, seed, index = job
    rng = np.random.default_rng([seed, LABELS.index(label), index])
    frames, fps = render_clip(label, rng)
    _encode(path, frames, fps)
    return {"path": str(path), "label": label, "num_frames": len(frames), "fps": fps}


def render_clip(label: str, rng: np.random.Generator,
                num_frames: int | None = None) -> tuple[np.ndarray, int]:
    """`uint8 T×H×W×3` frames of one clip of class `label`, and its frame rate (`num_frames`
    overrides the drawn length, e.g. for short test clips)."""
    if label not in LABELS:
        raise ValueError(f"unknown synth label {label!r}")
    short = int(rng.integers(48, 65)) * 2  # 96–128 px, even for yuv420p
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    long = int(round(short * aspect / 2)) * 2
    h, w = (short, long) if rng.random() < 0.8 else (long, short)
    fps = int(FPS_CHOICES[rng.integers(len(FPS_CHOICES))])
    n = max(34, int(round(rng.uniform(2.2, 4.0) * fps)))
    n = n if num_frames is None else num_frames
    background = _background(h, w, rng)
    shape = SHAPES[rng.integers(len(SHAPES))]
    colour = _contrasting_colour(background, rng)
    noise = rng.uniform(1.5, 5.0)

    # Motion parameters in frame units per second; every class shares the same appearance draws.
    # Keep each object where a centre crop sees it: its track crosses the central square (the
    # area a short-side resize + centre crop keeps); movers range over the whole frame along
    # their axis (they wrap around), everything else stays inside the square.
    short = min(h, w)
    sx = (w - short) / 2 + short * rng.uniform(0.2, 0.8)
    sy = (h - short) / 2 + short * rng.uniform(0.2, 0.8)
    along_x, along_y = rng.uniform(0, w), rng.uniform(0, h)
    cx = along_x if label in ("move_left", "move_right") else sx
    cy = along_y if label in ("move_up", "move_down") else sy
    angle0 = rng.uniform(0, 2 * math.pi)
    radius = rng.uniform(0.15, 0.30) * min(h, w)
    drift = rng.uniform(-0.03, 0.03, size=2) * short
    spin = math.radians(rng.uniform(-25, 25))
    duration = n / fps
    # Speeds are per second and large enough that every sampled frame of a training clip moves
    # visibly (at 30 fps and stride 2 a mover travels ~3-5 % of the short side per frame).
    speed = rng.uniform(0.5, 0.8) * short
    vx, vy = drift
    if label == "move_left":
        vx = -speed
    elif label == "move_right":
        vx = speed
    elif label == "move_up":
        vy = -speed
    elif label == "move_down":
        vy = speed
    elif label in ("rotate_cw", "rotate_ccw"):
        # Image y points down, so a growing angle turns clockwise on screen. At most 240°/s:
        # under half the 72° symmetry of the star per frame even at 15 fps and stride 2.
        spin = math.radians(rng.uniform(150, 240)) * (1 if label == "rotate_cw" else -1)
    # grow/shrink: exponential across the whole clip (no resets to flip the apparent motion);
    # both run through the same sizes, so a single frame's size says nothing about the class.
    r_small, r_big = 0.07 * short, 0.40 * short

    frames = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        s = t / fps
        r = radius
        if label in ("grow", "shrink"):
            frac = s / duration if label == "grow" else 1.0 - s / duration
            r = r_small * (r_big / r_small) ** frac
        x, y = (cx + vx * s) % w, (cy + vy * s) % h
        img = background.copy()
        pts = shape * r
        c, si = math.cos(angle0 + spin * s), math.sin(angle0 + spin * s)
        # elementwise, not `@`: BLAS may round differently with the process's thread count,
        # and the same seed must give the same bytes whatever the number of workers
        pts = np.stack([pts[:, 0] * c - pts[:, 1] * si, pts[:, 0] * si + pts[:, 1] * c], 1)
        for ox in (-w, 0, w):  # draw wrapped copies so objects cross the border seamlessly
            for oy in (-h, 0, h):
                _fill_polygon(img, pts + (x + ox, y + oy), colour)
        jitter = rng.normal(0.0, noise, size=(h, w, 1)).astype(np.float32)
        frames[t] = np.clip(img + jitter, 0, 255).astype(np.uint8)
    return frames, fps


def _unit_polygon(kind: str) -> np.ndarray:
    if kind == "triangle":
        return np.array([(0.0, -1.0), (0.8, 0.7), (-0.8, 0.7)])
    if kind == "rectangle":
        return np.array([(-1.0, -0.5), (1.0, -0.5), (1.0, 0.5), (-1.0, 0.5)])
    if kind == "ellipse":
        a = np.linspace(0, 2 * math.pi, 28, endpoint=False)
        return np.stack([np.cos(a), 0.55 * np.sin(a)], 1)
    if kind == "star":
        a = np.linspace(0, 2 * math.pi, 10, endpoint=False)
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([rad * np.cos(a), rad * np.sin(a)], 1)
    if kind == "ell":
        return np.array([(-0.8, -1.0), (-0.2, -1.0), (-0.2, 0.4), (0.8, 0.4), (0.8, 1.0),
                         (-0.8, 1.0)])
    if kind == "cross":
        a, b = 0.3, 1.0
        return np.array([(-a, -b), (a, -b), (a, -a), (0.7, -a), (0.7, a), (a, a), (a, b),
                         (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)])
    raise ValueError(kind)


SHAPES = tuple(_unit_polygon(k) for k in ("triangle", "rectangle", "ellipse", "star", "ell",
                                           "cross"))


def _fill_polygon(img: np.ndarray, pts: np.ndarray, colour: np.ndarray) -> None:
    """Paint polygon `pts` (x, y) into `img` with 2×2 supersampled coverage (even-odd rule)."""
    h, w = img.shape[:2]
    x0, y0 = max(0, int(pts[:, 0].min())), max(0, int(pts[:, 1].min()))
    x1, y1 = min(w, int(pts[:, 0].max()) + 2), min(h, int(pts[:, 1].max()) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    sub = np.array([0.25, 0.75])
    ys = (np.arange(y0, y1)[:, None] + sub[None, :]).reshape(-1)[:, None]
    xs = (np.arange(x0, x1)[:, None] + sub[None, :]).reshape(-1)[None, :]
    inside = np.zeros((ys.shape[0], xs.shape[1]), bool)
    for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        if ay == by:
            continue
        crosses = (ay > ys) != (by > ys)
        xcross = ax + (ys - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (xs < xcross)
    cover = inside.reshape(y1 - y0, 2, x1 - x0, 2).mean(axis=(1, 3))[..., None]
    region = img[y0:y1, x0:x1]
    region += cover * (colour - region)


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A static textured background: colour gradient, a sinusoidal texture and soft blobs."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(20, 235, size=(2, 3))
    theta = rng.uniform(0, 2 * math.pi)
    g = (xx * math.cos(theta) + yy * math.sin(theta)) / max(h, w)
    g = (g - g.min()) / max(1e-6, g.max() - g.min())
    img = c0 + (c1 - c0) * g[..., None]
    freq = rng.uniform(0.05, 0.35)
    phi = rng.uniform(0, 2 * math.pi)
    tex = np.sin(freq * (xx * math.cos(phi) + yy * math.sin(phi)) + rng.uniform(0, 6))
    img += rng.uniform(4, 20) * tex[..., None]
    for _ in range(int(rng.integers(0, 5))):
        bx, by, br = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.2) * max(h, w)
        blob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * br * br))
        img += rng.uniform(-40, 40, size=3) * blob[..., None]
    return np.clip(img, 0, 255).astype(np.float32)


def _contrasting_colour(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    luma = float((background @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
    for _ in range(100):
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        if abs(float(colour @ np.array([0.299, 0.587, 0.114])) - luma) > 70:
            return colour
    return np.full(3, 0.0 if luma > 128 else 255.0, np.float32)


def _encode(path: Path, frames: np.ndarray, fps: int) -> None:
    from vidlab.io import write_video

    # One encoder thread: clips are made in parallel processes, and x264 output then does not
    # depend on thread scheduling.
    write_video(path, frames, fps, codec="h264", crf=20, preset="veryfast",
                options={"threads": "1"}, overwrite=True)
