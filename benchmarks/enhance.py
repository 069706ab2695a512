"""Enhancement benchmark: vidlab restore vs FFmpeg's denoisers, vidlab sr2x vs bicubic.

Default: the real carphone pair (../shared/data, heavy H.264, QP 50) and clips no model saw
(procedural textures with a new seed, io's moving pattern), compressed here with x264.
`--protocol`: the standard protocol (`vidlab.enhance.protocol`): held-out natural clips
(carphone, camera moves over matplotlib's and `--photo` photographs) encoded with x264 and
x265 at QP 22/27/32/37/42, low-delay and random-access GOPs, decoded with their QP as
`vidlab enhance` decodes them; ΔPSNR/ΔSSIM per codec × QP × GOP (mean and worst clip).
Every method runs in this process on the same decoded frames; restore is scored on Y planes
as MFQE/LDV score it (the input: the decoder's own planes; every output: the planes an encoder
is given for it; the clean clip likewise), sr2x on RGB luma (vidlab.io); gains are dB over the
input (restore) or bicubic (sr2x) measured in the same run, and frames/s
are wall-clock on this (shared, noisy) machine.

    python benchmarks/enhance.py [--restore BUNDLE] [--sr BUNDLE] [--frames N] [--per-clip] [--json]
    python benchmarks/enhance.py --protocol [--photo IMG ...] [--frames 10] [--ungated] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidlab.enhance.baselines import DENOISERS, available_filters, bicubic2x, ffmpeg_filter
from vidlab.enhance.calibrate import UNCOMPRESSED_QP
from vidlab.enhance.coded import CodedClip, coded_luma
from vidlab.enhance.degrade import CompressionSpec, downscale2x, encode_decode
from vidlab.enhance.gate import load_gate
from vidlab.enhance.infer import enhance_stream, load_enhancer
from vidlab.enhance.protocol import PROTOCOL_QPS, Condition, coded, conditions, heldout_clips
from vidlab.enhance.textures import render_clip
from vidlab.io import VideoReader, psnr, ssim
from vidlab.progress import progress

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


def timed(fn: Callable, x) -> tuple[np.ndarray, float]:
    """`fn(x)` and the frames/s it ran at."""
    t = time.perf_counter()
    out = fn(x)
    return out, len(out) / (time.perf_counter() - t)


def model_fn(bundle: Path, ensemble: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    model, _ = load_enhancer(bundle)
    return lambda x: np.stack(list(enhance_stream(model, x, ensemble=ensemble)))


FILTERS = ("hqdn3d", "nlmeans", "atadenoise", "deblock")


def restore_rows(bundle: Path | None, frames: int, limit: int | None,
                 per_clip: bool = False) -> list[dict]:
    methods: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {"input": lambda x: x}
    have = available_filters()
    for name in FILTERS:
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


def gated_fn(bundle: Path, gate: bool = True,
             ensemble: bool = False) -> Callable[[CodedClip], np.ndarray]:
    """The model as `vidlab enhance` runs it: each frame's strength from the bundle's gate."""
    model, b = load_enhancer(bundle)
    quality_gate = load_gate(b.path) if gate else None

    def run(clip: CodedClip) -> np.ndarray:
        strengths = (None if quality_gate is None else
                     [quality_gate.alpha(q, clip.codec) for q in clip.qps])
        return np.stack(list(enhance_stream(model, clip.frames, strengths=strengths,
                                            ensemble=ensemble, qps=clip.qps,
                                            codec=clip.codec)))
    return run


def protocol_rows(restore: Path | None, sr: Path | None, clips: dict[str, np.ndarray],
                  conds: list[Condition], ungated: bool,
                  ensemble: bool = False) -> tuple[list[dict], list[dict]]:
    """(per-clip rows, per-condition summary rows) of both tasks; each condition's summary is
    printed to stderr as soon as it is measured (a long run that is stopped keeps them)."""
    have = available_filters()
    per_clip: list[dict] = []
    restore_methods: dict[str, Callable | None] = {"input": lambda c: c.frames}
    for name in FILTERS:
        restore_methods[f"ffmpeg {name}"] = ((lambda c, n=name: ffmpeg_filter(c.frames, n))
                                             if have[name] else None)
    if restore is not None:
        restore_methods["vidlab restore"] = gated_fn(restore)
        if ungated:
            restore_methods["vidlab restore (no gate)"] = gated_fn(restore, gate=False)
        if ensemble:
            restore_methods["vidlab restore --ensemble"] = gated_fn(restore, ensemble=True)
    sr_methods: dict[str, Callable | None] = {"bicubic": lambda c: bicubic2x(c.frames)}
    if sr is not None:
        sr_methods["vidlab sr2x"] = gated_fn(sr)
        if ungated:
            sr_methods["vidlab sr2x (no gate)"] = gated_fn(sr, gate=False)
    tasks = [("restore", restore_methods, lambda x: x)] if restore is not None else []
    if sr is not None:
        tasks.append(("sr2x", sr_methods, downscale2x))
    for task, methods, prepare in tasks:
        sr_conds: list[Condition | None] = [None] if task == "sr2x" else []
        for cond in progress(sr_conds + conds, desc=f"protocol ({task})"):
            for clip_name, clean in clips.items():
                source = prepare(clean)
                clip = (CodedClip(source, [UNCOMPRESSED_QP] * len(source), "h264", "raw")
                        if cond is None else coded(source, cond))
                base = None
                on_planes = task == "restore" and clip.luma is not None
                clean_y = coded_luma(clean) if on_planes else None
                for method, fn in methods.items():
                    row = {"task": task, "condition": cond.label if cond else "uncompressed",
                           "codec": cond.codec if cond else "-", "qp": cond.qp if cond else 0,
                           "gop": cond.gop if cond else "-", "clip": clip_name,
                           "method": method}
                    if fn is None:
                        per_clip.append({**row, "note": "not in this FFmpeg build"})
                        continue
                    out, fps = timed(fn, clip)
                    if on_planes:  # the decoder's Y planes for the input, as encoded for the rest
                        # a clip the gate passes through entirely is handed back as its own
                        # stream by `vidlab enhance` (copied, not re-encoded): its planes
                        kept = method == "input" or np.array_equal(out, clip.frames)
                        p, s = score(clean_y, clip.luma if kept else coded_luma(out))
                    else:
                        p, s = score(clean, out)
                    base = (p, s) if base is None else base
                    per_clip.append({**row, "psnr": round(p, 4), "ssim": round(s, 5),
                                     "dpsnr": round(p - base[0], 4), "dssim": round(s - base[1], 5),
                                     "frames": len(out), "seconds": len(out) / fps})
            label = cond.label if cond else "uncompressed"
            for r in summarise([r for r in per_clip
                                if r["task"] == task and r["condition"] == label]):
                print(json.dumps(r), file=sys.stderr, flush=True)
    return per_clip, summarise(per_clip)


def summarise(per_clip: list[dict]) -> list[dict]:
    """Per task × condition × method: mean and worst-clip ΔPSNR, mean ΔSSIM, frames/s."""
    groups: dict[tuple, list[dict]] = {}
    for r in per_clip:
        groups.setdefault((r["task"], r["condition"], r["method"]), []).append(r)
    rows = []
    for (task, cond, method), rs in groups.items():
        if "note" in rs[0]:
            rows.append({"task": task, "condition": cond, "method": method,
                         "note": rs[0]["note"]})
            continue
        seconds = sum(r["seconds"] for r in rs)
        rows.append({"task": task, "condition": cond, "method": method,
                     "psnr": round(float(np.mean([r["psnr"] for r in rs])), 3),
                     "dpsnr_mean": round(float(np.mean([r["dpsnr"] for r in rs])), 3),
                     "dpsnr_worst": round(min(r["dpsnr"] for r in rs), 3),
                     "dssim_mean": round(float(np.mean([r["dssim"] for r in rs])), 4),
                     "frames_per_s": round(sum(r["frames"] for r in rs) / max(seconds, 1e-9), 1)
                     if not method.startswith(("input", "bicubic")) else None})
    return rows


def protocol_main(a: argparse.Namespace) -> None:
    carphone = SHARED / "carphone_pristine.mp4"
    clips = heldout_clips(a.frames, a.photo, carphone if carphone.is_file() else None,
                          carphone_frames=a.limit or 30, moves=a.moves.split(","))
    conds = conditions(a.codecs.split(","), [int(q) for q in a.qps.split(",")],
                       a.gops.split(","))
    restore, sr = None if a.no_restore else a.restore, None if a.no_sr else a.sr
    per_clip, rows = protocol_rows(restore, sr, clips, conds, a.ungated, a.ensemble)
    info = {"restore_bundle": str(restore), "sr_bundle": str(sr),
            "heldout_clips": {k: list(v.shape) for k, v in clips.items()},
            "filters": {k: DENOISERS[k] for k, ok in available_filters().items() if ok}}
    if a.json:
        from vidlab.cli.common import print_json

        print_json({"info": info, "rows": rows, "per_clip": per_clip})
        return
    from vidlab.cli.common import print_table

    print(info)
    print_table(rows, title="protocol: luma ΔPSNR (dB) / ΔSSIM over the input (restore) or "
                            "bicubic (sr2x), mean and worst held-out clip",
                columns=["task", "condition", "method", "psnr", "dpsnr_mean", "dpsnr_worst",
                         "dssim_mean", "frames_per_s", "note"])


VARIANTS = {
    "committed restore (5 frames, early fusion, 8+4 blocks)":
        dict(num_frames=5, channels=48, num_blocks=8, context_blocks=4),
    "single frame (1 frame, 8+4 blocks)": dict(num_frames=1, channels=48, num_blocks=8,
                                                context_blocks=4),
    "aligned (5 frames, flow-aligned, 8+4 blocks)":
        dict(num_frames=5, channels=48, num_blocks=8, context_blocks=4, align=True),
    "aligned, equal cost (5 frames, flow-aligned, 4+4 blocks)":
        dict(num_frames=5, channels=48, num_blocks=4, context_blocks=4, align=True),
    "aligned + QP condition (5 frames, flow-aligned, 8+4 blocks, FiLM)":
        dict(num_frames=5, channels=48, num_blocks=8, context_blocks=4, align=True, qp_cond=True),
    "aligned + QP condition + low-cut 17 (the committed restore bundle)":
        dict(num_frames=5, channels=48, num_blocks=8, context_blocks=4, align=True, qp_cond=True,
             lowcut=17),
}


def variant_speed(size: tuple[int, int], repeats: int) -> list[dict]:
    """Forward frames/s of each architecture variant on one input, as a ratio to the first."""
    import torch

    from vidlab.enhance.model import build_enhancer

    rows, base = [], None
    for name, kw in VARIANTS.items():
        model = build_enhancer(**kw).eval()
        x = torch.rand(1, 3, kw["num_frames"], *size)
        with torch.no_grad():
            model(x)
            t = time.perf_counter()
            for _ in range(repeats):
                model(x)
        fps = repeats / (time.perf_counter() - t)
        base = base or fps
        rows.append({"variant": name, "params": sum(p.numel() for p in model.parameters()),
                     "frames_per_s": round(fps, 2), "speed_vs_committed": round(fps / base, 3)})
    return rows


def temporal_ablation(bundle: Path, clips: dict[str, np.ndarray],
                      conds: list[Condition]) -> list[dict]:
    """How much the model gains from its neighbour frames: its ΔPSNR at full strength with the
    real 5-frame windows vs windows made of the centre frame repeated."""
    from vidlab.enhance.infer import enhance_window

    model, _ = load_enhancer(bundle)
    rows = []
    for cond in conds:
        real, still = [], []
        for clean in clips.values():
            clip = coded(clean, cond)
            p_in = score(clean, clip.frames)[0]
            out = np.stack(list(enhance_stream(model, clip.frames)))
            alone = np.stack([enhance_window(model, np.stack([f] * model.num_frames))
                              for f in clip.frames])
            real.append(score(clean, out)[0] - p_in)
            still.append(score(clean, alone)[0] - p_in)
        rows.append({"condition": cond.label, "dpsnr_5_frames": round(float(np.mean(real)), 3),
                     "dpsnr_centre_repeated": round(float(np.mean(still)), 3)})
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
    ap.add_argument("--protocol", action="store_true",
                    help="the standard protocol on held-out natural clips (see the docstring)")
    ap.add_argument("--photo", action="append", default=[],
                    help="--protocol: another held-out photograph to move a camera over")
    ap.add_argument("--codecs", default="h264,h265")
    ap.add_argument("--moves", default="pan,tilt,zoom",
                    help="--protocol: camera moves over each photo")
    ap.add_argument("--qps", default=",".join(map(str, PROTOCOL_QPS)))
    ap.add_argument("--gops", default="ld,ra")
    ap.add_argument("--ensemble", action="store_true",
                    help="--protocol: also restore with --ensemble (4 flips averaged, 4x slower)")
    ap.add_argument("--ungated", action="store_true",
                    help="--protocol: also the models at full strength, without their gate")
    ap.add_argument("--no-sr", action="store_true", help="--protocol: restore only")
    ap.add_argument("--no-restore", action="store_true", help="--protocol: sr2x only")
    ap.add_argument("--temporal", action="store_true",
                    help="--protocol clips: restore gain with vs without neighbour frames")
    ap.add_argument("--variants", action="store_true",
                    help="forward speed of the architecture variants (320x240, one run)")
    a = ap.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.protocol and a.temporal:
        from vidlab.cli.common import print_json

        clips = heldout_clips(a.frames, a.photo, SHARED / "carphone_pristine.mp4",
                              carphone_frames=a.limit or 30)
        print_json(temporal_ablation(a.restore, clips, conditions(
            a.codecs.split(","), [int(q) for q in a.qps.split(",")], a.gops.split(","))))
        return
    if a.protocol:
        protocol_main(a)
        return
    if a.variants:
        from vidlab.cli.common import print_json, print_table

        rows = variant_speed((240, 320), repeats=5)
        print_json(rows) if a.json else print_table(rows, title="variants: forward frames/s")
        return
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
