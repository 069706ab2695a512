"""Graceful drain: on SIGTERM, stop taking work, finish what was accepted, exit 0.

`DrainingServer` is uvicorn's server with one change to its signal handling. On SIGTERM it
marks the app's `Drain` (readiness turns false at once, `/v2/health/ready` and `/readyz` answer
503, every other new request gets 503 `draining` from the gateway) and waits until the requests
already accepted have been answered, or `drain_timeout_s` has passed, before it asks uvicorn to
shut down. The signal is not re-raised afterwards (uvicorn re-raises it to mimic the default
action), so a drained server exits with status 0. A second SIGTERM, or SIGINT, stops at once,
as plain uvicorn does.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import suppress
from types import FrameType
from typing import Any

import uvicorn

from vidlab.serve.gateway import Drain

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains on SIGTERM (see the module doc)."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_timeout_s: float = 30.0):
        super().__init__(config)
        self.drain, self.drain_timeout_s = drain, drain_timeout_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self.drain.draining:
            self.drain.draining = True
            log.warning("SIGTERM: draining (%d requests in flight, up to %g s)",
                        self.drain.in_flight, self.drain_timeout_s)
            threading.Thread(target=self._exit_when_drained, name="vidlab-drain",
                             daemon=True).start()
            return
        if sig == signal.SIGTERM:
            self.should_exit = True  # a second SIGTERM: stop now, still exit 0
            return
        super().handle_exit(sig, frame)

    def _exit_when_drained(self) -> None:
        deadline = time.monotonic() + self.drain_timeout_s
        while self.drain.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.drain.in_flight:
            log.warning("drain timeout: %d requests still in flight are cut off",
                        self.drain.in_flight)
        self.should_exit = True


def run_server(app: Any, drain_timeout_s: float = 30.0, **uvicorn_options: Any) -> None:
    """Run `app` (from `create_app`) under uvicorn until SIGTERM has drained it (or SIGINT)."""
    uvicorn_options.setdefault("timeout_graceful_shutdown", 5)
    config = uvicorn.Config(app, **uvicorn_options)
    with suppress(KeyboardInterrupt):  # SIGINT, re-raised by uvicorn once stopped
        DrainingServer(config, app.state.drain, drain_timeout_s).run()
