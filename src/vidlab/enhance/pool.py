"""The training pool: degraded/clean clip windows made once from clean videos, cached as uint8.

Encoding a window with a real codec costs ~0.1 s, far more than a training step's share, so the
pairs are made up front and stored in the run directory (`RUN/pool/`, one `.npy` pair per
window, memory-mapped while training). Each window is a random crop of consecutive frames from
one clean clip; training samples random patches, frame offsets and flips/rotations from it, so a
few hundred windows give many distinct samples. Validation windows come from clips held out
of training.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidlab.enhance.degrade import degrade
from vidlab.errors import DatasetError
from vidlab.io.reader import EXACT_RGB
from vidlab.progress import progress

log = logging.getLogger(__name__)

POOL_DIR = "pool"
POOL_INDEX = "pool.json"


@dataclass(frozen=True)
class PoolSpec:
    """What a pool holds; a pool on disk is reused only when its spec matches."""

    task: str
    windows: int = 192
    window_frames: int = 10
    max_height: int = 144
    max_width: int = 176
    quality_range: tuple[int, int] = (30, 51)
    noise_prob: float = 0.2
    val_windows: int = 16
    lead_frames: int = 16
    """Up to this many frames (drawn per window) are encoded before the window and dropped:
    most frames of a real video sit far from a keyframe, not at the start of a fresh stream."""
    seed: int = 0
    h265_share: float = 0.2
    """Share of restore windows encoded with x265 (the rest x264)."""
    low_delay_share: float = 0.0
    """Share of restore windows encoded low-delay (no B-frames); the rest use B-frames."""
    record_qp: bool = False
    """Store each degraded frame's QP as the decoder reports it (for QP-conditioned models)."""
    tone_share: float = 0.0
    """Share of windows whose clean frames are first re-toned dark and/or flat (`retone`), so
    night scenes, skies and low-contrast footage are not rare: a codec treats them differently
    (few bits, banding) and a model that saw few of them shifts their level."""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for name, default in (("h265_share", 0.2), ("low_delay_share", 0.0),
                              ("record_qp", False), ("tone_share", 0.0)):
            if d[name] == default:  # so pools made before these fields existed are reused
                del d[name]
        d["quality_range"] = list(self.quality_range)
        return d


def clip_paths(data: str | Path) -> list[Path]:
    """Clean clip paths from a folder tree or a manifest (via the data stage's loader)."""
    from vidlab.data.manifest import load_entries

    entries = load_entries(data)
    paths = sorted({Path(e["path"]) for e in entries})
    if not paths:
        raise DatasetError("no readable videos to train on", data)
    return paths


def build_pool(run_dir: str | Path, data: str | Path, spec: PoolSpec,
               workers: int | None = None) -> list[dict[str, Any]]:
    """Make (or reuse) the pool under `run_dir/pool` and return its index records.

    Each window draws from its own generator (seeded by `spec.seed` and its index), so the pool
    is the same whether it is made by one process or by `workers` (default: one per core, at
    most 8, fewer for small pools) — encoding is what makes a large pool slow.
    """
    root = Path(run_dir) / POOL_DIR
    index_path = root / POOL_INDEX
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        if index.get("spec") == spec.to_dict():
            return index["windows"]
        log.warning("%s: pool made with other settings, rebuilding it", root)
    root.mkdir(parents=True, exist_ok=True)
    paths = clip_paths(data)
    order = np.random.default_rng(spec.seed).permutation(len(paths))
    n_val_clips = max(1, len(paths) // 10) if len(paths) > 1 else 0
    val_clips = {int(i) for i in order[:n_val_clips]}
    train_ids = [i for i in range(len(paths)) if i not in val_clips] or list(range(len(paths)))
    val_ids = sorted(val_clips) or train_ids
    jobs = []
    for w in range(spec.windows + spec.val_windows):
        split = "val" if w >= spec.windows else "train"
        ids = val_ids if split == "val" else train_ids
        jobs.append((root, paths[ids[w % len(ids)]], spec, w, split))
    workers = workers or min(os.cpu_count() or 1, 8, max(1, len(jobs) // 32))
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=torch.set_num_threads,
                                 initargs=(1,)) as pool:
            made = list(progress(pool.map(_make_window, jobs, chunksize=4), total=len(jobs),
                                 desc=f"making training pairs ({workers} processes)"))
    else:
        made = [_make_window(job) for job in progress(jobs, total=len(jobs),
                                                      desc="making training pairs")]
    records = [r for r in made if r is not None]
    if not any(r["split"] == "train" for r in records):
        raise DatasetError("no clip had enough frames to make training pairs", data)
    index = {"spec": spec.to_dict(), "windows": records}
    index_path.write_text(json.dumps(index, indent=1))
    return records


def _make_window(job: tuple[Path, Path, PoolSpec, int, str]) -> dict[str, Any] | None:
    """Read, degrade and save window number `w`; its record, or None if the clip was bad."""
    root, clip, spec, w, split = job
    rng = np.random.default_rng([spec.seed, w])
    lead = int(rng.integers(0, spec.lead_frames + 1)) if spec.task == "restore" else 0
    clean = _read_window(clip, spec, rng, lead)
    if clean is None:
        return None
    toned = spec.tone_share > 0 and rng.random() < spec.tone_share
    if toned:
        clean = retone(clean, rng)
    degraded, info = degrade(clean, spec.task, rng, spec.quality_range, spec.noise_prob,
                             h265_prob=spec.h265_share, ld_prob=spec.low_delay_share,
                             with_qp=spec.record_qp and spec.task == "restore")
    lead = max(0, min(lead, len(clean) - spec.window_frames))
    clean, degraded = clean[lead:], degraded[lead:]
    if "qps" in info:
        info["qps"] = info["qps"][lead:]
    if lead:
        info["lead_frames"] = lead
    if toned:
        info["toned"] = True
    name = f"w{w:05d}"
    np.save(root / f"{name}_clean.npy", clean)
    np.save(root / f"{name}_degraded.npy", degraded)
    return {"name": name, "split": split, "clip": str(clip), **info}


def retone(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`frames` mapped linearly onto a random darker and/or narrower range: black level 0-48,
    span 32-200 grey levels (a night scene, an overcast sky, a washed-out or underexposed shot)."""
    black = float(rng.uniform(0, 48))
    span = float(rng.uniform(32, 200))
    out = black + frames.astype(np.float32) * (min(span, 255 - black) / 255.0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _read_window(path: Path, spec: PoolSpec, rng: np.random.Generator,
                 lead: int = 0) -> np.ndarray | None:
    """A random crop of up to `lead + window_frames` consecutive frames (H, W multiples of 4)."""
    from vidlab.io import VideoReader

    try:
        reader = VideoReader(path, pixel_format=EXACT_RGB)
        n = len(reader)
        t = min(spec.window_frames + lead, n)
        start = int(rng.integers(0, n - t + 1))
        frames = reader.get_frames(range(start, start + t))
        reader.close()
    except Exception as exc:  # a bad clip is reported and skipped, never fatal
        log.warning("%s: skipped while making training pairs (%s)", path, exc)
        return None
    h, w = frames.shape[1:3]
    ch, cw = min(h, spec.max_height) // 4 * 4, min(w, spec.max_width) // 4 * 4
    if ch < 16 or cw < 16:
        log.warning("%s: skipped, frames %dx%d are too small", path, w, h)
        return None
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(frames[:, y0:y0 + ch, x0:x0 + cw])


class PairPool:
    """Memory-mapped windows of one split; draws training batches with torch's global RNG
    (so a resumed run, whose RNG state is restored, draws exactly the same batches)."""

    def __init__(self, run_dir: str | Path, records: list[dict[str, Any]], split: str,
                 num_frames: int, scale: int, blind_share: float = 0.0):
        from vidlab.enhance.model import quality_vector

        root = Path(run_dir) / POOL_DIR
        self.num_frames, self.scale, self.blind_share = num_frames, scale, blind_share
        self.clean, self.degraded, self.quality = [], [], []
        """`quality[i]`: window i's `T×3` quality vectors (zeros where no QP was recorded)."""
        for r in records:
            if r["split"] != split:
                continue
            clean = np.load(root / f"{r['name']}_clean.npy", mmap_mode="r")
            if clean.shape[0] < num_frames:
                continue
            self.clean.append(clean)
            self.degraded.append(np.load(root / f"{r['name']}_degraded.npy", mmap_mode="r"))
            qps = r.get("qps") or [None] * clean.shape[0]
            self.quality.append(np.array([quality_vector(q, r.get("qp_codec")) for q in qps],
                                         dtype=np.float32))
        if not self.clean:
            raise DatasetError(f"no {split} windows with at least {num_frames} frames", root)
        self.max_patch = min(min(d.shape[1:3]) for d in self.degraded)
        """Largest square patch (input pixels) every window holds: a batch's patches must
        share one size, and small source videos make small windows."""

    def __len__(self) -> int:
        return len(self.clean)

    def batch(self, batch_size: int, patch: int,
              with_quality: bool = False) -> tuple[torch.Tensor, ...]:
        """`(inputs B×3×T×h×w, targets B×3×sh×sw)` float in [0, 1], random patches; with
        `with_quality` also the centre frames' `B×3` quality vectors (a `blind_share` of them
        zeroed: unknown quality)."""
        xs, ys, qs = [], [], []
        s = self.scale
        side = min(patch // s, self.max_patch)
        for _ in range(batch_size):
            i = int(torch.randint(len(self), ()).item())
            deg, clean = self.degraded[i], self.clean[i]
            t0 = int(torch.randint(deg.shape[0] - self.num_frames + 1, ()).item())
            ph = pw = side
            y0 = int(torch.randint(deg.shape[1] - ph + 1, ()).item())
            x0 = int(torch.randint(deg.shape[2] - pw + 1, ()).item())
            x = torch.from_numpy(np.array(deg[t0:t0 + self.num_frames, y0:y0 + ph, x0:x0 + pw]))
            c = t0 + self.num_frames // 2
            if with_quality:
                blind = self.blind_share and torch.rand(()) < self.blind_share
                qs.append(torch.from_numpy(self.quality[i][c]) * (0.0 if blind else 1.0))
            y = torch.from_numpy(np.array(clean[c, y0 * s:(y0 + ph) * s, x0 * s:(x0 + pw) * s]))
            x, y = x.permute(3, 0, 1, 2), y.permute(2, 0, 1)  # 3×T×h×w, 3×H×W
            x, y = _augment(x, y)
            xs.append(x)
            ys.append(y)
        inputs, targets = torch.stack(xs).float() / 255, torch.stack(ys).float() / 255
        return (inputs, targets, torch.stack(qs)) if with_quality else (inputs, targets)

    def window(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The `num_frames` degraded frames around window `i`'s middle, and its clean centre."""
        deg, clean = self.degraded[i], self.clean[i]
        c = self._centre(i)
        r = self.num_frames // 2
        return np.array(deg[c - r:c + r + 1]), np.array(clean[c])

    def window_quality(self, i: int) -> np.ndarray:
        """The quality vector of `window(i)`'s centre frame."""
        return self.quality[i][self._centre(i)]

    def _centre(self, i: int) -> int:
        n, r = self.degraded[i].shape[0], self.num_frames // 2
        return min(max(n // 2, r), n - 1 - r)


def _augment(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flips, transposition and time reversal: the degradations do not care about them."""
    if torch.rand(()) < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if torch.rand(()) < 0.5:
        x, y = x.flip(-2), y.flip(-2)
    if torch.rand(()) < 0.5 and x.shape[-1] == x.shape[-2]:
        x, y = x.transpose(-1, -2), y.transpose(-1, -2)
    if torch.rand(()) < 0.5:
        x = x.flip(1)
    return x.contiguous(), y.contiguous()
