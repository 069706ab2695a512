"""Graceful drain of a real `vidlab serve` process: SIGTERM under load answers every accepted
request, refuses new ones with 503, turns readiness off at once and exits 0; its stderr is JSON
lines carrying request IDs and never a key."""

from __future__ import annotations

import json
import signal
import threading

import httpx
from tests.serve.helpers import colour_video, multipart_chunks, upload
from tests.serve.keyed import spawn_serve

from vidlab.serve.auth import hash_key

KEY = "drain-test-key-0123456789"
ADMIN = "drain-admin-key-9876543210"


def test_sigterm_drains_accepted_requests_and_exits_0(colour_bundle, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"client {KEY}\nops {hash_key(ADMIN)} admin\n")
    video = colour_video(tmp_path / "green.mp4", ["green"], 2.0)
    data = video.read_bytes()
    proc, url = spawn_serve([str(colour_bundle), "--api-keys", str(keys), "--db",
                             str(tmp_path / "log.db"), "--drain-timeout-s", "60"], key=KEY)
    auth = {"Authorization": f"Bearer {KEY}"}
    results: list[httpx.Response | Exception] = []
    started = [threading.Event() for _ in range(4)]

    def slow_upload(i: int) -> None:
        def body():
            # 16 pieces, 0.5 s apart: ~8 s of upload left when SIGTERM comes, time enough for
            # the probes below even on a loaded machine
            for n, chunk in enumerate(multipart_chunks(data, chunk=max(1, len(data) // 16),
                                                       delay=0.5)):
                if n == 1:
                    started[i].set()
                yield chunk
        try:  # still uploading when SIGTERM comes: accepted, so it must be answered
            results.append(httpx.post(
                f"{url}/v1/predict", content=body(), timeout=120,
                headers={**auth, "X-Request-ID": f"slow-{i}",
                         "Content-Type": "multipart/form-data; boundary=vidlabtest"}))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=slow_upload, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        assert all(e.wait(60) for e in started)
        proc.send_signal(signal.SIGTERM)
        ready = httpx.get(f"{url}/v2/health/ready", headers=auth, timeout=10)
        assert ready.status_code == 503 and ready.json() == {"ready": False}
        assert httpx.get(f"{url}/readyz", headers=auth, timeout=10).status_code == 503
        assert httpx.get(f"{url}/v2/health/live", timeout=10).status_code == 200
        refused = upload(url, video, headers={**auth, "X-Request-ID": "late-1"})
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "draining"
        assert refused.json()["error"]["request_id"] == "late-1"
        for t in threads:
            t.join(120)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=30)
    answered = [r for r in results if isinstance(r, httpx.Response)]
    assert len(answered) == 4, results
    assert all(r.status_code == 200 for r in answered), [r.text for r in answered]
    assert {r.json()["top"][0]["label"] for r in answered} == {"green"}

    assert KEY not in err and ADMIN not in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [x for x in lines if x["logger"] == "vidlab.access"]
    by_id = {x["request_id"]: x for x in access}
    assert all(by_id[f"slow-{i}"]["status"] == 200 for i in range(4))
    assert by_id["slow-0"]["key"] == "client" and by_id["slow-0"]["path"] == "/v1/predict"
    assert by_id["late-1"]["status"] == 503
    assert all(x["request_id"] for x in access)
    assert any("draining" in x["message"] for x in lines if x["logger"] != "vidlab.access")
