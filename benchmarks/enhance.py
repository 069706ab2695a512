"""Enhancement benchmark: vidlab restore vs FFmpeg's denoisers, vidlab sr2x vs bicubic.

Clips: the real carphone pair (../shared/data, heavy H.264, QP 50) and clips no model saw
(procedural textures with a new seed, io's moving pattern), compressed here with x264.
Every method runs in this process on the same decoded frames; PSNR/SSIM are luma (vidlab.io),
gains are dB over the input (restore) or bicubic (sr2x) measured in the same run, and frames/s
are wall-clock on this (shared, noisy) machine.

    python benchmarks/enhance.py [--restore BUNDLE] [--sr BUNDLE] [--frames N] [--per-clip] [--json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidlab.enhance.baselines import DENOISERS, available_filters, bicubic2x, ffmpeg_filter
from vidlab.enhance.degrade import CompressionSpec, downscale2x, encode_decode
from vidlab.enhance.infer import enhance_stream, load_enhancer
from vidlab.enhance.textures import render_clip
from vidlab.io import VideoReader, psnr, ssim

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PRETRAINED = ROOT / "src" / "vidlab" / "enhance" / "pretrained"


def read_all(path: Path, limit: int | None) -> np.ndarray:
    with VideoReader(path) as r:
        return np.stack(list(r.iter_frames(0, limit)))


def unseen_clips(frames: int, seed: int) -> dict[str, np.ndarray]:
    """Two procedural texture clips (a seed training never used) and io's moving pattern."""
    from vidlab.io.writer import moving_pattern

    rng = np.random.default_rng(seed)
    clips = {f"texture {i + 1}": render_clip(rng, frames, 144, 176) for i in range(2)}
    clips["moving pattern"] = moving_pattern(frames, (144, 176), seed=7)
    return clips


def restore_clips(frames: int, limit: int | None,
                  per_clip: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name → (clean, degraded) frames; the unseen clips pooled, or one by one (`per_clip`)."""
    clips = {}
    if (SHARED / "carphone_distorted.mp4").is_file():
        clips["carphone (real, x264 QP 50)"] = (read_all(SHARED / "carphone_pristine.mp4", limit),
                                                read_all(SHARED / "carphone_distorted.mp4", limit))
    unseen = unseen_clips(frames, seed=12345)  # training used seeds 0/1: these clips are new
    for spec in (CompressionSpec("h264", "qp", 50), CompressionSpec("h264", "crf", 40)):
        tag = f"{spec.codec} {spec.mode} {spec.quality}"
        pairs = {name: (c, encode_decode(c, spec)) for name, c in unseen.items()}
        if per_clip:
            clips.update({f"unseen {name} ({tag})": pair for name, pair in pairs.items()})
        clips[f"unseen x3 ({tag})"] = tuple(np.concatenate(x) for x in zip(*pairs.values(), strict=True))
    return clips


def score(clean: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    return (float(np.mean([psnr(a, b) for a, b in zip(clean, out, strict=True)])),
            float(np.mean([ssim(a, b) for a, b in zip(clean, out, strict=True)])))


def timed(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = fn(x)
    return out, len(x) / (time.perf_counter() - t)


def model_fn(bundle: Path, ensemble: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    model, _ = load_enhancer(bundle)
    return lambda x: np.stack(list(enhance_stream(model, x, ensemble=ensemble)))


def restore_rows(bundle: Path | None, frames: int, limit: int | None,
                 per_clip: bool = False) -> list[dict]:
    methods: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {"input": lambda x: x}
    have = available_filters()
    for name in ("hqdn3d", "nlmeans", "atadenoise", "deblock"):
        methods[f"ffmpeg {name}"] = (lambda x, n=name: ffmpeg_filter(x, n)) if have[name] else None
    if bundle is not None:
        methods["vidlab restore"] = model_fn(bundle)
        methods["vidlab restore --ensemble"] = model_fn(bundle, ensemble=True)
    rows = []
    for clip, (clean, degraded) in restore_clips(frames, limit, per_clip).items():
        base = None
        for name, fn in methods.items():
            if fn is None:
                rows.append({"clip": clip, "method": name, "note": "not in this FFmpeg build"})
                continue
            out, fps = timed(fn, degraded)
            p, s = score(clean, out)
            base = p if name == "input" else base
            rows.append({"clip": clip, "method": name, "psnr": round(p, 3), "ssim": round(s, 4),
                         "gain_db": round(p - base, 3),
                         "frames_per_s": None if name == "input" else round(fps, 1)})
    return rows


def sr_rows(bundle: Path | None, frames: int, limit: int | None) -> list[dict]:
    clips = {}
    if (SHARED / "carphone_pristine.mp4").is_file():
        clips["carphone pristine"] = read_all(SHARED / "carphone_pristine.mp4", limit)
    clips["unseen x3"] = np.concatenate(list(unseen_clips(frames, seed=54321).values()))
    methods = {"bicubic": bicubic2x}
    if bundle is not None:
        methods["vidlab sr2x"] = model_fn(bundle)
        methods["vidlab sr2x --ensemble"] = model_fn(bundle, ensemble=True)
    rows = []
    for clip, clean in clips.items():
        low = downscale2x(clean)
        base = None
        for name, fn in methods.items():
            out, fps = timed(fn, low)
            p, s = score(clean, out)
            base = p if base is None else base
            rows.append({"clip": f"{clip} (2x down)", "method": name, "psnr": round(p, 3),
                         "ssim": round(s, 4), "gain_db": round(p - base, 3),
                         "frames_per_s": round(fps, 1)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for task, flag in (("restore", "--restore"), ("sr2x", "--sr")):
        committed = PRETRAINED / f"{task}.vidlab"
        ap.add_argument(flag, type=Path, default=committed if committed.is_dir() else None,
                        help=f"{task} bundle (default: the committed pretrained one)")
    ap.add_argument("--frames", type=int, default=24, help="frames per unseen clip")
    ap.add_argument("--limit", type=int, default=None, help="carphone frames (default: all 120)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--per-clip", action="store_true",
                    help="restore: also a row group for each unseen clip")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    rows = restore_rows(a.restore, a.frames, a.limit, a.per_clip) + sr_rows(a.sr, a.frames, a.limit)
    info = {"restore_bundle": str(a.restore), "sr_bundle": str(a.sr),
            "filters": {k: DENOISERS[k] for k, ok in available_filters().items() if ok},
            "torch_threads": torch.get_num_threads()}
    if a.json:
        from vidlab.cli.common import print_json

        print_json({"info": info, "rows": rows})
        return
    from vidlab.cli.common import print_table

    print(info)
    print_table(rows, title="enhancement: mean luma PSNR/SSIM vs clean, gain over input/bicubic",
                columns=["clip", "method", "psnr", "ssim", "gain_db", "frames_per_s", "note"])


if __name__ == "__main__":
    main()
