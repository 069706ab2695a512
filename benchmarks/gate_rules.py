"""Which margin should the quality gate keep? Cross-validation between calibration sets.

A gate is fitted on one set of calibration clips and scored on another it never saw, both
ways; per rule the script prints how often a clip of the unseen set loses more than the
issue's tolerance (0.05 dB), the worst clip, and the mean gain per codec × QP × GOP. The inputs
are per-frame measurements of one bundle, written by
`vidlab enhance calibrate BUNDLE --data SET --dry-run --save-frames FRAMES.json` (both at the
same `--qps`), so no model
runs here and the rules are compared on exactly the same frames (the baseline is the rule of
the gates shipped before session 20, `--floor-db 0.05`). Restore measurements only.

    python benchmarks/gate_rules.py FRAMES_A.json FRAMES_B.json [--qps 27,32,37] [--json]
    python benchmarks/gate_rules.py --gate BUNDLE FRAMES.json   # a bundle's own gate on them
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vidlab.enhance.calibrate import frames_by_condition, load_measurement
from vidlab.enhance.gate import (
    NEAR_LOSSLESS_QP,
    CalibrationFrame,
    QualityGate,
    calibrate_gate,
    gated_clip_gains,
)

RULES = [  # (floor_db, headroom): the earlier shipped rule first, the default last
    (0.05, 0.0), (0.03, 0.0), (0.02, 0.0), (0.0, 0.0), (0.0, 0.25), (0.0, 0.5)]
TOLERANCE_DB = -0.05


def gated_gains(gate: QualityGate, frames: list[CalibrationFrame]) -> dict[str, dict[str, float]]:
    """condition → clip → mean luma gain (dB) under `gate` (restore: one codec per condition)."""
    return {cond: gated_clip_gains(fs, gate)
            for (_, cond), fs in frames_by_condition(frames).items()}


def cross_validate(a: list[CalibrationFrame], b: list[CalibrationFrame], grid: list[float],
                   floor: float, headroom: float) -> dict:
    """Fit on a, score on b, and the other way round."""
    scored: dict[str, list[dict[str, float]]] = {}
    for fit, test in ((a, b), (b, a)):
        gate = calibrate_gate(fit, grid, floor, near_lossless_qp=NEAR_LOSSLESS_QP,
                              headroom=headroom)
        for cond, clips in gated_gains(gate, test).items():
            scored.setdefault(cond, []).append(clips)
    every = [g for folds in scored.values() for clips in folds for g in clips.values()]
    return {"floor_db": floor, "headroom": headroom,
            "losses_past_tolerance": sum(g < TOLERANCE_DB for g in every),
            "worst_db": round(min(every), 3),
            "mean_db": {c: round(float(np.mean([np.mean(list(f.values())) for f in folds])), 3)
                        for c, folds in scored.items()}}


def score_gate(bundle: Path, measurement: Path) -> list[dict]:
    """A bundle's own gate on clips it was not calibrated on: per condition, mean and worst."""
    from vidlab.enhance.calibrate import weights_digest
    from vidlab.enhance.gate import load_gate

    gate = load_gate(bundle)
    if gate is None:
        raise SystemExit(f"{bundle} has no gate.json")
    saved = load_measurement(measurement, weights_digest(bundle), "restore")
    return [{"condition": c, "mean_db": round(float(np.mean(list(g.values()))), 3),
             "worst_db": round(min(g.values()), 3)}
            for c, g in gated_gains(gate, saved["frames"]).items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("frames", type=Path, nargs="+", help="FRAMES_A FRAMES_B, or one with --gate")
    ap.add_argument("--gate", type=Path, help="score this bundle's own gate.json on FRAMES "
                                              "(measured on its weights) instead")
    ap.add_argument("--qps", default="27,32,37", help="QPs to show the mean gain of")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.gate:
        scored = [r for path in args.frames for r in score_gate(args.gate, path)]
        print(json.dumps(scored, indent=1) if args.json else "\n".join(
            f"{r['condition']:14} mean {r['mean_db']:+.3f} worst {r['worst_db']:+.3f}"
            for r in scored))
        return
    if len(args.frames) != 2:
        raise SystemExit("give two measurements to cross-validate (or one with --gate)")
    a, b = (load_measurement(path, task="restore") for path in args.frames)
    if a["qps"] != b["qps"]:
        raise SystemExit(f"measured at different QPs: {a['qps']} and {b['qps']}")
    grid = [float(q) for q in a["qps"]]
    rows = [cross_validate(a["frames"], b["frames"], grid, floor, headroom)
            for floor, headroom in RULES]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    shown = [f"QP{q}" for q in args.qps.split(",")]
    base = rows[0]
    for r in rows:
        means = {c: m for c, m in sorted(r["mean_db"].items())
                 if len(c.split()) > 1 and c.split()[1] in shown}
        baseline = float(np.mean([m for c, m in base["mean_db"].items() if c in means]))
        ratio = np.mean(list(means.values())) / baseline if baseline > 0 else float("nan")
        print(f"floor {r['floor_db']:.2f} headroom {r['headroom']:.2f}: "
              f"{r['losses_past_tolerance']} clips past {TOLERANCE_DB} dB, worst "
              f"{r['worst_db']:+.3f}; mean gain {ratio:.2f}x floor 0.05's | "
              + " ".join(f"{c.replace(' ', '')} {m:+.3f}" for c, m in means.items()))


if __name__ == "__main__":
    main()
