"""The real HTTP server (uvicorn on a free loopback port), spoken to with httpx."""

from __future__ import annotations

import os
import time

import httpx
import pytest
from tests.serve.helpers import LiveServer, colour_video, metric, multipart_chunks, upload

from vidlab.serve.app import create_app
from vidlab.serve.log import read_log


@pytest.fixture(scope="module")
def server(colour_predictor, tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    uploads = root / "uploads"
    uploads.mkdir()
    app = create_app(colour_predictor, max_upload_mb=1.0, max_duration_s=8.0, timeout_s=30,
                     db=root / "log.db", temp_dir=uploads, max_wait_ms=5)
    with LiveServer(app) as live:
        live.uploads, live.db = uploads, root / "log.db"
        yield live


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return {
        "red": colour_video(d / "red.mp4", ["red"], 1.5),
        "green": colour_video(d / "green.webm", ["green"], 1.5, codec="vp9"),
        "blue": colour_video(d / "blue.mkv", ["blue"], 1.5, size=(60, 44)),
        "rgb": colour_video(d / "rgb.mp4", ["red", "green", "blue"], 2.0),
        "long": colour_video(d / "long.mp4", ["red"], 10.0, size=(32, 32)),
    }


def assert_healthy_and_clean(server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").status_code == 200
    deadline = time.monotonic() + 10
    while os.listdir(server.uploads) and time.monotonic() < deadline:
        time.sleep(0.05)  # a timed-out decode removes its file when it ends
    assert os.listdir(server.uploads) == []


@pytest.mark.parametrize("colour", ["red", "green", "blue"])
def test_uploaded_video_is_classified_by_its_colour(server, videos, colour):
    r = upload(server.url, videos[colour])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["path"] == videos[colour].name  # the client's name, never a server path
    assert body["top"][0]["label"] == colour and body["top"][0]["prob"] > 0.9
    assert body["windows"] == []
    assert body["video"]["duration"] == pytest.approx(1.5, abs=0.11)
    assert_healthy_and_clean(server)


def test_long_upload_gets_a_timeline_with_default_and_requested_windows(server, videos):
    body = upload(server.url, videos["rgb"]).json()
    assert [(w["start"], w["end"]) for w in body["windows"]] == \
        [(float(i), float(i + 2)) for i in range(5)]  # server default: 2 s windows, 1 s apart
    body = upload(server.url, videos["rgb"], params={"window": 1, "stride": 1, "top_k": 1}).json()
    assert [w["top"][0]["label"] for w in body["windows"]] == \
        ["red", "red", "green", "green", "blue", "blue"]
    assert all(len(w["top"]) == 1 for w in body["windows"])
    body = upload(server.url, videos["rgb"], params={"window": 0}).json()
    assert body["windows"] == []
    r = upload(server.url, videos["rgb"], params={"window": 1, "stride": 0.001})
    assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"
    assert "timeline stride 0.001 s is shorter than one frame" in r.json()["error"]["message"]


def test_model_health_and_page_endpoints(server, colour_predictor):
    model = httpx.get(f"{server.url}/v1/model").json()
    assert model["labels"] == ["red", "green", "blue"]
    assert model["version"] == colour_predictor.version and model["runtime"] == "onnx"
    assert model["preprocess"]["num_frames"] == 4 and model["metrics"]["val"]["top1"] == 1.0
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and 'type="file"' in page.text
    assert "http" not in page.text.split("<footer")[0].replace("http-equiv", "")  # no CDN
    assert httpx.get(f"{server.url}/static/app.js").status_code == 200
    missing = httpx.get(f"{server.url}/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def _truncated(path, tmp_path):
    data = path.read_bytes()
    out = tmp_path / "cut.mp4"
    out.write_bytes(data[: len(data) // 2])
    return out


@pytest.mark.parametrize("case, status, kind", [
    ("random_bytes", 415, "unsupported_media"),
    ("text_file", 415, "unsupported_media"),
    ("empty_file", 415, "unsupported_media"),
    ("truncated_mp4", 422, "undecodable_video"),
    ("too_long", 413, "video_too_long"),
    ("too_big", 413, "upload_too_large"),
    ("too_big_chunked", 413, "upload_too_large"),
    ("not_multipart", 415, "unsupported_media"),
    ("no_file_field", 422, "missing_file"),
    ("bad_query", 422, "invalid_request"),
])
def test_bad_requests_get_clear_json_errors_and_leave_the_server_healthy(
        server, videos, tmp_path, case, status, kind):
    url = f"{server.url}/v1/predict"
    if case == "random_bytes":
        (tmp_path / "x.mp4").write_bytes(os.urandom(5000))
        r = upload(server.url, tmp_path / "x.mp4")
    elif case == "text_file":
        (tmp_path / "notes.txt").write_text("not a video\n" * 50)
        r = upload(server.url, tmp_path / "notes.txt")
    elif case == "empty_file":
        (tmp_path / "empty.mp4").write_bytes(b"")
        r = upload(server.url, tmp_path / "empty.mp4")
    elif case == "truncated_mp4":
        r = upload(server.url, _truncated(videos["red"], tmp_path))
    elif case == "too_long":
        r = upload(server.url, videos["long"])
    elif case == "too_big":
        r = httpx.post(url, files={"file": ("big.mp4", os.urandom(1_500_000))}, timeout=30)
    elif case == "too_big_chunked":
        r = httpx.post(url, content=multipart_chunks(os.urandom(1_500_000)), timeout=30,
                       headers={"content-type": "multipart/form-data; boundary=vidlabtest"})
        assert "content-length" not in r.request.headers
    elif case == "not_multipart":
        r = httpx.post(url, content=videos["red"].read_bytes(),
                       headers={"content-type": "video/mp4"})
    elif case == "no_file_field":
        r = httpx.post(url, files={"video": ("red.mp4", videos["red"].read_bytes())})
    else:
        r = upload(server.url, videos["red"], params={"top_k": 0})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["status"] == status and error["type"] == kind
    assert len(error["message"]) > 10 and str(server.uploads) not in error["message"]
    assert_healthy_and_clean(server)
    assert upload(server.url, videos["red"]).json()["top"][0]["label"] == "red"


def test_metrics_count_requests_labels_batches_and_inputs(server, videos):
    upload(server.url, videos["blue"])
    text = httpx.get(f"{server.url}/metrics").text
    assert metric(text, "vidlab_requests_total", 'status="200"') >= 1
    assert metric(text, "vidlab_predictions_total", 'label="blue"') >= 1
    assert metric(text, "vidlab_batch_size_count") >= 1
    assert metric(text, "vidlab_request_latency_seconds_count") >= 1
    assert metric(text, "vidlab_decode_seconds_count") >= 1
    assert metric(text, "vidlab_inference_seconds_count") >= 1
    assert metric(text, "vidlab_input_height_pixels_count") >= 1
    assert metric(text, "vidlab_input_duration_seconds_sum") > 0
    assert "vidlab_queue_depth" in text and "vidlab_clips_waiting" in text


def test_every_answer_is_appended_to_the_prediction_log(server, videos, colour_predictor):
    before = len(read_log(server.db))
    upload(server.url, videos["green"])
    upload(server.url, videos["red"], params={"top_k": 0})
    rows = read_log(server.db)[before:]
    assert [r["status"] for r in rows] == [200, 422]
    ok = rows[0]
    assert ok["top_label"] == "green" and ok["confidence"] > 0.9
    assert ok["model_version"] == colour_predictor.version
    assert (ok["width"], ok["height"]) == (64, 48) and ok["fps"] == pytest.approx(10)
    assert ok["latency_ms"] > 0 and ok["brightness"] > 0 and ok["motion"] > 0
    assert rows[1]["error"] == "invalid_request"
