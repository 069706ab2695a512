"""The prediction log: every answered request appended to an embedded SQLite database.

One row per request (errors too, with their HTTP status), so `vidlab monitor` can report traffic,
latency, label and confidence drift and input drift later, from the file alone. Rows older than
`retention_days` are deleted at start-up and then about hourly.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

COLUMNS = {
    "ts": "REAL NOT NULL",  # unix time, seconds
    "model_version": "TEXT",
    "runtime": "TEXT",
    "status": "INTEGER NOT NULL",  # HTTP status of the answer
    "error": "TEXT",  # error type for non-200 answers
    "latency_ms": "REAL",
    "decode_ms": "REAL",
    "inference_ms": "REAL",
    "top_label": "TEXT",
    "confidence": "REAL",  # probability of top_label
    "num_clips": "INTEGER",
    "width": "INTEGER",
    "height": "INTEGER",
    "fps": "REAL",
    "duration": "REAL",
    "brightness": "REAL",
    "contrast": "REAL",
    "motion": "REAL",
    "source": "TEXT",  # the live source of a `vidlab watch` window (NULL for uploads)
}

_SCHEMA = ("CREATE TABLE IF NOT EXISTS predictions (id INTEGER PRIMARY KEY AUTOINCREMENT, "
           + ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items()) + ")")
_PRUNE_EVERY_S = 3600.0


class PredictionLog:
    """Append-only SQLite log, safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | Path, retention_days: float | None = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_days = retention_days
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        with self._lock, self._conn:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; no fsync per row
            self._conn.execute(_SCHEMA)
            have = {row[1] for row in self._conn.execute("PRAGMA table_info(predictions)")}
            for name in COLUMNS.keys() - have:  # a log written by an older vidlab
                self._conn.execute(f"ALTER TABLE predictions ADD COLUMN {name} {COLUMNS[name]}")
            self._conn.execute("CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts)")
        self._last_prune = 0.0
        self.prune()

    def append(self, row: dict[str, Any]) -> None:
        """Insert one row (unknown keys are ignored; `ts` defaults to now)."""
        self.append_many([row])

    def append_many(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows in one transaction."""
        now = time.time()
        values = [[r.get("ts") or now if k == "ts" else r.get(k) for k in COLUMNS] for r in rows]
        sql = (f"INSERT INTO predictions ({', '.join(COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in COLUMNS)})")
        with self._lock, self._conn:
            self._conn.executemany(sql, values)
        if now - self._last_prune > _PRUNE_EVERY_S:
            self.prune()

    def prune(self) -> int:
        """Delete rows older than the retention period; returns how many went."""
        self._last_prune = time.time()
        if not self.retention_days or self.retention_days <= 0:
            return 0
        cutoff = time.time() - self.retention_days * 86400
        with self._lock, self._conn:
            return self._conn.execute("DELETE FROM predictions WHERE ts < ?", (cutoff,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def read_log(path: str | Path, since: float | None = None) -> list[dict[str, Any]]:
    """All rows (oldest first), optionally only those with `ts >= since`; read-only access."""
    p = Path(path)
    if not p.is_file():
        from vidlab.errors import VidlabError

        raise VidlabError("no such prediction database", p)
    conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        sql = "SELECT * FROM predictions" + (" WHERE ts >= ?" if since else "") + " ORDER BY ts"
        try:
            rows = conn.execute(sql, (since,) if since else ()).fetchall()
        except sqlite3.DatabaseError as exc:
            from vidlab.errors import VidlabError

            raise VidlabError(f"not a vidlab prediction database ({exc})", p) from exc
        return [dict(r) for r in rows]
    finally:
        conn.close()
