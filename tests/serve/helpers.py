"""Test helpers for the serve stage: bundles whose answers are checkable, a live server, uploads.

The colour bundle holds an ONNX graph that classifies a clip by its brightest colour channel
(mean of each normalized channel × 8 as logits), so a red video must come out "red": the right
answer is known without training. The tiny bundle is a real R(2+1)D with random weights, for
comparing answers between paths (batched vs single, HTTP vs in-process).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
import torch
import uvicorn
from onnx import TensorProto, helper

from vidlab.bundle import save_bundle
from vidlab.data.stats import histogram
from vidlab.data.transforms import Preprocess
from vidlab.io import write_video
from vidlab.serve.predict import Predictor
from vidlab.serve.server import server_config

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def colour_frames(colours: list[str], seconds_each: float = 1.0, fps: int = 10,
                  size: tuple[int, int] = (48, 64), seed: int = 0) -> np.ndarray:
    """`uint8 T×H×W×3` frames: `seconds_each` of each colour in turn, with a moving grey square."""
    rng = np.random.default_rng(seed)
    h, w = size
    per = int(round(seconds_each * fps))
    frames = []
    for name in colours:
        base = np.array(COLOURS[name], np.int16)
        for t in range(per):
            f = np.empty((h, w, 3), np.int16)
            f[:] = base + rng.integers(-12, 13, size=3)
            x0 = (len(frames) * 2) % (w - 8)
            f[h // 2 - 4:h // 2 + 4, x0:x0 + 8] = 128
            frames.append(np.clip(f, 0, 255).astype(np.uint8))
            del t
    return np.stack(frames)


def colour_video(path: Path, colours: list[str], seconds_each: float = 1.0, fps: int = 10,
                 size: tuple[int, int] = (48, 64), seed: int = 0, codec: str = "h264") -> Path:
    return write_video(path, colour_frames(colours, seconds_each, fps, size, seed), fps=fps,
                       codec=codec, overwrite=True)


def pattern_video(path: Path, num_frames: int = 24, size: tuple[int, int] = (72, 96),
                  fps: int = 12, seed: int = 0) -> Path:
    """A textured video with a moving square; texture, colour and speed depend on `seed`."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fx, fy = rng.uniform(0.05, 0.3, 2)
    tint = rng.uniform(0.3, 1.0, 3)
    background = (127 + 100 * np.sin(fx * xx + fy * yy))[..., None] * tint
    colour, speed = rng.integers(0, 255, 3), int(rng.integers(1, 4))
    frames = np.repeat(background[None], num_frames, axis=0).astype(np.uint8)
    for t in range(num_frames):
        x0 = (t * speed) % (w - 12)
        frames[t, h // 3:h // 3 + 12, x0:x0 + 12] = colour
    return write_video(path, frames, fps=fps, overwrite=True)


def _colour_onnx(path: Path, max_rows: int | None = None) -> Path:
    """The colour classifier's graph; `max_rows` keeps only that many output rows (a broken
    graph that answers batches up to `max_rows` correctly and bigger ones wrongly)."""
    x = helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["B", 3, "T", "H", "W"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 3])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [8.0])
    consts = [scale]
    nodes = [helper.make_node("ReduceMean", ["clip"], ["means"], axes=[2, 3, 4], keepdims=0),
             helper.make_node("Mul", ["means", "scale"],
                              ["logits" if max_rows is None else "all"])]
    if max_rows is not None:
        consts += [helper.make_tensor(n, TensorProto.INT64, [1], [v])
                   for n, v in (("starts", 0), ("ends", max_rows), ("axes", 0))]
        nodes.append(helper.make_node("Slice", ["all", "starts", "ends", "axes"], ["logits"]))
    graph = helper.make_graph(nodes, "colour", [x], [y], initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def colour_data_stats(num: int = 2000, seed: int = 1) -> dict:
    """A training baseline in `data_stats.json` form: balanced classes, features ~ `feature_sample`."""
    values = feature_sample(num, seed)
    return {"num_clips": num, "class_counts": {k: num // 3 for k in COLOURS},
            "features": {k: histogram(v) for k, v in values.items()},
            "pixel_mean": [0.4, 0.4, 0.4], "pixel_std": [0.2, 0.2, 0.2]}


def feature_sample(num: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    """Input statistics of `num` videos; `shift` moves brightness (a drifted camera)."""
    rng = np.random.default_rng(seed)
    return {"width": rng.choice([64, 320, 640], num).astype(float),
            "height": rng.choice([48, 240, 480], num).astype(float),
            "fps": rng.choice([10.0, 25.0, 30.0], num),
            "duration": rng.uniform(1, 10, num),
            "brightness": rng.normal(90 + shift, 12, num),
            "contrast": rng.normal(20, 4, num),
            "motion": rng.gamma(2.0, 2.0, num)}


def make_colour_bundle(path: Path, max_rows: int | None = None) -> Path:
    tmp = _colour_onnx(path.parent / f"{path.name}.onnx", max_rows)
    pre = Preprocess(num_frames=4, stride=2, short_side=32, crop_size=32)
    save_bundle(path, config={"task": "classify", "model": {"name": "colour-onnx",
                                                           "num_classes": 3, "kwargs": {}},
                              "labels": list(COLOURS), "preprocess": pre.to_dict()},
                metrics={"val": {"top1": 1.0}}, data_stats=colour_data_stats(),
                extra_files={"model.onnx": tmp})
    tmp.unlink()
    return path


def make_tiny_bundle(path: Path, labels: tuple[str, ...] = ("a", "b", "c", "d", "e", "f")) -> Path:
    from vidlab.models import create

    torch.manual_seed(0)
    model = create("r2plus1d_tiny", num_classes=len(labels), num_frames=8)
    pre = Preprocess(num_frames=8, stride=2, short_side=40, crop_size=32)
    save_bundle(path, config={"task": "classify",
                              "model": {"name": "r2plus1d_tiny", "num_classes": len(labels),
                                        "kwargs": {"num_frames": 8}},
                              "labels": list(labels), "preprocess": pre.to_dict()},
                state_dict=model.state_dict())
    return path


class LiveServer:
    """A real uvicorn server on a free loopback port, in a thread (`with LiveServer(app) as s`),
    configured as `vidlab serve` configures it (connection cap, header deadline)."""

    def __init__(self, app):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(server_config(app))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.thread.is_alive():
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("server did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def wait_ready(proc, url: str, timeout: float = 90, headers: dict | None = None) -> None:
    """Wait until a `vidlab serve` subprocess answers /readyz with 200 (it must stay alive)."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(f"{url}/readyz", timeout=2, headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server never became ready"
        time.sleep(0.1)


def upload(url: str, path: Path, params: dict | None = None, timeout: float = 60,
           **kw) -> httpx.Response:
    with open(path, "rb") as f:
        return httpx.post(f"{url}/v1/predict", files={"file": (path.name, f, "video/mp4")},
                          params=params, timeout=timeout, **kw)


def multipart_chunks(data: bytes, filename: str = "big.mp4", boundary: str = "vidlabtest",
                     chunk: int = 64 * 1024, delay: float = 0.0):
    """A multipart body as a generator (httpx then sends it chunked, with no Content-Length)."""
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
           f"filename=\"{filename}\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    for i in range(0, len(data), chunk):
        if delay:
            time.sleep(delay)
        yield data[i:i + chunk]
    yield f"\r\n--{boundary}--\r\n".encode()


def metric(text: str, name: str, labels: str = "") -> float:
    """Sum of one metric's samples from Prometheus text whose labels include `labels` (like
    `status="200"`; the server adds `model` and `version`), 0 when absent."""
    total = 0.0
    wanted = [w for w in labels.split(",") if w]
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        base, _, rest = key.partition("{")
        if base == name and all(w in rest.rstrip("}").split(",") for w in wanted):
            total += float(value)
    return total


class GatedPredictor(Predictor):
    """A real predictor whose forward passes wait while `gate` is closed: a test holds requests
    in inference for exactly as long as it needs (a model that is slow on demand)."""

    def __init__(self, bundle, runtime: str = "auto"):
        super().__init__(bundle, runtime)
        self.gate = threading.Event()
        self.gate.set()

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        self.gate.wait(60)
        return super().probabilities(batch)


def multipart_body(data: bytes, filename: str = "clip.mp4", boundary: str = "vidlabtest",
                   closed: bool = True) -> bytes:
    """A whole multipart body holding `data` in the field `file` (`closed=False`: without the
    closing boundary, as a body cut short would be)."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    return head + data + (f"\r\n--{boundary}--\r\n".encode() if closed else b"")


def request_head(port: int, length: int, boundary: str = "vidlabtest",
                 path: str = "/v1/predict") -> bytes:
    """The head of a multipart POST with an honest Content-Length."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def read_response(sock: socket.socket, timeout: float = 30) -> tuple[int, dict, bytes]:
    """`(status, headers, body)` of one HTTP response read from `sock` (h11 parses it);
    status 0 when the server closed the connection without answering."""
    import h11

    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))  # client state
    conn.send(h11.EndOfMessage())
    sock.settimeout(timeout)
    status, headers, body = 0, {}, b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:  # closed mid-answer
            return status, headers, body
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(sock.recv(65536))
            except ConnectionResetError:
                return status, headers, body
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode().lower(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, headers, body


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
