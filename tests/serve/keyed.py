"""Live servers that need an API key even to say they are ready (in a thread, or the CLI)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
from tests.serve.helpers import LiveServer


class KeyedServer(LiveServer):
    """`LiveServer` whose readiness probe sends `Authorization: Bearer KEY`."""

    def __init__(self, app, key: str):
        super().__init__(app)
        self.key = key

    def __enter__(self) -> KeyedServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=2,
                              headers={"Authorization": f"Bearer {self.key}"})
                if r.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_serve(args: list[str], key: str | None = None,
                timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """`vidlab serve ARGS --port P` as a subprocess, once ready: `(process, url)`."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vidlab", "serve", *args, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"vidlab serve exited: {proc.communicate()[1][-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2, headers=headers).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("vidlab serve never became ready")
        time.sleep(0.1)
