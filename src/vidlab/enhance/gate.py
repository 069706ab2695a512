"""Do no harm: how much of the model's correction to keep, by the input's quantiser (QP).

A restoration network trained on many compression strengths still over-smooths mildly
compressed video, where there is little to restore and fine texture to lose. The gate scales
the model's residual (output minus its base: the input frame, or its bicubic upscaling for
sr2x) by a strength `alpha(qp)` in [0, 1] measured per codec on calibration clips that are
neither training nor test clips: at each calibrated QP the strength is the one that gains most
on average while no calibration clip loses (`calibrate_gate`). Where the strength is 0 the
model is not run at all (pass-through). Frames whose QP is unknown (no H.264 QP map, no
x264/x265 settings in the stream) get the `blind` strength: the largest one that harmed no
calibration clip at any QP.

The gate travels in the bundle as `gate.json`; a bundle without one runs at full strength.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

GATE_FILE = "gate.json"
NEAR_LOSSLESS_QP = 20.0
"""Below this QP a frame is passed through: at QP 18 the decode → RGB → re-encode round trip
alone cost a held-out clip 2 dB (45.2 → 43.1 dB, output CRF 0, `vidlab quality`), more than
any model gains there; a whole stream this fine is handed back as its own packets."""
ALPHAS = np.round(np.linspace(0.0, 1.0, 21), 3)
"""Strengths tried by calibration."""
HEVC_CODECS = ("hevc", "h265")


def codec_family(codec: str | None) -> str:
    """`h264`, `hevc` or `other` (the gate's tables are per family)."""
    name = (codec or "").lower()
    if name in ("h264", "avc", "libx264"):
        return "h264"
    if name in HEVC_CODECS or name == "libx265":
        return "hevc"
    return "other"


@dataclass
class QualityGate:
    """Strength tables `{family: [[qp, alpha], ...]}` (ascending QP) and a blind strength."""

    tables: dict[str, list[list[float]]] = field(default_factory=dict)
    blind: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    near_lossless_qp: float = 0.0
    """Frames below this QP are passed through whatever the tables say (restore gates:
    `NEAR_LOSSLESS_QP`; sr2x cannot pass through, its output is twice the size)."""

    def alpha(self, qp: float | None, codec: str | None = None) -> float:
        """Strength for a frame of quantiser `qp` from `codec` (None: unknown → `blind`).

        A frame takes the strength of the highest calibrated QP at or below its own (the
        frames calibrated there: a frame between two calibrated QPs gets exactly the strength
        measured on its kind); below the lowest calibrated QP, the lowest's. A codec without
        its own table uses the most cautious table at that QP.
        """
        if qp is None or not self.tables:
            return self.blind
        if qp < self.near_lossless_qp:
            return 0.0
        family = codec_family(codec)
        tables = [self.tables[family]] if family in self.tables else list(self.tables.values())
        return float(min(_interp(qp, t) for t in tables))

    def to_dict(self) -> dict[str, Any]:
        return {"tables": self.tables, "blind": self.blind,
                "near_lossless_qp": self.near_lossless_qp, "info": self.info}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QualityGate:
        return cls(tables={k: [list(map(float, p)) for p in v] for k, v in d["tables"].items()},
                   blind=float(d.get("blind", 0.0)), info=dict(d.get("info", {})),
                   near_lossless_qp=float(d.get("near_lossless_qp", 0.0)))


def _interp(qp: float, table: list[list[float]]) -> float:
    qps = np.asarray([q for q, _ in table])
    return float(table[_bin(qp, qps)][1])


def _bin(qp: float, grid: np.ndarray) -> int:
    """Index of the highest grid QP at or below `qp` (0 below the grid); `grid` ascending."""
    return max(int(np.searchsorted(grid, qp + 1e-9, side="right")) - 1, 0)


def load_gate(bundle_dir: str | Path) -> QualityGate | None:
    """The bundle's gate, or None when it has none (then the model runs at full strength)."""
    path = Path(bundle_dir) / GATE_FILE
    if not path.is_file():
        return None
    from vidlab.errors import BundleError

    try:
        return QualityGate.from_dict(json.loads(path.read_text()))
    except KeyError as exc:
        raise BundleError(f"{GATE_FILE} is not a quality gate: no {exc} field", path) from exc
    except (ValueError, TypeError, AttributeError) as exc:
        raise BundleError(f"{GATE_FILE} is not a quality gate ({exc})", path) from exc


def save_gate(bundle_dir: str | Path, gate: QualityGate) -> Path:
    """Write `gate.json` into the bundle (atomic; the weights are not touched)."""
    from vidlab.bundle import write_json_atomic

    path = Path(bundle_dir) / GATE_FILE
    write_json_atomic(path, gate.to_dict())
    return path


def blend(base: np.ndarray, out: np.ndarray, alpha: float) -> np.ndarray:
    """`base + alpha * (out - base)` as uint8 (alpha 1: the model's output, 0: its base)."""
    if alpha >= 1.0:
        return out
    if alpha <= 0.0:
        return base
    mixed = base.astype(np.float32) + alpha * (out.astype(np.float32) - base.astype(np.float32))
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


@dataclass
class CalibrationFrame:
    """What calibration keeps of one frame: luma sums that give its MSE at any strength."""

    clip: str
    family: str
    qp: float | None
    mse_base: float
    cross: float
    """mean of (clean - base) * (out - base) over luma pixels"""
    power: float
    """mean of (out - base)^2 over luma pixels"""

    def mse(self, alpha: float) -> float:
        return self.mse_base - 2 * alpha * self.cross + alpha * alpha * self.power

    def gain_db(self, alpha: float) -> float:
        """Luma PSNR gain (dB) over the base at strength `alpha`."""
        return float(10 * np.log10(max(self.mse_base, 1e-6) / max(self.mse(alpha), 1e-6)))


def calibration_frame(clip: str, family: str, qp: float | None, clean: np.ndarray,
                      base: np.ndarray, out: np.ndarray) -> CalibrationFrame:
    """Summarise one frame (`uint8 H×W×3` clean, base and model output) for `calibrate_gate`."""
    from vidlab.io.quality import luma

    c, b, o = (luma(x).astype(np.float64) for x in (clean, base, out))
    e, r = c - b, o - b
    return CalibrationFrame(clip, family, qp, float((e * e).mean()), float((e * r).mean()),
                            float((r * r).mean()))


def clip_gains(frames: list[CalibrationFrame], alpha: float) -> dict[str, float]:
    """Mean luma PSNR gain (dB) per clip at strength `alpha` (PSNR averaged over frames)."""
    return _per_clip(frames, lambda f: f.gain_db(alpha))


def gated_clip_gains(frames: list[CalibrationFrame], gate: QualityGate) -> dict[str, float]:
    """Mean luma PSNR gain (dB) per clip, each frame at the strength `gate` gives it."""
    return _per_clip(frames, lambda f: f.gain_db(gate.alpha(f.qp, f.family)))


def _per_clip(frames: list[CalibrationFrame], gain) -> dict[str, float]:
    per: dict[str, list[float]] = {}
    for f in frames:
        per.setdefault(f.clip, []).append(gain(f))
    return {k: float(np.mean(v)) for k, v in per.items()}


MIN_GAIN_DB = 0.1
"""A strength is kept only where it gains at least this much on average: below it, the
re-encode of the output (and the RGB round trip) costs about as much as the model gives."""


HEADROOM = 0.5
"""Calibration's default margin in strength: a kept strength must harm no calibration clip even
at 1.5x. Footage the gate never saw needs a margin; one in dB (`floor_db`: every clip must
*gain* that much) shuts a whole QP off as soon as one clip cannot gain it, a cliff that a
larger calibration set only makes likelier; a margin in strength guards against the same
over-confidence without asking content that gains little to gain more."""


def best_alpha(frames: list[CalibrationFrame], floor_db: float = 0.0,
               min_gain_db: float = MIN_GAIN_DB, headroom: float = 0.0) -> float:
    """The strength with the highest mean gain over clips among those where no clip's gain is
    below `floor_db` and, at `1 + headroom` times the strength, no clip's is below zero;
    0 (pass-through) unless that mean gain reaches `min_gain_db`."""
    best, best_gain = 0.0, min_gain_db - 1e-9
    for a in ALPHAS[1:]:
        gains = clip_gains(frames, float(a))
        if min(gains.values()) < floor_db:
            continue
        if headroom and min(clip_gains(frames, float(a) * (1 + headroom)).values()) < 0:
            continue
        mean = float(np.mean(list(gains.values())))
        if mean > best_gain:
            best, best_gain = float(a), mean
    return best


def calibrate_gate(frames: list[CalibrationFrame], qps: list[float],
                   floor_db: float = 0.0, min_gain_db: float = MIN_GAIN_DB,
                   near_lossless_qp: float = 0.0, headroom: float = 0.0) -> QualityGate:
    """A gate from calibration frames: per codec family and calibrated QP (a frame belongs to
    the highest of `qps` at or below its QP, as `QualityGate.alpha` looks it up), the best
    strength that harms no clip (`best_alpha`: with `floor_db` and `headroom` as margins);
    `blind` harms no clip of any family or QP. The clip key
    should name the source clip *and* its condition, so that "no clip loses" holds for each
    encoding of each clip. Frames below `near_lossless_qp` are left out of the tables (the
    gate passes them through whatever the tables say), not out of `blind`."""
    grid = np.asarray(sorted(qps), dtype=float)
    tables: dict[str, list[list[float]]] = {}
    for family in sorted({f.family for f in frames}):
        known = [f for f in frames if f.family == family and f.qp is not None
                 and f.qp >= near_lossless_qp]
        rows = []
        for q in grid:
            near = [f for f in known if grid[_bin(f.qp, grid)] == q]
            if near:
                rows.append([float(q), best_alpha(near, floor_db, min_gain_db, headroom)])
        if rows:
            tables[family] = rows
    return QualityGate(tables=tables, blind=best_alpha(frames, floor_db, min_gain_db, headroom),
                       near_lossless_qp=near_lossless_qp,
                       info={"qps": [float(q) for q in grid], "floor_db": floor_db,
                             "headroom": headroom,
                             "min_gain_db": min_gain_db, "frames": len(frames),
                             "clips": len({f.clip for f in frames})})
