"""Calibrating a bundle's quality gate (`vidlab.enhance.gate`) on clips of your own.

The clips are encoded with x264 and x265 at constant QPs from near-lossless to extreme, with
low-delay and random-access GOPs, decoded the way `vidlab enhance` decodes a user's file (QP
from the stream), and enhanced at full strength; per codec and QP the gate keeps the strength
that gains most while no clip × encoding loses. Use clips that are neither training nor test
clips (the committed bundles used held-out segments of their training sources).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.digest import file_sha256
from vidlab.enhance.gate import (
    HEADROOM,
    MIN_GAIN_DB,
    NEAR_LOSSLESS_QP,
    CalibrationFrame,
    QualityGate,
    calibrate_gate,
    calibration_frame,
    clip_gains,
    codec_family,
    gated_clip_gains,
    save_gate,
)
from vidlab.enhance.model import check_lowcut
from vidlab.enhance.protocol import CODECS, GOPS, Condition, coded, conditions
from vidlab.errors import ConfigError
from vidlab.io.reader import EXACT_RGB
from vidlab.progress import progress

log = logging.getLogger(__name__)

CALIBRATION_QPS = (12, 18, 22, 27, 32, 37, 42, 47, 51)
UNCOMPRESSED_QP = 0.0
"""The QP given to frames known to be uncompressed (sr2x's clean 2x-downscaled inputs)."""


def calibration_clips(data: str | Path, num_clips: int, num_frames: int,
                      max_size: tuple[int, int] = (144, 176), seed: int = 0) -> dict[str, np.ndarray]:
    """`num_clips` clean clips from `data` (folder tree or manifest), `num_frames` each from the
    middle, centre-cropped to at most `max_size` (sides multiples of 4)."""
    from vidlab.enhance.pool import clip_paths
    from vidlab.io import VideoReader

    paths = clip_paths(data)
    names = clip_names(paths)
    order = np.random.default_rng(seed).permutation(len(paths))
    clips: dict[str, np.ndarray] = {}
    for i in order:
        if len(clips) == num_clips:
            break
        try:
            with VideoReader(paths[i], pixel_format=EXACT_RGB) as r:
                n = len(r)
                if n < num_frames:
                    continue
                start = (n - num_frames) // 2
                frames = r.get_frames(range(start, start + num_frames))
        except Exception as exc:  # a bad clip is skipped, never fatal
            log.warning("%s: skipped for calibration (%s)", paths[i], exc)
            continue
        h, w = frames.shape[1:3]
        ch, cw = min(h, max_size[0]) // 4 * 4, min(w, max_size[1]) // 4 * 4
        if min(ch, cw) < 16:
            continue
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        clips[names[i]] = np.ascontiguousarray(frames[:, y0:y0 + ch, x0:x0 + cw])
    if not clips:
        from vidlab.errors import DatasetError

        raise DatasetError(f"no clip with {num_frames} frames of at least 16 px to calibrate on",
                           data)
    return clips


def clip_names(paths: list[Path]) -> list[str]:
    """Each clip's name: its path under the folder all clips share, without the suffix — two
    sets of clips side by side often both hold a `clip_0000`, and "no clip loses" must count
    both. A flat folder's clips are named by their stems."""
    import os

    root = Path(os.path.commonpath([p.parent for p in paths]))
    names = [p.relative_to(root).with_suffix("").as_posix() for p in paths]
    if len(set(names)) < len(names):  # clip.mp4 beside clip.mkv: keep the suffixes
        names = [p.relative_to(root).as_posix() for p in paths]
    return names


CONDITION_SEP = " | "
"""A calibration frame's clip key is `clip | condition` (`x264 QP37 LD`): "no clip loses" then
holds for each encoding of each clip."""


def frames_by_condition(frames: list[CalibrationFrame]
                        ) -> dict[tuple[str, str], list[CalibrationFrame]]:
    """(codec family, condition label) → its frames, sorted by family and label."""
    groups: dict[tuple[str, str], list[CalibrationFrame]] = {}
    for f in frames:
        groups.setdefault((f.family, f.clip.rpartition(CONDITION_SEP)[2]), []).append(f)
    return dict(sorted(groups.items()))


def measure_frames(model, clips: dict[str, np.ndarray], conds: list[Condition],
                   task: str) -> list[CalibrationFrame]:
    """Every clip through every condition and the model at full strength, summarised."""
    from vidlab.enhance.degrade import X265_MIN_SIDE, downscale2x, upscale2x_bicubic
    from vidlab.enhance.infer import enhance_stream

    out: list[CalibrationFrame] = []
    jobs = [(name, c) for name in clips for c in [None, *conds]]
    for name, cond in progress(jobs, total=len(jobs), desc="calibrating"):
        clean = clips[name]
        source = downscale2x(clean) if task == "sr2x" else clean
        if cond is None:  # uncompressed input (QP 0 in either codec's table): sr2x only
            if task != "sr2x":
                continue
            frames, qps, families = source, [UNCOMPRESSED_QP] * len(source), ["h264", "hevc"]
        else:
            if cond.codec == "h265" and min(source.shape[1:3]) < X265_MIN_SIDE:
                continue
            clip = coded(source, cond)
            frames, qps, families = clip.frames, clip.qps, [codec_family(clip.codec)]
        enhanced = list(enhance_stream(model, frames, qps=qps, codec=families[0]))
        key = f"{name}{CONDITION_SEP}{cond.label if cond else 'uncompressed'}"
        for f, qp, c, e in zip(frames, qps, clean, enhanced, strict=True):
            base = upscale2x_bicubic(f[None])[0] if task == "sr2x" else f
            out.extend(calibration_frame(key, fam, qp, c, base, e) for fam in families)
    return out


def calibrate_bundle(bundle: str | Path, data: str | Path, num_clips: int = 8,
                     num_frames: int = 10, qps: tuple[int, ...] = CALIBRATION_QPS,
                     codecs: tuple[str, ...] = CODECS, gops: tuple[str, ...] = GOPS,
                     floor_db: float = 0.0, min_gain_db: float = MIN_GAIN_DB, seed: int = 0,
                     write: bool = True, lowcut: int | None = None,
                     headroom: float = HEADROOM) -> dict[str, Any]:
    """Measure the bundle's gate on clips from `data` and write it into the bundle
    (`gate.json`; `write=False` only measures). Returns the gate, the gains it keeps and the
    per-frame measurements (`measurements`: what `refit_bundle` takes to fit a gate with
    other thresholds or more clips, no model run needed).

    With the same `seed`, the clips are the first of the validation clips that
    `vidlab enhance train` held out of a run on the same `data`. `lowcut` (odd px, 0: off)
    switches the model's low-cut (`EnhanceNet.lowcut`) before measuring; written with the gate,
    since the gate is only valid for the model it measured.
    """
    from vidlab.enhance.infer import load_enhancer

    _check_headroom(headroom)
    model, b = load_enhancer(bundle)
    if lowcut is not None:
        model.lowcut = check_lowcut(lowcut, ConfigError)
    task = b.config.get("enhance_task", "restore")
    clips = calibration_clips(data, num_clips, num_frames, seed=seed)
    frames = measure_frames(model, clips, conditions(codecs, qps, gops), task)
    result = _fit(b, frames, qps, task, floor_db, min_gain_db, headroom,
                  dict(data=str(data), clip_names=sorted(clips), codecs=list(codecs),
                       gops=list(gops), frames_per_clip=num_frames),
                  lowcut, write)
    result["measurements"] = {"weights_sha256": weights_digest(b.path), "lowcut": model.lowcut,
                              "task": task, "qps": [int(q) for q in qps], "data": str(data),
                              "clips": len(clips),
                              "frames": [dataclasses.asdict(f) for f in frames]}
    return result


def refit_bundle(bundle: str | Path, measurements: list[str | Path],
                 qps: tuple[int, ...] | None = None, floor_db: float = 0.0,
                 min_gain_db: float = MIN_GAIN_DB, headroom: float = HEADROOM,
                 write: bool = True) -> dict[str, Any]:
    """Fit the bundle's gate from saved measurements (`vidlab enhance calibrate --save-frames`)
    of one or more clip sets, without running the model: other thresholds, or a larger
    calibration set made of several. Every file must have been measured on this bundle's
    weights and task, at the same QPs (`qps`, if given, must be those) and with the same
    low-cut, which is recorded with the gate."""
    from vidlab.bundle import load_bundle

    _check_headroom(headroom)
    if not measurements:
        raise ConfigError("no measurements to fit a gate from")
    b = load_bundle(bundle)
    task = b.config.get("enhance_task", "restore")
    digest, frames, sets = weights_digest(b.path), [], []
    for i, path in enumerate(measurements):
        saved = load_measurement(Path(path), digest, task)
        prefix = f"{i}:{Path(path).stem}/" if len(measurements) > 1 else ""
        frames += [dataclasses.replace(f, clip=prefix + f.clip) for f in saved["frames"]]
        # by name and content: a path would mean nothing on another machine
        sets.append({"file": Path(path).name, "sha256": file_sha256(path),
                     "data": saved.get("data"), "clips": saved.get("clips"),
                     "qps": saved["qps"], "lowcut": saved["lowcut"]})
    for key in ("qps", "lowcut"):
        if any(m[key] != sets[0][key] for m in sets):
            raise ConfigError(f"the measurements were taken with different {key}: "
                              + ", ".join(str(m[key]) for m in sets))
    measured_qps, lowcut = sets[0]["qps"], sets[0]["lowcut"]
    if qps is not None and [int(q) for q in qps] != measured_qps:
        raise ConfigError(f"the measurements were taken at QPs {measured_qps}; a gate is fitted "
                          f"at the QPs its frames were measured at (got {list(qps)})")
    return _fit(b, frames, measured_qps, task, floor_db, min_gain_db, headroom,
                dict(measurements=[{k: m[k] for k in ("file", "sha256", "data", "clips")}
                                   for m in sets]), lowcut, write)


def load_measurement(path: Path, digest: str | None = None,
                     task: str | None = None) -> dict[str, Any]:
    """A `--save-frames` file, its frames as `CalibrationFrame`s; checked against the weights'
    `digest` and the `task` of the bundle it is to calibrate, where given."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a calibration measurement ({exc})") from exc
    if isinstance(saved, list):
        raise ConfigError(f"{path}: a measurement from before vidlab recorded which weights it "
                          "was taken on; measure again with --save-frames")
    missing = [k for k in ("weights_sha256", "lowcut", "task", "qps", "frames")
               if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise ConfigError(f"{path}: not a calibration measurement (no {', '.join(missing)})")
    if digest is not None and saved["weights_sha256"] != digest:
        raise ConfigError(f"{path} was measured on other weights than this bundle's: a gate "
                          "holds only for the model it measured")
    if task is not None and saved["task"] != task:
        raise ConfigError(f"{path} measured a {saved['task']} model; this bundle is {task}")
    try:
        saved["frames"] = [CalibrationFrame(**f) for f in saved["frames"]]
    except TypeError as exc:
        raise ConfigError(f"{path}: a frame is not a calibration measurement ({exc})") from exc
    if not saved["frames"]:
        raise ConfigError(f"{path}: no frames were measured")
    return saved


def _fit(b, frames: list[CalibrationFrame], qps, task: str, floor_db: float,
         min_gain_db: float, headroom: float, info: dict, lowcut: int | None,
         write: bool) -> dict[str, Any]:
    """The gate of `frames`, written into bundle `b` with the low-cut it was measured with."""
    grid = [float(q) for q in qps] + ([UNCOMPRESSED_QP] if task == "sr2x" else [])
    gate = calibrate_gate(frames, grid, floor_db, min_gain_db,
                          near_lossless_qp=NEAR_LOSSLESS_QP if task == "restore" else 0.0,
                          headroom=headroom)
    gate.info.update(task=task, **info)
    if write:  # the low-cut and the gate measured with it land together, after measuring
        if lowcut is not None:
            record_lowcut(b, lowcut)
        save_gate(b.path, gate)
    return {"bundle": str(b.path), "gate": gate.to_dict(),
            "gain_db": _gains_by_qp(frames, gate)}


def _check_headroom(headroom: float) -> None:
    if not headroom >= 0:  # NaN too: it would switch the margin off
        raise ConfigError(f"headroom must be 0 or more (a share of the strength), got {headroom}")


def weights_digest(bundle_dir: Path) -> str:
    """SHA-256 of the bundle's weights: which model a measurement belongs to."""
    from vidlab.bundle import WEIGHTS_FILE

    return file_sha256(Path(bundle_dir) / WEIGHTS_FILE)


def record_lowcut(bundle, lowcut: int) -> None:
    """Record `lowcut` in the bundle's `config.json` (model kwargs; absent when 0), so every
    later load runs the model as it was calibrated."""
    from vidlab.bundle import CONFIG_FILE, write_json_atomic

    kwargs = bundle.config.setdefault("model", {}).setdefault("kwargs", {})
    kwargs.pop("lowcut", None)
    if lowcut:
        kwargs["lowcut"] = lowcut
    write_json_atomic(bundle.path / CONFIG_FILE, bundle.config)


def _gains_by_qp(frames: list[CalibrationFrame], gate: QualityGate) -> dict:
    """Mean / worst clip gain (dB) per codec family and QP, at full strength and gated."""
    rows: dict[str, dict[str, float]] = {}
    for (family, cond), sel in frames_by_condition(frames).items():
        full, gated = clip_gains(sel, 1.0), gated_clip_gains(sel, gate)
        rows[f"{family} {cond}"] = {"full_mean": round(float(np.mean(list(full.values()))), 3),
                                    "full_worst": round(min(full.values()), 3),
                                    "gated_mean": round(float(np.mean(list(gated.values()))), 3),
                                    "gated_worst": round(min(gated.values()), 3)}
    return rows
