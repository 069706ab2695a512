"""The uvicorn server a vidlab app runs in, with the connection limits uvicorn leaves open.

uvicorn supplies the connection cap (`limit_concurrency`: 503 beyond `--max-connections`
connections or requests), the idle keep-alive timeout and h11's bound on the size of request
headers. It has no deadline for the headers themselves: a client that sends one header byte a
second keeps its connection (and a place under the cap) forever. `HeaderDeadlineH11` is
uvicorn's own h11 protocol plus that one deadline: a connection still waiting for a complete
request head `--header-timeout-s` after it started waiting is answered 408 and closed (closed
silently when it sent nothing at all, as the keep-alive timeout does). The body's deadlines
live with the upload parser (`vidlab.serve.upload`), where the bytes are read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from vidlab.serve.limits import Limits

MAX_HEADER_BYTES = 16 * 1024
"""Largest request head accepted (h11's default, written out): beyond it uvicorn answers 400."""
KEEP_ALIVE_S = 5
"""Idle time after a response before an unused keep-alive connection is closed."""


class HeaderDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers."""

    header_timeout_s: float = Limits.header_timeout_s  # set per server by `uvicorn_options`

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._head_bytes += len(data)
        super().data_received(data)
        self._watch_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_headers()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watch()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        """Arm the deadline while a request head is awaited (h11: client IDLE), else drop it."""
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(self.header_timeout_s,
                                                          self._headers_too_slow)
        else:
            self._stop_watch()
            self._head_bytes = 0

    def _stop_watch(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._head_bytes:  # h11 cannot answer a request it has not parsed: plain bytes
            self.transport.write(timeout_response(
                f"the request headers did not arrive within {self.header_timeout_s:g} s "
                "(--header-timeout-s)"))
        self.transport.close()


def timeout_response(message: str) -> bytes:
    """A complete `408 Request Timeout` HTTP/1.1 response in the server's JSON error shape."""
    body = json.dumps({"error": {"status": 408, "type": "request_timeout",
                                 "message": message}}).encode()
    head = ("HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


def uvicorn_options(app: Any, host: str = "127.0.0.1", port: int = 8000) -> dict[str, Any]:
    """`uvicorn.run`/`uvicorn.Config` keywords for an app from `create_app`: its service's
    connection limits, h11 with the header deadline, quiet logs."""
    limits = app.state.service.limits
    protocol = type("HeaderDeadlineH11", (HeaderDeadlineH11,),
                    {"header_timeout_s": float(limits.header_timeout_s)})
    return {"host": host, "port": port, "http": protocol,
            "limit_concurrency": limits.max_connections, "timeout_keep_alive": KEEP_ALIVE_S,
            "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
            "log_level": "warning", "access_log": False, "lifespan": "on"}


def server_config(app: Any, host: str = "127.0.0.1", port: int = 8000) -> uvicorn.Config:
    """The `uvicorn.Config` `vidlab serve` runs an app from `create_app` with."""
    return uvicorn.Config(app, **uvicorn_options(app, host, port))
