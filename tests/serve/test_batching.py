"""Micro-batching under concurrency, the bounded queue (503, readable, with readiness saying
saturated) and the request timeout (504, which an upload's own time does not count against)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from tests.serve.helpers import (
    GatedPredictor,
    LiveServer,
    colour_video,
    metric,
    multipart_body,
    multipart_chunks,
    pattern_video,
    read_response,
    request_head,
    upload,
)

from vidlab.serve.app import create_app
from vidlab.serve.batcher import MicroBatcher


def test_batcher_groups_waiting_clips_and_skips_cancelled_ones():
    sizes = []
    gate = threading.Event()

    def run(batch):
        gate.wait(5)
        sizes.append(len(batch))
        return batch.reshape(len(batch), -1).sum(axis=1, keepdims=True)

    batcher = MicroBatcher(run, max_batch=4, max_wait_s=0.05)
    batcher.start()
    try:
        first = batcher.submit(np.ones((2, 2)))  # occupies the worker until the gate opens
        time.sleep(0.2)
        futures = [batcher.submit(np.full((2, 2), i, float)) for i in range(6)]
        futures[1].cancel()
        gate.set()
        assert first.result(5)[0] == 4
        assert [f.result(5)[0] for i, f in enumerate(futures) if i != 1] == [0, 8, 12, 16, 20]
    finally:
        batcher.stop()
    assert sizes == [1, 3, 2]  # batches of at most 4 collected; the cancelled clip never ran


def test_concurrent_uploads_share_forward_passes_and_match_single_answers(
        tiny_predictor, tmp_path):
    videos = [pattern_video(tmp_path / f"v{i}.mp4", num_frames=20 + 2 * i,
                            size=(64 + 8 * (i % 3), 80), seed=i) for i in range(8)]
    expected = {v.name: tiny_predictor.predict_file(v, top_k=6, window=0) for v in videos}
    app = create_app(tiny_predictor, max_batch=8, max_wait_ms=300, window=0)
    with LiveServer(app) as server:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda v: upload(server.url, v, params={"top_k": 6}), videos))
        text = httpx.get(f"{server.url}/metrics").text
    for r in answers:
        assert r.status_code == 200, r.text
        body = r.json()
        want = expected[body["path"]]
        assert [t["label"] for t in body["top"]] == [t["label"] for t in want["top"]]
        np.testing.assert_allclose([t["prob"] for t in body["top"]],
                                   [t["prob"] for t in want["top"]], atol=1e-5)
    batches = metric(text, "vidlab_batch_size_count")
    single = metric(text, "vidlab_batch_size_bucket", 'le="1.0"')
    assert metric(text, "vidlab_batch_size_sum") == 8  # every clip ran exactly once
    assert batches - single >= 1, "no forward pass held more than one clip"
    assert batches < 8


def test_full_queue_answers_a_readable_503_and_readiness_says_saturated(colour_bundle, tmp_path):
    """Requests wait in inference (the model is gated) while every slot is taken: a client that
    sends a whole 4 MB body reads the 503 with Retry-After (no reset), /readyz says saturated,
    and everything recovers when the slot frees."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    video = colour_video(tmp_path / "red.mp4", ["red"], 1.0)
    predictor = GatedPredictor(colour_bundle)
    app = create_app(predictor, queue_size=1, temp_dir=uploads)
    with LiveServer(app) as server:
        predictor.gate.clear()
        held = {}
        thread = threading.Thread(target=lambda: held.update(r=upload(server.url, video)))
        thread.start()
        deadline = time.monotonic() + 10
        while metric(httpx.get(f"{server.url}/metrics").text, "vidlab_queue_depth") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        big = multipart_body(os.urandom(4 * 2**20), "big.mp4")
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(request_head(server.port, len(big)) + big)
            status, headers, body = read_response(sock)
        assert status == 503 and headers["retry-after"] == "1"
        assert json.loads(body)["error"]["type"] == "overloaded"
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "saturated"
        assert ready.json()["in_flight"] == 1 and ready.json()["queue_size"] == 1
        busy = upload(server.url, video)
        assert busy.status_code == 503 and busy.json()["error"]["type"] == "overloaded"
        predictor.gate.set()
        thread.join(30)
        assert held["r"].status_code == 200 and held["r"].json()["top"][0]["label"] == "red"
        assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"
        assert upload(server.url, video).status_code == 200
        assert os.listdir(uploads) == []


def test_upload_time_does_not_count_against_the_request_timeout(colour_predictor, tmp_path):
    """An upload that keeps pace but takes longer than --timeout-s is answered: the timeout
    covers decode and inference, the upload has its own pace limits."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    app = create_app(colour_predictor, timeout_s=1.0, temp_dir=uploads, body_timeout_s=2.0,
                     min_upload_kb_s=1.0)
    data = colour_video(tmp_path / "red.mp4", ["red"], 1.0).read_bytes()
    with LiveServer(app) as server:
        t0 = time.monotonic()
        r = httpx.post(f"{server.url}/v1/predict", timeout=30,
                       content=multipart_chunks(data, chunk=len(data) // 6 + 1, delay=0.4),
                       headers={"content-type": "multipart/form-data; boundary=vidlabtest"})
        assert time.monotonic() - t0 > 2.0
        assert r.status_code == 200 and r.json()["top"][0]["label"] == "red", r.text
        assert os.listdir(uploads) == []


def test_slow_inference_times_out_with_504_and_leaves_no_temp_file(tiny_predictor, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    # hundreds of timeline clips: inference alone outlasts the limit
    app = create_app(tiny_predictor, timeout_s=2.0, temp_dir=uploads, max_clips=1000)
    video = pattern_video(tmp_path / "long.mp4", num_frames=960, size=(48, 64), fps=48)
    request = {"files": {"file": ("long.mp4", video.read_bytes())},
               "params": {"window": 0.5, "stride": 0.025}}
    with LiveServer(app) as server:
        r = httpx.post(f"{server.url}/v1/predict", timeout=60, **request)
        assert r.status_code == 504, r.text
        assert "--timeout-s" in r.json()["error"]["message"]
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        deadline = time.monotonic() + 20
        while os.listdir(uploads) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.listdir(uploads) == []
        short = pattern_video(tmp_path / "short.mp4", num_frames=10, size=(48, 64))
        assert upload(server.url, short, params={"window": 0}).status_code == 200
