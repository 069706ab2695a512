"""Procedural natural-looking clean clips for training enhancers without downloading video.

Natural images have a ~1/f^2 power spectrum, soft and hard edges, occlusions and camera motion;
the built-in moving-shapes set has flat colours and little else. These clips pan and zoom over
a coloured 1/f^a texture (or over still photos you pass in) while textured, anti-aliased
ellipses and boxes move across it. `kind="graphics"` makes the other half of what people
film and stream: animation, overlays and screen content — flat colours and smooth gradients
(some banded, wrapping around), hard-edged solid shapes, sharp colour edges — which a model
trained only on camera footage learns to "restore" into something worse. `kind="camera"` is
the protocol's camera moves (`vidlab.enhance.protocol.camera_move`: pan, tilt or zoom, here at
a random speed) over random crops of still photos you pass in. They are written as
near-lossless H.264 (crf 10) in a folder-per-class tree (`OUT/texture/clip_0000.mp4` or
`OUT/graphics/...`), so any vidlab data command reads them.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from vidlab.errors import OutputExistsError
from vidlab.io.reader import exact_rgb

SIZES = [(144, 176), (160, 192), (128, 160), (176, 240)]


def fractal_texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """`float32 3×h×w` in [0, 1]: 1/f^a noise, channels correlated like natural colour."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    alpha = rng.uniform(1.6, 2.6)
    channels = []
    for _ in range(3):
        spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** (alpha / 2)
        spec[0, 0] = 0
        channels.append(np.fft.irfft2(spec, s=(h, w)))
    base = np.stack(channels)
    base /= base.std(axis=(1, 2), keepdims=True) + 1e-8
    mix = rng.normal(size=(3, 3)) * 0.35 + np.eye(3) * rng.uniform(0.2, 0.6) + 0.5
    img = np.einsum("ij,jhw->ihw", mix, base)
    img = img / (np.abs(img).max() + 1e-8) * rng.uniform(0.25, 0.5)
    if rng.random() < 0.4:  # some hard-edged structure: quantised levels, like man-made scenes
        levels = int(rng.integers(3, 8))
        img = np.round(img * levels) / levels
    img += rng.uniform(0.3, 0.7, size=(3, 1, 1))
    return np.clip(img, 0, 1).astype(np.float32)


def load_still(path: Path, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A still photo as `float32 3×h×w` (random crop/resize), for optional natural content."""
    with av.open(str(path)) as c:
        img = exact_rgb(next(c.decode(video=0)))
    x = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255
    scale = max(h / x.shape[2], w / x.shape[3]) * rng.uniform(1.0, 1.6)
    x = F.interpolate(x, scale_factor=scale, mode="bicubic", antialias=True, align_corners=False)
    y0 = int(rng.integers(0, x.shape[2] - h + 1))
    x0 = int(rng.integers(0, x.shape[3] - w + 1))
    return x[0, :, y0:y0 + h, x0:x0 + w].clamp(0, 1).numpy()


def render_clip(rng: np.random.Generator, num_frames: int, h: int, w: int,
                stills: list[Path] | None = None) -> np.ndarray:
    """`uint8 T×h×w×3`: camera pan/zoom over a background plus moving textured objects."""
    ch, cw = h * 2, w * 2
    if stills and rng.random() < 0.5:
        canvas = load_still(stills[int(rng.integers(len(stills)))], rng, ch, cw)
    else:
        canvas = fractal_texture(rng, ch, cw)
    canvas_t = torch.from_numpy(canvas)[None]
    velocity = rng.normal(0, 0.006, size=2)
    zoom = rng.normal(0, 0.004)
    objects = [_random_object(rng, h, w) for _ in range(int(rng.integers(1, 5)))]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    shake = rng.uniform(0, 0.004)
    for t in range(num_frames):
        s = 0.5 * (1 + zoom * t)
        dx, dy = velocity * t + rng.normal(0, shake, size=2)
        grid = torch.stack([xx * s + dx, yy * s + dy], -1)[None].float()
        frame = F.grid_sample(canvas_t, grid, mode="bicubic", padding_mode="reflection",
                              align_corners=False)[0]
        for obj in objects:
            frame = _composite(frame, obj, t, xx, yy)
        if rng.random() < 0.02:  # the occasional lighting change
            frame = frame * rng.uniform(0.9, 1.1)
        frames[t] = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return frames


def gradient_fill(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """`float32 3×h×w` in [0, 1]: per channel a flat colour or a linear ramp in a random
    direction, sometimes wrapping around (banded, hard edges) instead of saturating."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = []
    for _ in range(3):
        if rng.random() < 0.3:
            channels.append(np.full((h, w), rng.uniform(0, 1), np.float32))
            continue
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy) / max(h, w)
        ramp = ramp * rng.uniform(0.3, 3.0) + rng.uniform(0, 1)
        channels.append(ramp % 1.0 if rng.random() < 0.4 else np.clip(ramp, 0, 1))
    return np.stack(channels).astype(np.float32)


def render_graphics_clip(rng: np.random.Generator, num_frames: int, h: int, w: int) -> np.ndarray:
    """`uint8 T×h×w×3`: a (possibly panning) gradient background with hard-edged flat or
    gradient shapes moving across it."""
    canvas = torch.from_numpy(gradient_fill(rng, h * 2, w * 2))[None]
    velocity = rng.normal(0, 0.01, size=2) * (rng.random() < 0.5)
    objects = []
    for _ in range(int(rng.integers(1, 5))):
        obj = _random_object(rng, h, w)
        size = obj["texture"].shape[-1]
        fill = (gradient_fill(rng, size, size) if rng.random() < 0.3
                else np.ones((3, size, size), np.float32) * rng.uniform(0, 1, (3, 1, 1)))
        obj.update(texture=torch.from_numpy(fill.astype(np.float32)),
                   softness=rng.uniform(0.0005, 0.004))
        objects.append(obj)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    for t in range(num_frames):
        dx, dy = velocity * t
        grid = torch.stack([xx * 0.5 + dx, yy * 0.5 + dy], -1)[None].float()
        frame = F.grid_sample(canvas, grid, mode="nearest", padding_mode="reflection",
                              align_corners=False)[0]
        for obj in objects:
            frame = _composite(frame, obj, t, xx, yy)
        frames[t] = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return frames


def _random_object(rng: np.random.Generator, h: int, w: int) -> dict:
    size = int(max(h, w) * rng.uniform(0.2, 0.5))
    return {"texture": torch.from_numpy(fractal_texture(rng, size, size)),
            "centre": rng.uniform(-0.7, 0.7, size=2), "velocity": rng.normal(0, 0.02, size=2),
            "radius": rng.uniform(0.15, 0.45, size=2), "box": bool(rng.random() < 0.4),
            "softness": rng.uniform(0.003, 0.03)}


def _composite(frame: torch.Tensor, obj: dict, t: int, xx: torch.Tensor,
               yy: torch.Tensor) -> torch.Tensor:
    cx, cy = obj["centre"] + obj["velocity"] * t
    rx, ry = obj["radius"]
    if obj["box"]:
        dist = torch.maximum((xx - cx).abs() / rx, (yy - cy).abs() / ry) - 1
    else:
        dist = torch.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) - 1
    alpha = torch.sigmoid(-dist / obj["softness"])[None]
    grid = torch.stack([(xx - cx) / rx, (yy - cy) / ry], -1)[None].float()
    tex = F.grid_sample(obj["texture"][None], grid, mode="bilinear", padding_mode="reflection",
                        align_corners=False)[0]
    return frame * (1 - alpha) + tex * alpha


def render_camera_clip(rng: np.random.Generator, num_frames: int, h: int, w: int,
                       stills: list[Path]) -> np.ndarray:
    """`uint8 T×h×w×3`: a protocol-style camera move over a random crop of a random photo."""
    from vidlab.enhance.protocol import MOVES, camera_move, load_photo

    photo = load_photo(stills[int(rng.integers(len(stills)))])
    ph, pw = photo.shape[:2]
    smallest = min(1.0, 1.3 * max(h / ph, w / pw))  # keep at least 1.3 photo pixels per pixel
    frac = rng.uniform(smallest, 1.0)
    ch, cw = max(int(ph * frac), 1), max(int(pw * frac), 1)
    y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    kind = MOVES[int(rng.integers(len(MOVES)))]
    return camera_move(photo[y0:y0 + ch, x0:x0 + cw], num_frames, kind, (h, w),
                       speed=float(rng.uniform(0.5, 2.0)))


KINDS = ("texture", "graphics", "camera")
CAMERA_SIZE = (240, 320)
"""Camera clips have the protocol's frame size, so their detail per pixel matches it."""


def make_texture_clips(out: str | Path, num_clips: int = 40, num_frames: int = 48,
                       seed: int = 0, stills: list[str | Path] | None = None,
                       overwrite: bool = False, kind: str = "texture") -> list[Path]:
    """Write `num_clips` procedural clips under `out/<kind>/` and return their paths."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "camera" and not stills:
        raise ValueError("kind 'camera' needs still photos (stills)")
    root = Path(out)
    if (root / kind).exists() and any((root / kind).iterdir()) and not overwrite:
        raise OutputExistsError("already exists and is not empty (pass overwrite)", root / kind)
    (root / kind).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    still_paths = [Path(s) for s in stills or []]
    paths = []
    for i in range(num_clips):
        h, w = CAMERA_SIZE if kind == "camera" else SIZES[int(rng.integers(len(SIZES)))]
        if kind == "camera":
            frames = render_camera_clip(rng, num_frames, h, w, still_paths)
        elif kind == "graphics":
            frames = render_graphics_clip(rng, num_frames, h, w)
        else:
            frames = render_clip(rng, num_frames, h, w, still_paths)
        path = root / kind / f"clip_{i:04d}.mp4"
        with av.open(str(path), "w") as c:
            stream = c.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": "10", "preset": "medium"}
            for f in frames:
                c.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
            c.mux(stream.encode())
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """`python -m vidlab.enhance.textures OUT [--kind texture|graphics|camera] [--clips N] [--frames T]
    [--seed S] [--still IMG]`"""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("out")
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--still", action="append", default=[])
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--kind", choices=KINDS, default="texture")
    a = p.parse_args(argv)
    paths = make_texture_clips(a.out, a.clips, a.frames, a.seed, a.still, a.overwrite, a.kind)
    print(f"wrote {len(paths)} clips under {a.out}")


if __name__ == "__main__":
    main()
