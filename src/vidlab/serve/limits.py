"""What one request and one connection may cost a server: the limits `vidlab serve` enforces.

Kept apart from the service so the command line can show the defaults without importing the
server (and torch) first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Limits:
    """What one request may cost; every field has a `vidlab serve` flag of the same name."""

    max_upload_mb: float = 100.0
    max_duration_s: float = 600.0
    timeout_s: float = 60.0
    queue_size: int = 16
    max_clips: int = 32  # timeline windows per video (the stride widens to fit)
    max_connections: int = 256  # open connections and requests at once (uvicorn: 503 beyond)
    header_timeout_s: float = 10.0  # a request head must arrive within this (408 beyond)
    body_timeout_s: float = 20.0  # longest silence in an upload, and the grace before...
    min_upload_kb_s: float = 16.0  # ...this average pace applies (408 below)

    @property
    def pace(self) -> Any:
        """The upload's `vidlab.serve.upload.Pace` (deadlines of the body)."""
        from vidlab.serve.upload import Pace

        return Pace(self.body_timeout_s, self.min_upload_kb_s * 1024)
