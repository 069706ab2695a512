"""Hot reload on a real server under steady load: the bundle replaced on disk, zero failed
requests, the version switching in answers, metrics and the log; a broken bundle rejected with
the old version still serving."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import httpx
from tests.serve.helpers import colour_video, make_colour_bundle, metric, upload
from tests.serve.keyed import KeyedServer

from vidlab.serve.log import read_log

ADMIN = "reload-admin-key-0123456789"
GERMAN = ["rot", "gruen", "blau"]  # v2: the same graph, other label names


def relabelled_copy(src, dest, labels):
    shutil.copytree(src, dest)
    config = json.loads((dest / "config.json").read_text())
    config["labels"] = labels
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def test_replacing_a_bundle_on_disk_under_load_loses_no_request(tmp_path):
    from vidlab.serve.app import create_app

    live = make_colour_bundle(tmp_path / "hot.vidlab")
    staging = relabelled_copy(live, tmp_path / "staging" / "hot.vidlab", GERMAN)
    keys = tmp_path / "keys.txt"
    keys.write_text(f"ops {ADMIN} admin\n")
    auth = {"Authorization": f"Bearer {ADMIN}"}
    video = colour_video(tmp_path / "red.mp4", ["red"], 1.0)
    db = tmp_path / "log.db"
    app = create_app(live, reload_poll_s=0.2, api_keys=keys, db=db, max_batch=4)
    results: list[tuple[int, str | None, str | None]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            r = upload(server.url, video, headers=auth)
            body = r.json()
            results.append((r.status_code, body.get("model"),
                            body["top"][0]["label"] if r.status_code == 200 else r.text))

    with KeyedServer(app, ADMIN) as server:
        v1 = httpx.get(f"{server.url}/v1/models", headers=auth).json()["models"][0]["version"]
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            _wait(lambda: len(results) >= 8)
            old = tmp_path / "old.vidlab"
            os.rename(live, old)  # the usual atomic swap: move the old one away, the new in
            os.rename(staging, live)
            _wait(lambda: any(label == "rot" for _, _, label in results))
            switched = len(results)
            _wait(lambda: len(results) >= switched + 8)
        finally:
            stop.set()
            for t in threads:
                t.join(120)
        listing = httpx.get(f"{server.url}/v1/models", headers=auth).json()["models"][0]
        v2 = listing["version"]
        meta = httpx.get(f"{server.url}/v2/models/hot", headers=auth).json()

        (live / "model.onnx").write_bytes(b"not an onnx graph")  # a broken replacement
        r = httpx.post(f"{server.url}/v1/models/hot/reload", headers=auth, timeout=60)
        after = upload(server.url, video, headers=auth)
        text = httpx.get(f"{server.url}/metrics", headers=auth).text

    assert [r for r in results if r[0] != 200] == []
    assert v2 != v1 and listing["labels"] == GERMAN and meta["versions"] == [v2.split("@")[1]]
    assert {(version, label) for _, version, label in results} == {(v1, "red"), (v2, "rot")}
    # requests already running on the old version finish on it: at most one per other client
    first_new = next(i for i, (_, version, _) in enumerate(results) if version == v2)
    assert all(version == v2 for _, version, _ in results[first_new + len(threads):])
    assert len(results) >= switched + 8
    assert r.status_code == 422 and r.json()["error"]["type"] == "reload_failed"
    assert "previous version keeps serving" in r.json()["error"]["message"]
    assert after.status_code == 200 and after.json()["model"] == v2
    assert after.json()["top"][0]["label"] == "rot"
    assert metric(text, "vidlab_requests_total", f'status="200",version="{v2}"') >= 8
    versions = {row["model_version"] for row in read_log(db)}
    assert versions == {v1, v2}


def _wait(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
