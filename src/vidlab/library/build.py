"""`vidlab index build`: bring a library index up to date with a folder (or list) of videos.

Incremental and resumable: a file whose size and mtime are unchanged is skipped without being
read; otherwise its SHA-256 decides (same content: only the stamp is updated; same content
under a new name: the windows move with it; new content: indexed). Files gone from the library
are removed. Each video is committed in its own transaction as soon as it is done, so a killed
build loses at most the videos in flight and the next run carries on. A file that cannot be
used is reported, recorded, and not retried until it changes.

The per-file work is `vidlab.library.embed.index_file` — a plain function of one path —
spread over worker processes here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vidlab.errors import LibraryError
from vidlab.library.embed import FileWindows, IndexSettings, _failed, file_facts, index_file
from vidlab.library.store import LibraryDB, now
from vidlab.library.vectors import VectorIndex

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts",
                  ".mts", ".m2ts", ".flv", ".wmv", ".3gp", ".ogv", ".y4m", ".mxf"}
"""What a folder scan picks up (a manifest may list any file FFmpeg reads)."""
MANIFEST_SUFFIXES = {".jsonl", ".json", ".txt", ".csv"}


@dataclass
class BuildReport:
    """What one `index build` run did (`--json` prints `as_dict()`)."""

    index: str
    root: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[dict[str, str]] = field(default_factory=list)
    unchanged: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    videos: int = 0
    windows: int = 0
    hours: float = 0.0
    indexed_seconds: float = 0.0
    wall_s: float = 0.0
    vectors: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["video_hours_per_hour"] = (round(self.indexed_seconds / self.wall_s, 2)
                                       if self.wall_s > 0 and self.indexed_seconds else None)
        return out


def library_files(source: str | Path, skip: Path | None = None) -> tuple[Path, list[Path]]:
    """`(root, files)` of a library: every video under a folder (by suffix, hidden files and
    the index itself skipped), or the paths a manifest lists (JSONL with `path`, or one path per
    line; relative to the manifest), whose root is the folder that holds them all."""
    src = Path(source)
    if src.is_dir():
        root = src.resolve()
        skip_real = skip.resolve() if skip is not None else None
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                 and (skip_real is None or here / d != skip_real))
            files += [here / f for f in sorted(filenames)
                      if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_SUFFIXES]
        return root, files
    if not src.is_file():
        raise LibraryError("no such folder or manifest", src)
    files = [p.resolve() for p in _manifest_paths(src)]
    if not files:
        raise LibraryError("lists no video", src)
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    return root, files


def _manifest_paths(manifest: Path) -> Iterator[Path]:
    text = manifest.read_text(encoding="utf-8-sig")
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                path = json.loads(line).get("path")
            except (json.JSONDecodeError, AttributeError):
                raise LibraryError(f"line {lineno}: not a JSON object", manifest) from None
        else:
            path = line.split(",")[0].strip()
            if path == "path":  # a CSV header
                continue
        if not path:
            raise LibraryError(f"line {lineno}: no 'path'", manifest)
        p = Path(str(path)).expanduser()
        yield p if p.is_absolute() else manifest.parent / p


def build_index(source: str | Path, bundle: str | Path, out: str | Path, *, window: float = 2.0,
                stride: float = 1.0, top_k: int = 5, workers: int | None = None,
                runtime: str = "auto", batch_size: int = 8,
                on_file: Callable[[str, FileWindows], None] | None = None,
                engine: Any = None) -> BuildReport:
    """Index (or update the index of) every video of `source` with `bundle` into `out`.

    Raises `LibraryError` when `out` was built with another model, other windows or another
    library root (build a new index for those). `on_file(rel_path, result)` is called as each
    file finishes (progress bars). `engine`: "local" processes (default) or "ray" /
    `Engine("ray", address)` for Ray Data tasks on a cluster (every worker must see the files and
    the bundle at the same paths).
    """
    from vidlab.bundle import load_bundle
    from vidlab.serve.predict import model_version

    started = time.perf_counter()
    if window <= 0 or stride <= 0:
        raise LibraryError(f"--window ({window}) and --stride ({stride}) must be positive")
    loaded = load_bundle(bundle)
    settings = IndexSettings(str(Path(bundle).resolve()), float(window), float(stride),
                             int(top_k), runtime, int(batch_size))
    root, files = library_files(source, skip=Path(out))
    db = LibraryDB(out, create=True)
    _check_settings(db, root, settings, model_version(loaded), loaded.labels)
    report = BuildReport(index=str(db.dir), root=str(root))

    todo, facts = _plan(db, root, files, report)
    results = run_files([str(root / rel) for rel in todo], settings, workers, engine)
    for result in results:
        rel = Path(result.path).relative_to(root).as_posix()
        f = facts[rel]
        if result.error:
            db.put_failure(rel, f["size"], f["mtime_ns"], result.error)
            report.failed.append({"path": str(root / rel), "error": result.error})
            log.info("skipped %s", result.error)
        else:
            known = db.video(rel) is not None
            _store(db, rel, f, result, settings.top_k)
            (report.updated if known else report.added).append(rel)
            report.indexed_seconds += float(result.info.get("duration", 0.0))
        if on_file is not None:
            on_file(rel, result)
    report.vectors = VectorIndex(db).sync()
    db.set_meta(updated=now())
    videos = db.videos()
    report.videos, report.windows = len(videos), db.window_count()
    report.hours = round(sum(v["duration"] for v in videos.values()) / 3600, 4)
    report.wall_s = round(time.perf_counter() - started, 3)
    return report


def _check_settings(db: LibraryDB, root: Path, settings: IndexSettings, version: str,
                    labels: list[str]) -> None:
    """A new index records how it is built; an existing one must be updated the same way."""
    wanted = {"model": version, "window": settings.window, "stride": settings.stride,
              "root": str(root)}
    if db.meta("model") is None:
        db.set_meta(**wanted, labels=labels, bundle=settings.bundle, top_k=settings.top_k,
                    created=now())
        return
    for key, value in wanted.items():
        have = db.meta(key)
        if have != value:
            raise LibraryError(f"was built with {key} {have!r}, not {value!r}: build a new "
                               "index (another -o) to change it", db.dir)
    db.set_meta(bundle=settings.bundle, top_k=settings.top_k)


def _plan(db: LibraryDB, root: Path, files: list[Path], report: BuildReport
          ) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Which files to index; updates stamps, moves and removals on the way."""
    known, failed = db.videos(), db.failures()
    present: dict[str, Path] = {}
    for f in files:
        rel = f.relative_to(root).as_posix()
        present[rel] = f
    todo: list[str] = []
    facts: dict[str, dict[str, Any]] = {}
    for rel, f in present.items():
        try:
            stamp = file_facts(f, with_hash=False)
        except OSError as exc:
            report.failed.append({"path": str(f), "error": f"{f}: cannot read ({exc})"})
            continue
        old = known.get(rel) or failed.get(rel)
        if old and old["size"] == stamp["size"] and old["mtime_ns"] == stamp["mtime_ns"]:
            if rel in failed:
                report.failed.append({"path": str(f), "error": failed[rel]["error"]})
            else:
                report.unchanged += 1
            continue
        stamp = file_facts(f)
        if rel in known and known[rel]["sha256"] == stamp["sha256"]:
            db.touch_video(rel, stamp["size"], stamp["mtime_ns"])
            report.unchanged += 1
            continue
        todo.append(rel)
        facts[rel] = stamp
    gone = [rel for rel in known if rel not in present]
    by_hash = {known[rel]["sha256"]: rel for rel in gone}
    for rel in [r for r in todo if r not in known]:
        old = by_hash.pop(facts[rel]["sha256"], None)
        if old is not None:
            db.move_video(old, rel, facts[rel]["size"], facts[rel]["mtime_ns"])
            report.moved.append({"from": old, "to": rel})
            todo.remove(rel)
            gone.remove(old)
    for rel in gone:
        db.remove_video(rel)
        report.removed.append(rel)
    db.forget_failures(set(present))
    return todo, facts


def _store(db: LibraryDB, rel: str, f: dict[str, Any], result: FileWindows, top_k: int) -> None:
    info = result.info
    rows = result.rows(top_k)
    if db.meta("dim") is None:
        db.set_meta(dim=int(result.embedding.shape[1]), embedding=info.get("embedding"))
    elif int(db.meta("dim")) != result.embedding.shape[1]:
        raise LibraryError(f"embedding size {result.embedding.shape[1]} differs from the "
                           f"index's {db.meta('dim')}", db.dir)
    db.put_video({"path": rel, "sha256": f["sha256"], "size": f["size"],
                  "mtime_ns": f["mtime_ns"], "duration": float(info["duration"]),
                  "fps": float(info["fps"]), "width": int(info["width"]),
                  "height": int(info["height"])}, rows)


def run_files(paths: list[str], settings: IndexSettings, workers: int | None = None,
              engine: Any = None) -> Iterable[FileWindows]:
    """`index_file` over every path, in `workers` processes (default: one per core), yielding
    each result as soon as it is done (in completion order). `engine` "ray" (or a
    `vidlab.data.parallel.Engine` with an address) runs them as Ray Data tasks instead, one
    single-threaded task per file; a task that dies is that file's error."""
    from vidlab.data.parallel import as_engine

    if paths and as_engine(engine).name == "ray":
        from vidlab.data.parallel import parallel_map

        yield from parallel_map(_IndexJob(replace(settings, threads=1)), paths, chunksize=1,
                                engine=engine, on_error=_lost_on_ray)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = max(1, min(workers or cores or 1, len(paths) or 1))
    if workers == 1:
        for path in paths:
            yield index_file(path, settings)
        return
    # the cores are shared out: one worker per core runs single-threaded
    yield from _in_processes(paths, replace(settings, threads=max(1, (cores or 1) // workers)),
                             workers)


class _IndexJob:
    """`index_file(path, settings)` as a picklable callable (Ray ships it to its workers)."""

    def __init__(self, settings: IndexSettings):
        self.settings = settings

    def __call__(self, path: str) -> FileWindows:
        return index_file(path, self.settings)


def _lost_on_ray(path: str, exc: BaseException) -> FileWindows:
    return _failed(path, f"{path}: its Ray task failed ({type(exc).__name__}: {exc})")


def _in_processes(paths: list[str], settings: IndexSettings, workers: int
                  ) -> Iterator[FileWindows]:
    from vidlab.data.parallel import process_pool

    with process_pool(workers) as pool:  # each worker loads the model once
        pending = {pool.submit(index_file, p, settings) for p in paths[:workers * 2]}
        queue = list(paths[workers * 2:])
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if queue:
                    pending.add(pool.submit(index_file, queue.pop(0), settings))
                yield future.result()

