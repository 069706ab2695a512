"""The run's log: `metrics.jsonl` (one JSON object per line) and TensorBoard event files.

Only rank 0 writes (pass `enabled=False` elsewhere). On resume, records past the checkpoint's
step are dropped first, so the log of a resumed run reads like that of an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


class RunLogger:
    """Append-only metrics log plus TensorBoard scalars for one run directory."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._tb = None
        self._want_tb = tensorboard
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        return self.run_dir / METRICS_FILE

    def log(self, record: dict[str, Any], step: int | None = None) -> None:
        """Append `record` (plus wall time) and send its numeric values to TensorBoard."""
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=_jsonable) + "\n")
        if step is not None and self._want_tb:
            writer = self._writer()
            if writer is not None:
                phase = record.get("phase", "train")
                for key, value in record.items():
                    numeric = isinstance(value, int | float) and math.isfinite(value)
                    if numeric and key not in ("time", "step", "epoch"):
                        writer.add_scalar(f"{phase}/{key}", value, step)

    def truncate_after(self, step: int) -> None:
        """Drop records logged after `step` (they belong to work a resume will redo)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def _writer(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional at run time
                self._want_tb = False
                return None
            self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
        return self._tb


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
