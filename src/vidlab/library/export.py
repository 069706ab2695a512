"""What leaves a library: its statistics, manifests of found segments, the human corrections.

Manifests are JSON Lines in the project's manifest shape (`path`, `label`) plus the segment's
`start`/`end` in seconds, so the moments a search found — or the labels people corrected — are
a list to train on (the human-in-the-loop half of monitoring and maintenance).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vidlab.errors import LibraryError, OutputExistsError
from vidlab.library.index import LibraryIndex
from vidlab.library.search import BRIDGE, search_label

MAX_LABEL_CHARS = 200
MAX_WHO_CHARS = 200


def index_stats(index: LibraryIndex) -> dict[str, Any]:
    """`vidlab index stats`: videos, windows, hours, the labels histogram (top-1 label of each
    window), failures and corrections."""
    db = index.db
    videos = db.videos()
    return {"index": str(index.path), "root": str(index.root), "model": db.meta("model"),
            "videos": len(videos), "windows": db.window_count(),
            "hours": round(sum(v["duration"] for v in videos.values()) / 3600, 4),
            "labels": db.label_histogram(), "failed": len(db.failures()),
            "corrections": len(db.corrections()), "window": db.meta("window"),
            "stride": db.meta("stride"), "embedding": db.meta("embedding"),
            "dim": db.meta("dim"), "updated": db.meta("updated")}


def write_jsonl(rows: list[dict[str, Any]], out: str | Path, overwrite: bool = False) -> Path:
    """Write rows atomically; never replaces a file unless `overwrite`."""
    p = Path(out)
    if p.exists() and not overwrite:
        raise OutputExistsError(path=p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    with tmp.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, p)
    return p


def export_segments(index: LibraryIndex, label: str, out: str | Path, *, min_prob: float = 0.0,
                    top: int | None = None, bridge: int = BRIDGE,
                    overwrite: bool = False) -> dict[str, Any]:
    """`vidlab index export --label L -o clips.jsonl`: one manifest row per found segment
    (`search_label`'s segments, `bridge` as there)."""
    found = search_label(index, label, top=top, min_prob=min_prob, bridge=bridge)
    rows = [{"path": r["path"], "label": r["label"], "start": r["start"], "end": r["end"],
             "score": r["score"], "source": "index"} for r in found]
    path = write_jsonl(rows, out, overwrite)
    return {"output": str(path), "segments": len(rows),
            "seconds": round(sum(r["end"] - r["start"] for r in rows), 3)}


def add_correction(index: LibraryIndex, video: str, start: float, end: float, label: str,
                   who: str) -> dict[str, Any]:
    """Record that `[start, end]` of an indexed video is `label` (by `who`, now); the old
    label is what the index showed there before (the label covering most of the range)."""
    rel = index.relative(video) if Path(video).is_absolute() else video
    if not rel or index.db.video(rel) is None:
        raise LibraryError("is not an indexed video", video)
    label, who = str(label).strip(), str(who).strip()
    if not label or len(label) > MAX_LABEL_CHARS:
        raise LibraryError(f"a corrected label must be 1–{MAX_LABEL_CHARS} characters")
    if not who or len(who) > MAX_WHO_CHARS:
        raise LibraryError(f"who made the correction must be 1–{MAX_WHO_CHARS} characters")
    duration = float(index.db.video(rel)["duration"])
    if not (0 <= start < end) or start > duration + 1e-3:
        raise LibraryError(f"range {start}–{end} s is not inside the video (0–{duration:g} s)",
                           rel)
    return index.db.add_correction(rel, float(start), float(min(end, duration)),
                                   _label_over(index, rel, start, end), label, who)


def _label_over(index: LibraryIndex, rel: str, start: float, end: float) -> str | None:
    from vidlab.library.search import video_timeline

    cover: dict[str, float] = {}
    for s in video_timeline(index, rel)["segments"]:
        overlap = min(end, s["end"]) - max(start, s["start"])
        if overlap > 0:
            cover[s["label"]] = cover.get(s["label"], 0.0) + overlap
    return max(cover, key=lambda k: cover[k]) if cover else None


def export_corrections(index: LibraryIndex, out: str | Path, overwrite: bool = False
                       ) -> dict[str, Any]:
    """`vidlab index corrections -o fixes.jsonl`: every correction as a manifest row
    (`path`, `label` = the new label, `start`, `end`, `old_label`, `who`, `when`)."""
    rows = [{"path": str(index.absolute(c["path"])), "label": c["new"], "start": c["start"],
             "end": c["end"], "old_label": c["old"], "who": c["who"], "when": c["when"],
             "source": "correction"} for c in index.db.corrections()]
    path = write_jsonl(rows, out, overwrite)
    return {"output": str(path), "corrections": len(rows)}
