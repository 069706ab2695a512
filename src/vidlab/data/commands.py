"""What the `vidlab data` verbs do, as public functions: a source in, files out, a summary back.

The CLI only parses arguments and prints what these return; notebooks and scripts call them
directly. No output a user owns is replaced unless `overwrite` is given.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from vidlab.data.parallel import Engine
from vidlab.errors import ConfigError, DatasetError, OutputExistsError


def check_output(path: str | Path, overwrite: bool) -> None:
    """`OutputExistsError` for an existing `path`, unless `overwrite`."""
    if Path(path).exists() and not overwrite:
        raise OutputExistsError(path=path)


def _nonempty(entries: list[dict[str, Any]], source: str | Path, verb: str) -> list[dict[str, Any]]:
    """`entries`, or a `DatasetError` when there are none: an empty manifest written with exit
    status 0 would only fail later, far from its cause."""
    if not entries:
        raise DatasetError(f"holds no clips: nothing to {verb}", source)
    return entries


def scan_to_manifest(root: str | Path, out: str | Path, workers: int | None = None,
                     overwrite: bool = False, progress: bool = True,
                     engine: Engine | str | None = None) -> dict[str, Any]:
    """Probe every video of a folder-per-class tree into the manifest `out` (`engine`: local
    processes, or Ray Data tasks on a cluster).

    Returns `{"manifest", "clips", "classes", "class_counts", "failures"}`; unreadable files
    are listed in `failures` (path, label, reason, detail), never fatal.
    """
    from vidlab.data.manifest import scan, write_manifest

    check_output(out, overwrite)
    result = scan(root, workers=workers, progress=progress, engine=engine)
    write_manifest(result.entries, out, overwrite=overwrite)
    counts = Counter(str(e["label"]) for e in result.entries)
    return {"manifest": str(out), "clips": len(result.entries), "classes": len(counts),
            "class_counts": dict(sorted(counts.items())), "failures": result.failures}


def clean_manifest(source: str | Path, out: str | Path, report: str | Path,
                   min_frames: int = 16, workers: int | None = None, keep: list[str] = (),
                   overwrite: bool = False, progress: bool = True,
                   engine: Engine | str | None = None):
    """Clean a manifest (or a folder, whose unprobeable files are reported too) into `out`,
    with the per-file JSON `report`; returns the `CleanResult`. `engine` spreads the per-file
    work (local processes, or Ray Data tasks).

    `keep` lists reason codes to report but not drop (e.g. "too_short").
    """
    from vidlab.data.clean import DEFAULT_DROP, clean
    from vidlab.data.manifest import load_entries, scan, write_manifest

    check_output(out, overwrite)
    check_output(report, overwrite)
    if Path(out).resolve() == Path(report).resolve():
        raise ConfigError(f"the manifest (-o) and the report (--report) are the same file: {out}")
    if Path(source).is_dir():  # a folder: files that cannot even be probed are reported too
        scanned = scan(source, workers=workers, progress=progress, engine=engine)
        entries = scanned.entries + [{"path": f["path"], "label": f["label"]}
                                     for f in scanned.failures]
    else:
        entries = load_entries(source, workers=workers, engine=engine)
    _nonempty(entries, source, "clean")
    result = clean(entries, min_frames=min_frames, workers=workers, progress=progress,
                   drop=set(DEFAULT_DROP) - set(keep), engine=engine)
    write_manifest(result.entries, out, overwrite=overwrite)
    Path(report).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def split_manifest(source: str | Path, out: str | Path, val: float = 0.15, test: float = 0.15,
                   seed: int = 0, overwrite: bool = False) -> dict[str, Any]:
    """Split a manifest (or folder) into train/val/test, written to `out`; returns the counts
    (`vidlab.data.split.split_counts`)."""
    from vidlab.data.manifest import load_entries, write_manifest
    from vidlab.data.split import split, split_counts

    check_output(out, overwrite)
    entries = split(_nonempty(load_entries(source), source, "split"), val=val, test=test, seed=seed)
    write_manifest(entries, out, overwrite=overwrite)
    return split_counts(entries)


def synth_dataset(out: str | Path, per_class: int = 40, seed: int = 0,
                  workers: int | None = None, overwrite: bool = False,
                  progress: bool = True) -> dict[str, Any]:
    """Write the built-in dataset; returns `{"root", "clips", "labels", "seconds"}`."""
    import time

    from vidlab.data.synth import DATASET_FILE, synth

    t0 = time.perf_counter()
    root = synth(out, per_class=per_class, seed=seed, workers=workers, overwrite=overwrite,
                 progress=progress)
    info = json.loads((root / DATASET_FILE).read_text())
    return {"root": str(root), "clips": info["num_clips"], "labels": info["labels"],
            "seconds": round(time.perf_counter() - t0, 2)}
