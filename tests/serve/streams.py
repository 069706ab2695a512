"""Real live streams over loopback for the watch tests: senders in their own processes (PyAV
encoding H.264 in real time), an HTTP server for HLS, a Debian RTSP server, and a watcher run in
a thread whose records can be waited for."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sender:
    """`tests.serve.stream_sender` in a subprocess; `changes` collects its colour changes."""

    def __init__(self, url: str, fmt: str = "mpegts", colours: str = "red,blue",
                 seconds: float = 2.0, loop: bool = False):
        cmd = [sys.executable, "-m", "tests.serve.stream_sender", url, "--format", fmt,
               "--colours", colours, "--seconds", str(seconds)] + (["--loop"] if loop else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
            "PYTHONPATH", "")])}
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.changes: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.changes.append(json.loads(line))

    def change(self, colour: str, timeout: float = 30.0) -> float:
        """The wall time the sender started sending `colour`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for c in self.changes:
                if c.get("colour") == colour:
                    return c["wall"]
            time.sleep(0.05)
        raise AssertionError(f"the sender never sent {colour}: {self.changes}")

    def kill(self) -> None:
        """SIGKILL: the sender dies mid-stream, as a crashed encoder or a pulled cable."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class HTTPDir:
    """A local `http.server` serving a directory (the HLS playlist and segments)."""

    def __init__(self, directory: Path):
        handler = functools.partial(QuietHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


RTSP_SERVER = shutil.which("rtsp-server-perl")


class RTSPServer:
    """Debian's `rtsp-server-perl` (RTSP::Server): sources ANNOUNCE/RECORD on one port,
    clients PLAY on another, RTP over UDP."""

    def __init__(self):
        if RTSP_SERVER is None:
            if os.environ.get("CI"):
                pytest.fail("CI must install rtsp-server-perl (.ci/run does)")
            pytest.skip("rtsp-server-perl is not installed (apt-get install rtsp-server-perl)")
        self.client_port, self.source_port = free_port(), free_port()
        rtp = 30000 + (os.getpid() % 1000) * 20
        self.proc = subprocess.Popen(
            [RTSP_SERVER, "--clientport", str(self.client_port), "--serverport",
             str(self.source_port), "--client_listen_address", "127.0.0.1",
             "--source_listen_address", "127.0.0.1", "--rtp_start_port", str(rtp),
             "--loglevel", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60  # Perl with Moose starts slowly on a busy machine
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.source_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise AssertionError("rtsp-server-perl did not start")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class WatchRun:
    """A `Watcher` run in a thread: `wait_for(predicate)` on the records so far, then `stop()`."""

    def __init__(self, watcher):
        self.watcher, self.records, self.error = watcher, [], None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for record in self.watcher.run():
                self.records.append(record)
        except Exception as exc:  # noqa: BLE001 - surfaced by stop()
            self.error = exc

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.records):
                return True
            if not self.thread.is_alive():
                return predicate(self.records)
            time.sleep(0.05)
        return False

    def stop(self) -> list[dict]:
        self.watcher.stop()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the watcher did not stop"
        if self.error is not None:
            raise self.error
        return self.records


def windows(records: list[dict], source: str | None = None) -> list[dict]:
    return [r for r in records if r["type"] == "window" and source in (None, r["source"])]


def labels(records: list[dict], source: str | None = None) -> list[str]:
    return [r["top"][0]["label"] for r in windows(records, source)]


def statuses(records: list[dict], source: str | None = None) -> list[str]:
    return [r["status"] for r in records if r["type"] == "status"
            and source in (None, r["source"])]


def switches(sequence: list[str]) -> int:
    return sum(a != b for a, b in zip(sequence, sequence[1:], strict=False))
