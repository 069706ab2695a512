"""Clip transforms: `uint8 T×H×W×C` frames → normalized `float C×T×H×W` tensors.

`Preprocess` is the single evaluation/serving preprocessing object (contract): its parameters
are saved in every bundle, so training-time evaluation, `vidlab eval`, `predict` and the server
turn a video into exactly the same tensor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


SAMPLING = ("clips", "segments")
"""The sampling vocabulary, shared by `DataConfig.sampling` and `Preprocess.sampling`:
"clips" = contiguous clips of `num_frames` frames at a stride (or `target_fps`); "segments" =
`num_frames` frames spread over the whole video, one per equal segment (TSN)."""
_SAMPLING_ALIASES = {"random": "clips", "clip": "clips", "segment": "segments"}
"""Words older configs and bundles used for the same ideas ("random" was DataConfig's)."""


def sampling_word(value: str) -> str:
    """The vocabulary word for `value` (older spellings accepted); `ValueError` otherwise."""
    word = _SAMPLING_ALIASES.get(str(value), str(value))
    if word not in SAMPLING:
        raise ValueError(f"unknown sampling {value!r} (clips or segments)")
    return word


@dataclass
class Preprocess:
    """How a video becomes model input: the resolved preprocessing saved in every bundle.

    - `num_frames` frames are taken `stride` frames apart (or, with `target_fps`, the stride is
      chosen per video so that sampled frames are `1/target_fps` seconds apart);
    - frames are decoded at `short_side` (the reader's scaler resizes), then centre-cropped to
      `crop_size`×`crop_size` and normalized with `mean`/`std` (0–1 pixel scale);
    - videos shorter than a clip are handled by `short_video`: "loop" repeats them, "pad"
      repeats the last frame;
    - `sampling` (see `SAMPLING`): "clips" or "segments" (TSN models take one frame from each
      of `num_frames` equal segments of the whole video instead of a contiguous clip).

    Which frames make a clip is decided by the samplers of `vidlab.data.samplers`, built from
    this object; how a video is opened and decoded by `vidlab.data.clips`.
    """

    num_frames: int = 16
    stride: int = 2
    short_side: int = 128
    crop_size: int = 112
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    target_fps: float | None = None
    short_video: str = "loop"
    sampling: str = "clips"

    def __post_init__(self) -> None:
        self.sampling = sampling_word(self.sampling)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        return cls(**kwargs)

    def stride_for(self, fps: float | None) -> int:
        """Frame step for a video at `fps` (fixed `stride` unless `target_fps` is set)."""
        if self.target_fps and fps and fps > 0:
            return max(1, round(fps / self.target_fps))
        return max(1, self.stride)

    def __call__(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """`uint8 T×H×W×C` → `float32 C×T×crop×crop` (resize if needed, centre crop, normalize)."""
        return self.views(frames, 1)[0]

    def views(self, frames: np.ndarray | torch.Tensor, crops: int = 1) -> torch.Tensor:
        """`uint8 T×H×W×C` → `float32 crops×C×T×crop×crop`: resized to `short_side` if needed,
        `crops` windows along the long side (1: the centre), each normalized."""
        x = resize_short_side(to_float_cthw(frames), self.short_side)
        return torch.stack([normalize(c, self.mean, self.std)
                            for c in spatial_crops(x, self.crop_size, crops)])


def _to_float_cthw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected frames T×H×W×3, got shape {tuple(t.shape)}")
    return t.permute(3, 0, 1, 2).float().div_(255.0)


def resize_short_side(x: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize `C×T×H×W` so its shorter spatial side is `short_side` (no-op when it already is)."""
    h, w = x.shape[-2:]
    if min(h, w) == short_side:
        return x
    scale = short_side / min(h, w)
    size = (max(short_side, round(h * scale)), max(short_side, round(w * scale)))
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop the central `size`×`size` window of `C×T×H×W` (one window for every frame)."""
    h, w = x.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return x[..., top:top + size, left:left + size]


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel `(x - mean) / std` on `C×T×H×W`."""
    m = torch.tensor(mean, dtype=x.dtype).view(-1, 1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(-1, 1, 1, 1)
    return (x - m) / s


# --- training augmentation: every draw is made once per clip and applied to all its frames ---


def to_float_cthw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """`uint8 T×H×W×3` → `float32 C×T×H×W` in 0–1."""
    return _to_float_cthw(frames)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize every frame of `C×T×H×W` to `size` (h, w); antialiased only when shrinking by
    more than 1.5× (where aliasing shows; it costs ~2.5× the time of plain bilinear)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = max(x.shape[-2] / size[0], x.shape[-1] / size[1])
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                         antialias=shrink > 1.5)


def random_resized_crop_box(h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
                            rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random box covering `scale` of the area at aspect `ratio`
    (torchvision's rule: 10 tries, then the largest centred box of a valid aspect)."""
    area = h * w
    log_r = np.log(ratio)
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = float(np.exp(rng.uniform(*log_r)))
        cw, ch = round((target * aspect) ** 0.5), round((target / aspect) ** 0.5)
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    aspect = w / h
    if aspect < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif aspect > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        ch, cw = h, w
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float],
                        ratio: tuple[float, float], rng: np.random.Generator) -> torch.Tensor:
    """One random box for the whole clip, resized to `size`×`size`."""
    top, left, ch, cw = random_resized_crop_box(x.shape[-2], x.shape[-1], scale, ratio, rng)
    return resize(x[..., top:top + ch, left:left + cw], (size, size))


def color_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float,
                 rng: np.random.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation factors drawn once, in a random order, for the clip."""
    gray_w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(3, 1, 1, 1)
    for op in rng.permutation(3):
        if op == 0 and brightness > 0:
            x = x * float(rng.uniform(max(0.0, 1 - brightness), 1 + brightness))
        elif op == 1 and contrast > 0:
            mean = (x * gray_w).sum(0).mean()
            x = (x - mean) * float(rng.uniform(max(0.0, 1 - contrast), 1 + contrast)) + mean
        elif op == 2 and saturation > 0:
            gray = (x * gray_w).sum(0, keepdim=True)
            x = (x - gray) * float(rng.uniform(max(0.0, 1 - saturation), 1 + saturation)) + gray
    return x.clamp_(0.0, 1.0)


def random_erasing(x: torch.Tensor, rng: np.random.Generator, area: tuple[float, float] = (0.02, 0.2),
                   ratio: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """Blank one random rectangle (same place in every frame) to 0, i.e. the mean after
    normalization."""
    h, w = x.shape[-2:]
    for _ in range(10):
        target = h * w * rng.uniform(*area)
        aspect = float(np.exp(rng.uniform(*np.log(ratio))))
        eh, ew = round((target / aspect) ** 0.5), round((target * aspect) ** 0.5)
        if 0 < eh < h and 0 < ew < w:
            top, left = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            x = x.clone()
            x[..., top:top + eh, left:left + ew] = 0.0
            return x
    return x


def spatial_crops(x: torch.Tensor, size: int, num_crops: int) -> list[torch.Tensor]:
    """`num_crops` `size`×`size` windows spread along the long side (1 = centre, 3 = the usual
    three-crop: start, centre, end)."""
    if num_crops == 1:
        return [center_crop(x, size)]
    h, w = x.shape[-2:]
    out = []
    for k in range(num_crops):
        f = k / (num_crops - 1)
        top = round((h - size) * f) if h > w else max(0, (h - size) // 2)
        left = round((w - size) * f) if w >= h else max(0, (w - size) // 2)
        out.append(x[..., top:top + size, left:left + size])
    return out


class TrainTransform:
    """Training clip transform: resize → random resized crop → flips and time reversal (label
    -aware) → colour jitter → normalize → random erasing. Returns the tensor and the (possibly
    changed) target.

    `flip_targets[c]` is the class a flipped clip of class `c` becomes, or -1 to never flip it
    (see `DataConfig.flip_targets`); with `labels`, the vertical flip and time reversal targets
    come from `config.vflip_map` / `config.reverse_map` the same way (`DataConfig.map_targets`).
    """

    def __init__(self, config: Any, flip_targets: list[int], labels: list[str] | None = None):
        self.c, self.flip_targets = config, flip_targets
        none = [-1] * len(flip_targets)
        self.vflip_targets = config.map_targets(config.vflip_map, labels) if labels else none
        self.reverse_targets = config.map_targets(config.reverse_map, labels) if labels else none

    def __call__(self, frames: np.ndarray | torch.Tensor, target: int,
                 rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        c = self.c
        x = resize_short_side(to_float_cthw(frames), c.short_side)
        x = random_resized_crop(x, c.crop_size, tuple(c.scale), tuple(c.ratio), rng)
        if c.hflip > 0 and rng.random() < c.hflip and self.flip_targets[target] >= 0:
            x, target = x.flip(-1), self.flip_targets[target]
        if c.vflip > 0 and rng.random() < c.vflip and self.vflip_targets[target] >= 0:
            x, target = x.flip(-2), self.vflip_targets[target]
        if c.time_reverse > 0 and rng.random() < c.time_reverse \
                and self.reverse_targets[target] >= 0:
            x, target = x.flip(1), self.reverse_targets[target]
        if rng.random() < c.color_jitter_p:
            x = color_jitter(x, c.brightness, c.contrast, c.saturation, rng)
        x = normalize(x, c.mean, c.std)
        if c.random_erasing > 0 and rng.random() < c.random_erasing:
            x = random_erasing(x, rng)
        return x.contiguous(), target


def eval_views(frames_per_clip: list[np.ndarray], preprocess: Preprocess,
               num_crops: int = 1) -> torch.Tensor:
    """Stack the test views of one video: every clip × every spatial crop → `V×C×T×S×S`."""
    return torch.cat([preprocess.views(frames, num_crops) for frames in frames_per_clip])


def center_crop_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """The central `size`×`size` window of `uint8 T×H×W×C` frames (where `center_crop` cuts a
    float clip), kept as `uint8` — the pixels the model sees, before normalization."""
    h, w = frames.shape[1:3]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return np.ascontiguousarray(frames[:, top:top + size, left:left + size])
