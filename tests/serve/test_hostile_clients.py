"""Careless and hostile clients on real sockets against a real server: slow bodies, slow
headers, idle connections, too many connections and bodies cut short.

Each test reproduces what a probe of the server found (issue 26): 16 uploads at 1 byte/s locked
every other client out; slow-header connections were kept open forever; a truncated upload was
predicted from part of a video.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import httpx
import pytest
from tests.serve.helpers import (
    LiveServer,
    closed_by_server,
    colour_video,
    metric,
    multipart_body,
    read_response,
    request_head,
    upload,
)

from vidlab.serve.app import create_app


@pytest.fixture
def uploads(tmp_path):
    d = tmp_path / "uploads"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def red(tmp_path_factory):
    return colour_video(tmp_path_factory.mktemp("hostile") / "red.mp4", ["red"], 1.0)


class SlowBody(threading.Thread):
    """A client that sends a whole request head, then its body at one byte per second."""

    def __init__(self, port: int, data: bytes):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.body = multipart_body(data)
        self.sock.sendall(request_head(port, len(self.body)))
        self.answer: tuple[int, dict, bytes] | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for i in range(len(self.body)):
                if self.stop.wait(1.0):
                    return
                self.sock.sendall(self.body[i:i + 1])
        except OSError:  # the server answered and closed: read its answer below
            pass
        finally:
            self.answer = read_response(self.sock, timeout=10)
            self.sock.close()


def wait_for(condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_sixteen_slow_uploads_lock_nobody_out_and_get_408(colour_predictor, uploads, red):
    app = create_app(colour_predictor, temp_dir=uploads, body_timeout_s=5.0,
                     min_upload_kb_s=16.0)  # default --queue-size 16, --max-connections 256
    with LiveServer(app) as server:
        slow = [SlowBody(server.port, red.read_bytes()) for _ in range(16)]
        for client in slow:
            client.start()
        def started() -> bool:  # (before the fix they were admitted: in the queue's depth)
            text = httpx.get(f"{server.url}/metrics").text
            return metric(text, "vidlab_uploads_in_progress") + \
                metric(text, "vidlab_queue_depth") >= 16

        wait_for(started)
        # while all 16 trickle, the server is ready and everybody else is served
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 200 and ready.json()["uploading"] >= 16
        for _ in range(3):
            r = upload(server.url, red)
            assert r.status_code == 200 and r.json()["top"][0]["label"] == "red", r.text
        for client in slow:
            client.join(20)
        answers = [client.answer for client in slow]
        assert all(a is not None and a[0] == 408 for a in answers), answers
        error = json.loads(answers[0][2])["error"]
        assert error["type"] == "request_timeout" and "--min-upload-kb-s" in error["message"]
        assert metric(httpx.get(f"{server.url}/metrics").text, "vidlab_uploads_in_progress") == 0
        wait_for(lambda: os.listdir(uploads) == [])


def test_slow_headers_get_408_and_idle_connections_are_closed(colour_predictor, uploads, red):
    app = create_app(colour_predictor, temp_dir=uploads, header_timeout_s=1.0)
    with LiveServer(app) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
        trickle = socket.create_connection(("127.0.0.1", server.port))
        head = request_head(server.port, 100)
        t0 = time.monotonic()
        try:
            for i in range(10):  # a byte every 0.3 s: never a complete head within the deadline
                trickle.sendall(head[i:i + 1])
                time.sleep(0.3)
        except OSError:  # answered and closed meanwhile
            pass
        status, _, body = read_response(trickle, timeout=5)
        assert status == 408 and json.loads(body)["error"]["type"] == "request_timeout"
        assert "--header-timeout-s" in json.loads(body)["error"]["message"]
        assert 1.0 <= time.monotonic() - t0 < 8.0
        assert all(closed_by_server(s, timeout=5) for s in idle)  # silently: they sent nothing
        for s in [trickle, *idle]:
            s.close()
        r = upload(server.url, red)  # a client that sends its request normally is served
        assert r.status_code == 200
        # a keep-alive connection's next request head has the same deadline
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            assert read_response(sock, timeout=5)[0] == 408


def test_connections_beyond_the_cap_are_refused_while_the_rest_are_served(
        colour_predictor, uploads, red):
    app = create_app(colour_predictor, temp_dir=uploads, max_connections=4,
                     header_timeout_s=30.0)
    with LiveServer(app) as server:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        try:
            time.sleep(0.3)
            r = upload(server.url, red)
            assert r.status_code == 503, r.text
        finally:
            for s in held:
                s.close()
        wait_for(lambda: upload(server.url, red).status_code == 200)


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_body_cut_short_is_a_400_never_a_prediction(colour_predictor, uploads, tmp_path, cut):
    """An honest Content-Length, but the body stops inside the file (no closing boundary)."""
    video = colour_video(tmp_path / "rgb.mkv", ["red", "green", "blue"], 2.0)  # streamable
    data = video.read_bytes()
    app = create_app(colour_predictor, temp_dir=uploads)
    with LiveServer(app) as server:
        body = multipart_body(data[:int(len(data) * cut)], "rgb.mkv", closed=False)
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(request_head(server.port, len(body)) + body)
            status, _, answer = read_response(sock)
        assert status == 400, answer
        error = json.loads(answer)["error"]
        assert error["type"] == "incomplete_upload" and "closing multipart boundary" in \
            error["message"]
        whole = multipart_body(data, "rgb.mkv")  # the same upload, complete, is predicted
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(request_head(server.port, len(whole)) + whole)
            assert read_response(sock)[0] == 200
        wait_for(lambda: os.listdir(uploads) == [])


def test_a_stalled_inference_protocol_body_gets_408(colour_predictor, uploads):
    """`POST /v2/models/NAME/infer` reads its body under the same pace limits as an upload."""
    app = create_app(colour_predictor, temp_dir=uploads, body_timeout_s=1.0)
    with LiveServer(app) as server, \
            socket.create_connection(("127.0.0.1", server.port)) as sock:
        t0 = time.monotonic()
        sock.sendall(b"POST /v2/models/colour/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: 5000\r\n\r\n{\"inputs\": [")
        status, headers, body = read_response(sock, timeout=10)  # then nothing more is sent
        assert status == 408, body
        assert "--body-timeout-s" in json.loads(body)["error"]
        assert headers.get("connection") == "close"
        assert 1.0 <= time.monotonic() - t0 < 8.0
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
