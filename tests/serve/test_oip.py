"""Open Inference Protocol v2 against a real server, with Triton's own HTTP client; two models
served side by side."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tests.serve.helpers import LiveServer, colour_video, metric, upload
from tritonclient.utils import InferenceServerException


@pytest.fixture(scope="module")
def two_models(colour_predictor, tiny_predictor):
    from vidlab.serve.app import create_app

    app = create_app([colour_predictor, tiny_predictor], max_batch=4)
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def red_clips(colour_predictor, serve_root):
    video = colour_video(serve_root / "oip_red.mp4", ["red"], seconds_each=2.0)
    return np.stack(colour_predictor.decode(video, 1.0, 0.5).clips)


def _client(server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.mark.parametrize("binary", [True, False])
def test_triton_client_infers_through_the_batcher(two_models, red_clips, colour_predictor,
                                                  binary):
    client = _client(two_models)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("colour")
    meta = client.get_model_metadata("colour")
    assert meta["inputs"] == [{"name": "clip", "datatype": "FP32", "shape": [-1, 3, 4, 32, 32]}]
    assert {o["name"] for o in meta["outputs"]} == {"probabilities", "logits"}
    assert meta["versions"] == [colour_predictor.version.split("@")[1]]

    clip = triton.InferInput("clip", list(red_clips.shape), "FP32")
    clip.set_data_from_numpy(red_clips, binary_data=binary)
    wanted = [triton.InferRequestedOutput("probabilities", binary_data=binary),
              triton.InferRequestedOutput("logits", binary_data=binary)]
    result = client.infer("colour", [clip], outputs=wanted, request_id="req-1")
    probs = result.as_numpy("probabilities")
    assert probs.shape == (len(red_clips), 3)
    np.testing.assert_allclose(probs, colour_predictor.probabilities(red_clips), atol=1e-6)
    assert (probs.argmax(1) == colour_predictor.labels.index("red")).all()
    logits = result.as_numpy("logits")
    np.testing.assert_allclose(np.exp(logits), probs, rtol=1e-5)
    response = result.get_response()
    assert response["id"] == "req-1" and response["model_name"] == "colour"


def test_protocol_errors_are_one_line_and_rejected(two_models, red_clips):
    client = _client(two_models)
    wrong = triton.InferInput("clip", [1, 3, 4, 16, 16], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 3, 4, 16, 16), np.float32))
    with pytest.raises(InferenceServerException, match=r"shape \[B, 3, 4, 32, 32\]"):
        client.infer("colour", [wrong])
    with pytest.raises(InferenceServerException, match="no model named 'nope'"):
        client.get_model_metadata("nope")
    assert not client.is_model_ready("nope")

    url = f"{two_models.url}/v2/models/colour/infer"
    r = httpx.post(url, content=b"{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    r = httpx.post(url, json={"inputs": [{"name": "clip", "shape": [1, 3, 4, 32, 32],
                                          "datatype": "FP32", "data": [0.0] * 5}]})
    assert r.status_code == 400 and "5 values" in r.json()["error"]
    too_many = {"inputs": [{"name": "clip", "shape": [33, 3, 4, 32, 32], "datatype": "FP32",
                            "data": [0.0] * (33 * 3 * 4 * 32 * 32)}]}
    r = httpx.post(url, json=too_many, timeout=60)
    assert r.status_code == 413 and "--max-clips" in r.json()["error"]


def test_json_tensors_nested_and_versioned_route(two_models, red_clips, colour_predictor):
    version = colour_predictor.version.split("@")[1]
    body = {"id": "x", "inputs": [{"name": "clip", "shape": list(red_clips[:1].shape),
                                   "datatype": "FP32", "data": red_clips[:1].tolist()}],
            "outputs": [{"name": "probabilities"}]}
    r = httpx.post(f"{two_models.url}/v2/models/colour/versions/{version}/infer", json=body,
                   timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"]
    assert [o["name"] for o in out] == ["probabilities"] and out[0]["shape"] == [1, 3]
    np.testing.assert_allclose(out[0]["data"], colour_predictor.probabilities(red_clips[:1])[0],
                               atol=1e-6)
    r = httpx.post(f"{two_models.url}/v2/models/colour/versions/0000/infer", json=body)
    assert r.status_code == 404
    assert httpx.get(f"{two_models.url}/v2").json()["extensions"] == ["binary_tensor_data"]


def test_two_models_side_by_side(two_models, tiny_predictor, colour_predictor, serve_root,
                                 red_clips):
    listing = httpx.get(f"{two_models.url}/v1/models").json()
    assert listing["default"] == "colour"
    assert [m["name"] for m in listing["models"]] == ["colour", "tiny"]
    video = colour_video(serve_root / "oip_two.mp4", ["blue"])
    default = upload(two_models.url, video)
    assert default.status_code == 200 and default.json()["model"] == colour_predictor.version
    assert default.json()["top"][0]["label"] == "blue"
    tiny = upload(two_models.url, video, params={"model": "tiny"})
    assert tiny.status_code == 200 and tiny.json()["model"] == tiny_predictor.version
    assert tiny.json()["top"][0]["label"] in tiny_predictor.labels
    r = upload(two_models.url, video, params={"model": "nope"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "unknown_model"
    assert httpx.get(f"{two_models.url}/v1/model", params={"model": "tiny"}).json()[
        "version"] == tiny_predictor.version

    clips = np.random.default_rng(0).normal(size=(2, 3, 8, 32, 32)).astype(np.float32)
    client = _client(two_models)
    x = triton.InferInput("clip", list(clips.shape), "FP32")
    x.set_data_from_numpy(clips)
    probs = client.infer("tiny", [x]).as_numpy("probabilities")
    np.testing.assert_allclose(probs, tiny_predictor.probabilities(clips), atol=1e-5)

    text = httpx.get(f"{two_models.url}/metrics").text
    assert metric(text, "vidlab_requests_total", 'model="tiny"') >= 2
    assert metric(text, "vidlab_requests_total",
                  f'status="200",model="colour",version="{colour_predictor.version}"') >= 1
