"""Decoded-video cache: whole videos as `uint8 T×H×W×3` `.npy` files at training resolution,
memory-mapped on read, bounded in size.

Which videos are cached is decided once, up front, from manifest metadata (in entry order until
the size bound is reached), so every worker process agrees without coordinating. Workers fill
the cache lazily the first time they decode a video; files are written under a temporary name
and renamed, so concurrent writers and interrupted runs never leave a half file behind. Entries
are keyed by path, size, modification time and resolution: editing a video invalidates it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """`$VIDLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/vidlab/clips`, else `~/.cache/vidlab/clips`."""
    if os.environ.get("VIDLAB_CACHE_DIR"):
        return Path(os.environ["VIDLAB_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vidlab" / "clips"


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(h, w) of a `width`×`height` video resized so its short side is `short_side`."""
    scale = short_side / max(1, min(width, height))
    return max(short_side, round(height * scale)), max(short_side, round(width * scale))


class ClipCache:
    """A bounded set of decoded videos on disk; `get` returns a memory map or None."""

    def __init__(self, directory: str | Path, entries: list[dict[str, Any]], short_side: int,
                 max_mb: float):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.short_side = short_side
        self.keys: dict[int, str] = {}
        budget, used = max_mb * 2**20, 0.0
        for i, e in enumerate(entries):
            if not all(e.get(k) for k in ("num_frames", "width", "height")):
                continue
            h, w = scaled_size(int(e["width"]), int(e["height"]), short_side)
            size = int(e["num_frames"]) * h * w * 3
            if used + size > budget:
                continue
            used += size
            self.keys[i] = self._key(e["path"])
        self.planned_mb = used / 2**20
        log.info("clip cache %s: %d of %d videos (%.0f MB)", self.dir, len(self.keys),
                 len(entries), self.planned_mb)

    def _key(self, path: str) -> str:
        try:
            st = os.stat(path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest = hashlib.sha1(f"{Path(path).resolve()}|{stamp}|{self.short_side}".encode())
        return digest.hexdigest()[:24]

    def covers(self, index: int) -> bool:
        return index in self.keys

    def get(self, index: int) -> np.ndarray | None:
        """The cached video `index` as a read-only memory map, or None if not cached (yet)."""
        key = self.keys.get(index)
        if key is None:
            return None
        f = self.dir / f"{key}.npy"
        if not f.is_file():
            return None
        try:
            return np.load(f, mmap_mode="r")
        except (OSError, ValueError):
            log.warning("%s: damaged cache file ignored", f)
            return None

    def put(self, index: int, frames: np.ndarray) -> None:
        """Store the decoded video `index` (if planned for caching) atomically."""
        key = self.keys.get(index)
        if key is None:
            return
        final = self.dir / f"{key}.npy"
        tmp = self.dir / f".{key}.{os.getpid()}.tmp.npy"
        try:
            np.save(tmp, np.ascontiguousarray(frames, dtype=np.uint8))
            os.replace(tmp, final)
        except OSError as exc:
            log.warning("clip cache: cannot write %s (%s)", final, exc)
            tmp.unlink(missing_ok=True)
