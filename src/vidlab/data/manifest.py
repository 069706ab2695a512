"""Manifests: a folder-per-class tree or a user's CSV/JSONL list becomes a list of clip entries.

An entry is a dict (contract, one JSON object per line on disk): `path`, `label`, optional
`split` and `group`, and probed metadata `num_frames, fps, width, height, codec, duration`.
In memory paths are absolute; on disk they are written relative to the manifest's folder when
the file lies under it, so a dataset folder with its manifest can be moved as one.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidlab.data.memo import file_map
from vidlab.data.parallel import Engine
from vidlab.errors import DatasetError, OutputExistsError

log = logging.getLogger(__name__)

META_KEYS = ("num_frames", "fps", "width", "height", "codec", "duration")
_SKIP_SUFFIXES = {".json", ".jsonl", ".csv", ".txt", ".md", ".py", ".yaml", ".yml", ".db"}
_UCF_GROUP = re.compile(r"^v_(?P<cls>.+?)_g(?P<g>\d+)_c\d+", re.IGNORECASE)


@dataclass
class ScanResult:
    """Readable clips (`entries`) and the files that could not be used, each with a reason."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)


def group_from_name(path: str | Path) -> str | None:
    """UCF101-style group (`v_ApplyEyeMakeup_g08_c01.avi` → `ApplyEyeMakeup_g08`), else None."""
    m = _UCF_GROUP.match(Path(path).stem)
    return f"{m['cls']}_g{int(m['g']):02d}" if m else None


def diagnose(path: str | Path, exc: BaseException | None = None) -> tuple[str, str]:
    """Why a file cannot be probed, as (reason code, text); codes: `missing`, `empty`,
    `no_video_stream`, `truncated`, `unreadable`."""
    p = Path(path)
    text = str(exc) if exc is not None else ""
    if p.exists() and str(p) and text.startswith(str(p)):
        text = text[len(str(p)):].lstrip(": ")
    if not p.is_file():
        return "missing", "no such file"
    if p.stat().st_size == 0:
        return "empty", "file is empty (0 bytes)"
    low = text.lower()
    if "no video stream" in low:
        return "no_video_stream", text
    if "truncated" in low or "moov atom" in low:
        return "truncated", text
    return "unreadable", text or "cannot be probed"


def probe_entry(path: str | Path) -> dict[str, Any]:
    """Probed metadata of one file as manifest fields; raises `VideoError` when unusable."""
    from vidlab.io import probe

    info = probe(path).to_dict()
    meta = {k: info.get(k) for k in META_KEYS}
    if info.get("truncated"):
        meta["truncated"] = True
    return meta


def _probe_job(path: str) -> tuple[str, dict[str, Any] | None, str, str]:
    try:
        return path, probe_entry(path), "", ""
    except Exception as exc:  # a bad file is data, not a crash: report it
        code, why = diagnose(path, exc)
        return path, None, code, why


def _probe_lost(path: str, exc: BaseException) -> tuple[str, None, str, str]:
    return path, None, "unreadable", f"the probe's worker failed ({type(exc).__name__}: {exc})"


def probe_many(paths: list[str], workers: int | None = None, progress: bool = True,
               engine: Engine | str | None = None
               ) -> list[tuple[str, dict[str, Any] | None, str, str]]:
    """Probe files in parallel (`engine`: local processes or Ray Data tasks):
    `(path, metadata or None, reason code, reason)`. Locally, a file this process already
    probed and that has not changed since is not probed again (`vidlab.data.memo`)."""
    return file_map(_probe_job, paths, workers, keep=lambda row: row[1] is not None,
                    engine=engine, progress=progress, desc="probing", chunksize=8,
                    on_error=_probe_lost)


def scan(root: str | Path, workers: int | None = None, progress: bool = True,
         engine: Engine | str | None = None) -> ScanResult:
    """Scan `root/<label>/**/<file>` (any container FFmpeg reads) into manifest entries,
    probing the files with `engine` (local processes by default, or Ray)."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError("not a folder (expected ROOT/<label>/<video files>)", base)
    files: list[tuple[str, str]] = []
    for label_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(label_dir.rglob("*")):
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() not in _SKIP_SUFFIXES:
                files.append((str(f.resolve()), label_dir.name))
    if not files:
        raise DatasetError("no files found in class folders (expected ROOT/<label>/<file>)", base)
    labels = dict(files)
    result = ScanResult()
    for path, meta, code, why in probe_many([f for f, _ in files], workers, progress,
                                                engine):
        if meta is None:
            result.failures.append({"path": path, "label": labels[path], "reason": code,
                                    "detail": why})
            continue
        entry: dict[str, Any] = {"path": path, "label": labels[path]}
        group = group_from_name(path)
        if group:
            entry["group"] = group
        entry.update(meta)
        result.entries.append(entry)
    return result


def read_manifest(path: str | Path, probe_missing: bool = True, workers: int | None = None,
                  engine: Engine | str | None = None) -> list[dict[str, Any]]:
    """Read a JSONL manifest or a CSV `path,label[,split][,group]` (header optional).

    Relative paths are resolved against the manifest's folder; entries without metadata are
    probed (files that fail keep their row and gain an `error` field, for `clean` to report).
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError("manifest not found", p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:  # a video or other binary file given where a list belongs
        raise DatasetError(f"not a manifest (JSONL or CSV text): byte {exc.start} is not UTF-8; "
                           "pass a folder of videos or a manifest listing them", p) from exc
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    rows = _read_jsonl(p, text) if first.startswith("{") else _read_csv(p, text)
    entries = []
    for lineno, row in rows:
        if not row.get("path") or row.get("label") in (None, ""):
            raise DatasetError(f"line {lineno}: needs 'path' and 'label'", p)
        entry = dict(row)
        entry["label"] = str(entry["label"])
        fp = Path(str(entry["path"])).expanduser()
        entry["path"] = str(fp if fp.is_absolute() else (p.parent / fp).resolve())
        entries.append(entry)
    missing = [e for e in entries if any(e.get(k) is None for k in META_KEYS)]
    if probe_missing and missing:
        found = {m[0]: m for m in probe_many([e["path"] for e in missing], workers, False,
                                                    engine)}
        for e in missing:
            _, meta, code, why = found[e["path"]]
            if meta is None:
                e["error"] = f"{code}: {why}"
            else:
                e.update(meta)
    return entries


def _read_jsonl(p: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"line {i}: not valid JSON ({exc.msg})", p) from exc
        if not isinstance(row, dict):
            raise DatasetError(f"line {i}: expected a JSON object", p)
        rows.append((i, row))
    return rows


def _read_csv(p: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = list(csv.reader(text.splitlines()))
    header = ["path", "label", "split", "group"]
    start = 0
    if reader and reader[0] and reader[0][0].strip().lower() == "path":
        header, start = [h.strip().lower() for h in reader[0]], 1
    rows = []
    for i, cells in enumerate(reader[start:], start + 1):
        if not cells or not any(c.strip() for c in cells):
            continue
        if len(cells) < 2:
            raise DatasetError(f"line {i}: expected path,label[,split][,group]", p)
        row: dict[str, Any] = {}
        for key, value in zip(header, cells, strict=False):
            value = value.strip()
            if value == "":
                continue
            row[key] = _number(value) if key in META_KEYS and key != "codec" else value
        rows.append((i, row))
    return rows


def _number(value: str) -> float | int:
    try:
        return int(value)
    except ValueError:
        return float(value)


def write_manifest(entries: list[dict[str, Any]], path: str | Path,
                   overwrite: bool = False) -> Path:
    """Write entries as JSON Lines (atomically); refuses to replace a file unless `overwrite`."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError(path=p)
    p.parent.mkdir(parents=True, exist_ok=True)
    base = p.parent.resolve()
    tmp = p.with_name(f".{p.name}.tmp")
    with tmp.open("w") as f:
        for e in entries:
            row = dict(e)
            fp = Path(row["path"])
            if fp.is_absolute() and fp.resolve().is_relative_to(base):
                row["path"] = fp.resolve().relative_to(base).as_posix()
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, p)
    return p


def check_entries(entries: list[dict[str, Any]], workers: int | None = None,
                  progress: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Probe every entry's file, as a folder scan does, whatever metadata the manifest claims.

    Returns `(usable, unusable)`: usable entries carry freshly probed metadata; unusable ones
    (missing, empty, not a video, ...) keep `path` and `label` and gain `reason`.
    """
    usable, unusable = [], []
    probed = probe_many([e["path"] for e in entries], workers, progress)
    for entry, (_, meta, code, why) in zip(entries, probed, strict=True):
        if meta is None:
            unusable.append({"path": entry["path"], "label": entry["label"],
                             "reason": f"{code}: {why}"})
        else:
            row = {k: v for k, v in entry.items() if k != "error"}
            row.update(meta)
            usable.append(row)
    return usable, unusable


def load_entries(root_or_manifest: str | Path, workers: int | None = None,
                 progress: bool = False, engine: Engine | str | None = None,
                 keep_failures: bool = False) -> list[dict[str, Any]]:
    """Entries from a folder-per-class tree (scanned; bad files logged) or a manifest file.

    `keep_failures`: a folder's unreadable files stay as entries with an `error` field (as a
    manifest's do), for verbs that report every file."""
    p = Path(root_or_manifest)
    if p.is_dir():
        result = scan(p, workers=workers, progress=progress, engine=engine)
        for f in result.failures:
            log.warning("%s: skipped, %s (%s)", f["path"], f["reason"], f["detail"])
        if keep_failures:
            return result.entries + [{"path": f["path"], "label": f["label"],
                                      "error": f"{f['reason']}: {f['detail']}"}
                                     for f in result.failures]
        return result.entries
    return read_manifest(p, workers=workers, engine=engine)


def labels_of(entries: list[dict[str, Any]], labels: list[str] | None = None) -> list[str]:
    """Class names: the given list, else the sorted set of entry labels (index = class id)."""
    if labels is not None:
        unknown = sorted({e["label"] for e in entries} - set(labels))
        if unknown:
            raise DatasetError(f"labels not in the label list: {', '.join(unknown[:5])}")
        return list(labels)
    return sorted({str(e["label"]) for e in entries})
