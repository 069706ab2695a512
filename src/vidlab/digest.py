"""SHA-256 of a file's content, read in blocks: videos and model weights can be gigabytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 22


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file at `path` (`hashlib.file_digest` needs Python 3.11)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
