"""Structured logs of the server: JSON lines, each with the request ID of the request it is about.

`REQUEST_ID` is set by the gateway for the time a request runs (asyncio tasks copy it into
everything the request awaits), and `JsonFormatter` writes it into every record formatted
meanwhile. `configure_json_logs` is what `vidlab serve` calls: all server logs (vidlab's,
uvicorn's) become JSON lines on stderr, and the access log is on unless asked otherwise.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("vidlab_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `ts`, `level`, `logger`, `message`, `request_id`, plus the
    record's `fields` (the access log's) and `error` (a traceback) when present."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
               "logger": record.name, "message": record.getMessage(),
               "request_id": getattr(record, "request_id", None) or REQUEST_ID.get()}
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_json_logs(access: bool = True, stream=None) -> None:
    """Make every log line of this process JSON (level unchanged); `access` turns the access
    log (`vidlab.access`, INFO) on or off."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    access_logger = logging.getLogger("vidlab.access")
    access_logger.setLevel(logging.INFO if access else logging.CRITICAL + 1)
    access_logger.propagate = False
    access_logger.handlers = [handler] if access else []
