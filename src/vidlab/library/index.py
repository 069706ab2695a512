"""An opened library index: the database, the vector index and the library's root folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidlab.errors import LibraryError
from vidlab.library.store import LibraryDB
from vidlab.library.vectors import VectorIndex


@dataclass
class LibraryIndex:
    """`NAME.vlx/`: `db` (SQLite metadata), `vectors` (FAISS), `root` (the indexed folder:
    paths are stored relative to it, and nothing outside it is ever served)."""

    db: LibraryDB
    vectors: VectorIndex
    root: Path

    @property
    def labels(self) -> list[str]:
        return self.db.labels

    @property
    def path(self) -> Path:
        return self.db.dir

    def label_id(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise LibraryError(f"unknown label {label!r}; the model's labels are: "
                               f"{', '.join(self.labels)}", self.path) from None

    def absolute(self, rel: str) -> Path:
        return self.root / rel

    def relative(self, path: str | Path) -> str | None:
        """`path`'s name inside the library (POSIX, relative to the root), or None when it
        lies outside it."""
        p = Path(os.path.realpath(path))
        root = Path(os.path.realpath(self.root))
        return p.relative_to(root).as_posix() if p.is_relative_to(root) else None

    def resolve_media(self, rel: str) -> Path | None:
        """The file behind an indexed video's relative path, only if it is indexed and still
        lies inside the library once links are resolved (no `..`, no absolute path, no link
        out of the root)."""
        if not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel:
            return None
        if any(part in ("", ".", "..") for part in rel.split("/")):
            return None
        if self.db.video(rel) is None:
            return None
        real = Path(os.path.realpath(self.root / rel))
        root = Path(os.path.realpath(self.root))
        if not real.is_relative_to(root) or not real.is_file():
            return None
        return real

    def settings(self) -> dict[str, Any]:
        keys = ("model", "bundle", "window", "stride", "top_k", "embedding", "dim")
        return {k: self.db.meta(k) for k in keys}

    def close(self) -> None:
        self.db.close()


def open_index(path: str | Path) -> LibraryIndex:
    """Open `NAME.vlx/` for searching (raises `LibraryError` when it is not an index)."""
    db = LibraryDB(path)
    root = db.meta("root")
    if not root:
        raise LibraryError("has no library root recorded (an interrupted first build? run "
                           "`vidlab index build` again)", db.dir)
    return LibraryIndex(db, VectorIndex(db), Path(root))
