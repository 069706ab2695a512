"""The metadata of a library index: one SQLite database inside `NAME.vlx/`.

SQLite because a library is read by a web server while `index build` may add to it, a build
must survive being killed (each video is written in one transaction, so a resumed build skips
what was committed), and labels, time ranges and corrections are queried with indexes — what a
real database gives for free and a hand-written file does not. The window embeddings are stored
here too (float32 blobs): the vector index (`vectors.py`) is a cache rebuilt from them.

Tables: `meta` (model, labels, windows; key → JSON), `videos` (path relative to the library
root, content hash, size/mtime, facts), `windows` (time span, the span it stands for on the
timeline, top-1 label and probability, top-k as JSON, embedding), `failures` (bad files, with
why), `corrections` (who/when/old/new over a time range), `removed_windows` (filled by a
trigger: window ids the vector index must drop).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.errors import LibraryError

DB_FILE = "library.sqlite"
FORMAT = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    duration REAL NOT NULL,
    fps REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    indexed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS videos_sha ON videos(sha256);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    span_start REAL NOT NULL,
    span_end REAL NOT NULL,
    label INTEGER NOT NULL,
    prob REAL NOT NULL,
    top TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS windows_video ON windows(video_id, start);
CREATE INDEX IF NOT EXISTS windows_label ON windows(label, video_id, start);
CREATE TABLE IF NOT EXISTS removed_windows (id INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS windows_removed AFTER DELETE ON windows
    BEGIN INSERT OR IGNORE INTO removed_windows(id) VALUES (old.id); END;
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    error TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    start REAL NOT NULL,
    "end" REAL NOT NULL,
    old TEXT,
    new TEXT NOT NULL,
    who TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS corrections_path ON corrections(path, start);
"""


def now() -> str:
    """UTC time as ISO 8601 with seconds (what `who/when` records carry)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class WindowRow:
    """One stored window (what search and the timeline read)."""

    id: int
    video_id: int
    start: float
    end: float
    span_start: float
    span_end: float
    label: int
    prob: float


class LibraryDB:
    """The SQLite database of one index; a connection per thread (the web server reads from
    several), WAL so readers never wait for a build that writes."""

    def __init__(self, root: str | Path, create: bool = False):
        self.dir = Path(root)
        self.path = self.dir / DB_FILE
        if not self.path.is_file():
            if not create:
                raise LibraryError("is not a library index (no library.sqlite inside; build one "
                                   "with `vidlab index build`)", self.dir)
            if self.dir.exists() and not self.dir.is_dir():
                raise LibraryError("exists and is not a folder", self.dir)
            if self.dir.is_dir() and any(self.dir.iterdir()):
                raise LibraryError("holds other files and no index: an index gets a folder of "
                                   "its own (a new or empty one)", self.dir)
            self.dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        try:
            self.conn.executescript(SCHEMA)
            fmt = self.meta("format")
        except sqlite3.DatabaseError as exc:
            raise LibraryError(f"unreadable index database ({exc})", self.path) from exc
        if fmt is None:
            self.set_meta(format=FORMAT)
        elif fmt != FORMAT:
            raise LibraryError(f"index format {fmt} is not the supported {FORMAT}", self.dir)

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def tx(self) -> _Transaction:
        """`with db.tx() as conn:` — one atomic write (BEGIN IMMEDIATE … COMMIT/ROLLBACK)."""
        return _Transaction(self.conn)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- meta -----------------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, **values: Any) -> None:
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                           [(k, json.dumps(v)) for k, v in values.items()])

    @property
    def labels(self) -> list[str]:
        return list(self.meta("labels", []))

    # --- videos ---------------------------------------------------------------------------

    def videos(self) -> dict[str, dict[str, Any]]:
        """Every indexed video by relative path."""
        cur = self.conn.execute("SELECT * FROM videos ORDER BY path")
        names = [c[0] for c in cur.description]
        return {row[1]: dict(zip(names, row, strict=True)) for row in cur}

    def video(self, path: str) -> dict[str, Any] | None:
        cur = self.conn.execute("SELECT * FROM videos WHERE path = ?", (path,))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row, strict=True))

    def video_by_id(self, video_id: int) -> dict[str, Any] | None:
        cur = self.conn.execute("SELECT * FROM videos WHERE id = ?", (video_id,))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row, strict=True))

    def put_video(self, facts: dict[str, Any], windows: dict[str, np.ndarray]) -> int:
        """Replace a video's row and windows in one transaction (a killed build keeps either the
        old video or the new one, never half). `windows` holds equal-length arrays `start, end,
        span_start, span_end, label, prob`, a list `top` and `embedding` (N×D float32)."""
        emb = np.ascontiguousarray(windows["embedding"], np.float32)
        with self.tx() as db:
            db.execute("DELETE FROM videos WHERE path = ?", (facts["path"],))
            db.execute("DELETE FROM failures WHERE path = ?", (facts["path"],))
            cur = db.execute(
                "INSERT INTO videos(path, sha256, size, mtime_ns, duration, fps, width, height, "
                "indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (facts["path"], facts["sha256"], facts["size"], facts["mtime_ns"],
                 facts["duration"], facts["fps"], facts["width"], facts["height"], now()))
            video_id = int(cur.lastrowid)
            db.executemany(
                'INSERT INTO windows(video_id, start, "end", span_start, span_end, label, prob, '
                "top, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(video_id, float(windows["start"][i]), float(windows["end"][i]),
                  float(windows["span_start"][i]), float(windows["span_end"][i]),
                  int(windows["label"][i]), float(windows["prob"][i]),
                  json.dumps(windows["top"][i]), emb[i].tobytes()) for i in range(len(emb))])
        return video_id

    def touch_video(self, path: str, size: int, mtime_ns: int) -> None:
        """Same content, new size/mtime stamp (a copy or `touch`): no re-indexing."""
        with self.tx() as db:
            db.execute("UPDATE videos SET size = ?, mtime_ns = ? WHERE path = ?",
                       (size, mtime_ns, path))

    def move_video(self, old: str, new: str, size: int, mtime_ns: int) -> None:
        """A renamed file keeps its windows (its content hash matched)."""
        with self.tx() as db:
            db.execute("UPDATE videos SET path = ?, size = ?, mtime_ns = ? WHERE path = ?",
                       (new, size, mtime_ns, old))

    def remove_video(self, path: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM videos WHERE path = ?", (path,))

    # --- failures -------------------------------------------------------------------------

    def failures(self) -> dict[str, dict[str, Any]]:
        cur = self.conn.execute("SELECT path, size, mtime_ns, error, at FROM failures")
        return {r[0]: {"path": r[0], "size": r[1], "mtime_ns": r[2], "error": r[3], "at": r[4]}
                for r in cur}

    def put_failure(self, path: str, size: int, mtime_ns: int, error: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM videos WHERE path = ?", (path,))
            db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                       (path, size, mtime_ns, error, now()))

    def forget_failures(self, keep: set[str]) -> None:
        """Drop the failure records of files no longer in the library."""
        gone = [(p,) for p in self.failures() if p not in keep]
        with self.tx() as db:
            db.executemany("DELETE FROM failures WHERE path = ?", gone)

    # --- windows --------------------------------------------------------------------------

    def windows_of(self, video_id: int) -> list[WindowRow]:
        cur = self.conn.execute(
            'SELECT id, video_id, start, "end", span_start, span_end, label, prob FROM windows '
            "WHERE video_id = ? ORDER BY start", (video_id,))
        return [WindowRow(*r) for r in cur]

    def windows_labelled(self, label: int) -> list[WindowRow]:
        cur = self.conn.execute(
            'SELECT id, video_id, start, "end", span_start, span_end, label, prob FROM windows '
            "WHERE label = ? ORDER BY video_id, start", (label,))
        return [WindowRow(*r) for r in cur]

    def windows_by_id(self, ids: list[int]) -> dict[int, WindowRow]:
        out: dict[int, WindowRow] = {}
        for i in range(0, len(ids), 500):
            chunk = [int(x) for x in ids[i:i + 500]]
            cur = self.conn.execute(
                'SELECT id, video_id, start, "end", span_start, span_end, label, prob FROM '
                f"windows WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            out.update({r[0]: WindowRow(*r) for r in cur})
        return out

    def top_of(self, window_id: int) -> list[list[Any]]:
        row = self.conn.execute("SELECT top FROM windows WHERE id = ?", (window_id,)).fetchone()
        return [] if row is None else json.loads(row[0])

    def embeddings(self, ids: list[int]) -> np.ndarray:
        """`len(ids)×D` float32 embeddings of the given windows, in that order."""
        found: dict[int, bytes] = {}
        for i in range(0, len(ids), 500):
            chunk = [int(x) for x in ids[i:i + 500]]
            cur = self.conn.execute(f"SELECT id, embedding FROM windows WHERE id IN "
                                    f"({','.join('?' * len(chunk))})", chunk)
            found.update(dict(cur))
        return np.stack([np.frombuffer(found[int(i)], np.float32) for i in ids])

    def iter_embeddings(self, after_id: int = 0, batch: int = 20000
                        ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`(ids int64, N×D float32)` of every window with id > `after_id`, in id order."""
        last = after_id
        while True:
            rows = self.conn.execute("SELECT id, embedding FROM windows WHERE id > ? ORDER BY id "
                                     "LIMIT ?", (last, batch)).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            yield ids, np.stack([np.frombuffer(r[1], np.float32) for r in rows])
            last = int(ids[-1])

    def window_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM windows").fetchone()[0])

    def max_window_id(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM windows").fetchone()[0])

    def removed_window_ids(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT id FROM removed_windows")]

    def clear_removed(self, ids: list[int]) -> None:
        with self.tx() as db:
            db.executemany("DELETE FROM removed_windows WHERE id = ?", [(int(i),) for i in ids])

    def label_histogram(self) -> dict[str, int]:
        labels = self.labels
        rows = self.conn.execute("SELECT label, COUNT(*) FROM windows GROUP BY label").fetchall()
        return {labels[k] if 0 <= k < len(labels) else str(k): int(n) for k, n in rows}

    # --- corrections ----------------------------------------------------------------------

    def add_correction(self, path: str, start: float, end: float, old: str | None, new: str,
                       who: str) -> dict[str, Any]:
        at = now()
        with self.tx() as db:
            cur = db.execute('INSERT INTO corrections(path, start, "end", old, new, who, at) '
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", (path, start, end, old, new, who, at))
        return {"id": int(cur.lastrowid), "path": path, "start": start, "end": end, "old": old,
                "new": new, "who": who, "when": at}

    def corrections(self, path: str | None = None) -> list[dict[str, Any]]:
        """Corrections in the order they were made (later ones win where they overlap)."""
        sql = 'SELECT id, path, start, "end", old, new, who, at FROM corrections'
        args: tuple[Any, ...] = ()
        if path is not None:
            sql, args = sql + " WHERE path = ?", (path,)
        cur = self.conn.execute(sql + " ORDER BY id", args)
        return [{"id": r[0], "path": r[1], "start": r[2], "end": r[3], "old": r[4], "new": r[5],
                 "who": r[6], "when": r[7]} for r in cur]


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: type | None, *exc: object) -> None:
        self.conn.execute("ROLLBACK" if kind else "COMMIT")
