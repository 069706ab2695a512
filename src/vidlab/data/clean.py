"""Dataset cleaning: find unusable, duplicate and suspicious clips, report each with reasons.

Per file, only a few frames (spread over the whole video, the last one included so truncation
shows) are decoded small and grey. From them: blank (every frame near-constant), frozen (no
change between frames), and a perceptual hash (dHash of each sampled frame) for near-duplicates
such as re-encoded copies. Exact duplicates compare file content hashes. Outliers are clips
whose resolution or frame rate is far (×`outlier_factor`) from the dataset's median.

Nothing is ever modified, moved or deleted: the result is a list of kept entries and a report.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.data.manifest import META_KEYS, diagnose
from vidlab.data.parallel import Engine, parallel_map
from vidlab.digest import file_sha256

log = logging.getLogger(__name__)

REASONS = {
    "missing": "file does not exist",
    "empty": "file is empty",
    "unreadable": "not a video FFmpeg can read",
    "no_video_stream": "no video stream (audio-only or data file)",
    "truncated": "file ends early or frames fail to decode",
    "too_short": "fewer frames than one clip needs",
    "duplicate": "byte-identical to an earlier file with the same label",
    "near_duplicate": "looks like another clip (e.g. a re-encoded copy)",
    "label_conflict": "same or near-same content as a clip with a DIFFERENT label",
    "blank": "every sampled frame is near-constant",
    "frozen": "no change between sampled frames",
    "resolution_outlier": "resolution far from the dataset's median",
    "fps_outlier": "frame rate far from the dataset's median",
}
"""Every reason code the cleaner reports, with what it means."""
DEFAULT_DROP = frozenset({"missing", "empty", "unreadable", "no_video_stream", "truncated",
                          "too_short", "duplicate", "label_conflict", "blank", "frozen"})
"""Reasons that remove a clip from the clean manifest by default; the rest are reported only."""


@dataclass
class CleanResult:
    """Kept entries, the per-file report and groups of files whose labels conflict."""

    entries: list[dict[str, Any]]
    files: list[dict[str, Any]]
    conflicts: list[list[dict[str, str]]] = field(default_factory=list)
    drop: frozenset[str] = DEFAULT_DROP
    settings: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for f in self.files:
            for r in f["reasons"]:
                out[r] += 1
        return dict(out)

    def summary(self) -> dict[str, Any]:
        return {"total": len(self.files), "kept": len(self.entries),
                "dropped": len(self.files) - len(self.entries), "by_reason": self.counts(),
                "label_conflicts": len(self.conflicts)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: summary, settings, reason glossary, conflicts and every file."""
        return {"summary": self.summary(), "settings": self.settings, "reasons": REASONS,
                "label_conflicts": self.conflicts, "files": self.files}


def analyse_file(job: tuple[str, int]) -> dict[str, Any]:
    """Probe and sample one file: metadata, content key, frame hashes, blank/frozen measures."""
    path, num_samples = job
    out: dict[str, Any] = {"path": path}
    try:
        from vidlab.io import VideoReader

        reader = VideoReader(path, size=64, pixel_format="gray")
        info = reader.info
        out["meta"] = {k: getattr(info, k) for k in META_KEYS}
        n = len(reader)
        idx = np.unique(np.linspace(0, n - 1, min(num_samples, n)).round().astype(int))
        frames = reader.get_frames(idx).astype(np.float32)
        reader.close()
        if info.truncated:
            out["error"] = ("truncated", f"file ends early: {n} frames readable")
    except Exception as exc:  # any failure is a finding about the file, not a crash
        code, why = diagnose(path, exc)
        if code == "unreadable" and "decode" in why.lower():
            code = "truncated"
        out["error"] = (code, why)
        return out
    out["content_key"] = _quick_hash(path)
    out["frame_std"] = float(frames.reshape(len(frames), -1).std(axis=1).max())
    diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2)) if len(frames) > 1 else [0.0]
    out["motion"] = float(np.max(diffs))
    out["dhash"] = [_dhash(f) for f in _resample(frames, num_samples)]
    return out


def _analysis_lost(job: tuple[str, int], exc: BaseException) -> dict[str, Any]:
    """The row of a file whose analysis died with its worker (a crash inside FFmpeg)."""
    return {"path": job[0], "error": ("unreadable", f"the check's worker failed "
                                                    f"({type(exc).__name__}: {exc})")}


def _resample(frames: np.ndarray, k: int) -> np.ndarray:
    return frames[np.linspace(0, len(frames) - 1, k).round().astype(int)]


def _dhash(frame: np.ndarray) -> list[int]:
    """Two 64-bit difference hashes of one 9×9 thumbnail: signs of its horizontal and of its
    vertical gradients. One direction alone is near-constant on smooth gradient backgrounds (a
    handful of set bits), so unrelated clips would collide."""
    thumb = np.array([[block.mean() for block in np.array_split(row, 9, axis=1)]
                      for row in np.array_split(frame, 9, axis=0)])
    horizontal = thumb[:8, 1:] > thumb[:8, :-1]
    vertical = thumb[1:, :8] > thumb[:-1, :8]
    return [int(np.packbits(bits.reshape(-1)).view(">u8")[0]) for bits in (horizontal, vertical)]


def _quick_hash(path: str, chunk: int = 1 << 20) -> str:
    """size + SHA-256 of the first and last MiB: equal for identical files, cheap for big ones
    (candidates are confirmed with a full hash)."""
    p = Path(path)
    size = p.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with p.open("rb") as f:
        h.update(f.read(chunk))
        if size > 2 * chunk:
            f.seek(-chunk, 2)
            h.update(f.read(chunk))
    return h.hexdigest()


def clean(entries: list[dict[str, Any]], min_frames: int = 16, num_samples: int = 8,
          blank_std: float = 3.0, frozen_motion: float = 0.6, near_dup_bits: float = 8.0,
          outlier_factor: float = 2.5, drop: set[str] | frozenset[str] = DEFAULT_DROP,
          workers: int | None = None, progress: bool = False,
          engine: Engine | str | None = None) -> CleanResult:
    """Check every entry; return the entries to keep and a per-file report with reason codes.

    `min_frames`: clips with fewer frames are `too_short`. `blank_std`/`frozen_motion`: luma
    (0–255) thresholds on the sampled frames' spread and change. `near_dup_bits`: dHash distance (of 64 bits, the
    mean of the horizontal and vertical hashes) that every sampled frame of two clips of about
    the same duration must stay within for them to be near-duplicates. `drop`: reason codes that
    remove a clip (default `DEFAULT_DROP`); other findings are reported only. `engine`
    spreads the per-file checks (local processes, or Ray Data tasks); the verdicts, made here from
    the per-file results, are the same whatever the engine.
    """
    unknown = set(drop) - set(REASONS)
    if unknown:
        raise ValueError(f"unknown reason codes: {', '.join(sorted(unknown))}")
    jobs = [(str(e["path"]), num_samples) for e in entries]
    found = parallel_map(analyse_file, jobs, workers, progress, desc="checking", chunksize=4,
                         engine=engine, on_error=_analysis_lost)
    reasons: list[dict[str, str]] = [{} for _ in entries]
    for r, a in zip(reasons, found, strict=True):
        if "error" in a:
            r[a["error"][0]] = a["error"][1]
            continue
        n = a["meta"]["num_frames"]
        if n < min_frames:
            r["too_short"] = f"{n} frames, a clip needs {min_frames}"
        if a["frame_std"] < blank_std:
            r["blank"] = f"max luma std {a['frame_std']:.2f} < {blank_std}"
        elif a["motion"] < frozen_motion:
            r["frozen"] = f"max mean abs change {a['motion']:.2f} < {frozen_motion}"
    ok = [i for i, a in enumerate(found) if "error" not in a]
    conflicts = _duplicates(entries, found, reasons, ok, near_dup_bits)
    _outliers(found, reasons, ok, outlier_factor)

    kept, files = [], []
    for e, a, r in zip(entries, found, reasons, strict=True):
        dropped = any(code in drop for code in r)
        files.append({"path": e["path"], "label": e["label"], "kept": not dropped,
                      "reasons": sorted(r), "details": r})
        if not dropped:
            row = dict(e)
            row.update({k: v for k, v in a.get("meta", {}).items() if row.get(k) is None})
            row.pop("error", None)
            kept.append(row)
    for group in conflicts:
        log.warning("LABEL CONFLICT: same content with different labels: %s",
                    "; ".join(f"{g['path']} ({g['label']})" for g in group))
    settings = {"min_frames": min_frames, "num_samples": num_samples, "blank_std": blank_std,
                "frozen_motion": frozen_motion, "near_dup_bits": near_dup_bits,
                "outlier_factor": outlier_factor, "drop": sorted(drop)}
    return CleanResult(kept, files, conflicts, frozenset(drop), settings)


def _duplicates(entries: list[dict[str, Any]], found: list[dict[str, Any]],
                reasons: list[dict[str, str]], ok: list[int],
                near_dup_bits: float) -> list[list[dict[str, str]]]:
    """Mark exact and near duplicates; return groups of files whose labels conflict."""
    links: list[tuple[int, int, str]] = []
    by_key: dict[str, list[int]] = defaultdict(list)
    for i in ok:
        by_key[found[i]["content_key"]].append(i)
    exact: set[tuple[int, int]] = set()
    for members in by_key.values():
        if len(members) < 2:
            continue
        full: dict[str, list[int]] = defaultdict(list)
        for i in members:
            full[file_sha256(entries[i]["path"])].append(i)
        for same in full.values():
            links += [(same[0], j, "exact") for j in same[1:]]
            exact |= {(same[0], j) for j in same[1:]}
    # near-duplicates: the largest Hamming distance between the clips' frame hashes, sampled at the
    # same relative times — so only clips of about the same duration compare (a re-encode keeps
    # it; without this, unrelated clips with similar smooth backgrounds collide on 64 bits)
    cand = [i for i in ok if "blank" not in reasons[i] and "frozen" not in reasons[i]]
    if len(cand) > 1:
        hashes = np.array([found[i]["dhash"] for i in cand], dtype=np.uint64)
        durations = np.array([_duration(found[i]["meta"]) for i in cand])
        for a in range(len(cand) - 1):
            # per frame: mean of the two hashes' distances; per pair: the worst frame
            dist = np.bitwise_count(hashes[a + 1:] ^ hashes[a]).mean(axis=2).max(axis=1)
            other = durations[a + 1:]
            # written as "not too different" so an unknown (NaN) duration compares with all
            same_length = ~(np.abs(other - durations[a])
                            > np.maximum(0.25, 0.1 * np.maximum(other, durations[a])))
            for b in np.nonzero((dist <= near_dup_bits) & same_length)[0]:
                pair = (cand[a], cand[a + 1 + int(b)])
                if pair not in exact:
                    links.append((*pair, f"{float(dist[b]):.1f} bits"))
    parent = {}

    def root(i: int) -> int:
        while parent.get(i, i) != i:
            i = parent[i]
        return i

    for i, j, _ in links:
        parent[root(j)] = root(i)
    clusters: dict[int, list[int]] = defaultdict(list)
    for i, j, _ in links:
        for k in (i, j):
            if k not in clusters[root(k)]:
                clusters[root(k)].append(k)
    conflicts = []
    for members in clusters.values():
        members.sort()
        labels = {str(entries[k]["label"]) for k in members}
        if len(labels) > 1:
            others = ", ".join(f"{entries[k]['path']} ({entries[k]['label']})" for k in members)
            for k in members:
                reasons[k]["label_conflict"] = f"same content as: {others}"
            conflicts.append([{"path": entries[k]["path"], "label": str(entries[k]["label"])}
                              for k in members])
    for i, j, how in links:
        if "label_conflict" in reasons[j]:
            continue
        if how == "exact":
            reasons[j]["duplicate"] = f"identical to {entries[i]['path']}"
        else:
            reasons[j]["near_duplicate"] = f"like {entries[i]['path']} ({how})"
    return conflicts


def _duration(meta: dict[str, Any]) -> float:
    """Seconds from the probe (NaN when unknown: such clips compare with every other)."""
    d = meta.get("duration")
    if d:
        return float(d)
    n, fps = meta.get("num_frames"), meta.get("fps")
    return float(n) / float(fps) if n and fps else float("nan")


def _outliers(found: list[dict[str, Any]], reasons: list[dict[str, str]], ok: list[int],
              factor: float) -> None:
    if len(ok) < 5:
        return  # too few clips for a meaningful median
    short = {i: min(found[i]["meta"]["width"], found[i]["meta"]["height"]) for i in ok}
    fps = {i: found[i]["meta"]["fps"] for i in ok if found[i]["meta"]["fps"]}
    for name, values, unit in (("resolution_outlier", short, "px short side"),
                               ("fps_outlier", fps, "fps")):
        if not values:
            continue
        med = statistics.median(values.values())
        for i, v in values.items():
            if v > 0 and med > 0 and max(v / med, med / v) > factor:
                reasons[i][name] = f"{v:g} {unit}, median {med:g}"
