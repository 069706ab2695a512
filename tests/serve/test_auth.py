"""API keys, admin routes, rate limits, request IDs, CORS and upload names, on a real server."""

from __future__ import annotations

import httpx
import pytest
from tests.serve.helpers import LiveServer, colour_video, metric, upload
from tests.serve.keyed import KeyedServer

from vidlab.errors import ConfigError
from vidlab.serve.auth import ApiKeys, RateLimiter, hash_key

USER_KEY = "user-key-0123456789abcdef"
ADMIN_KEY = "admin-key-fedcba9876543210"
PROBE_KEY = "probe-key-5555555555555555"  # the readiness probe's own (its own rate bucket)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text(f"# who  key-or-hash  role\nalice {USER_KEY}\n\n"
                    f"ops {hash_key(ADMIN_KEY)} admin   # the file holds only its hash\n"
                    f"probe {PROBE_KEY}\n")
    return path


@pytest.fixture(scope="module")
def secured(colour_predictor, key_file, tmp_path_factory):
    from vidlab.serve.app import create_app

    uploads = tmp_path_factory.mktemp("uploads")
    app = create_app(colour_predictor, api_keys=key_file, temp_dir=uploads, rate_limit=1000)
    with KeyedServer(app, USER_KEY) as server:
        server.uploads = uploads
        yield server


def test_key_required_everywhere_but_liveness(secured, serve_root):
    url = secured.url
    for path in ("/v1/models", "/v1/model", "/metrics", "/readyz", "/v2/health/ready",
                 "/v2/models/colour", "/v2/models/colour/ready"):
        r = httpx.get(url + path, headers={"X-Request-ID": "probe-1"})
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["x-request-id"] == "probe-1"
        error = r.json()["error"]
        assert error["type"] == "unauthorized" and error["request_id"] == "probe-1"
    r = httpx.post(f"{url}/v2/models/colour/infer", json={"inputs": []})
    assert r.status_code == 401
    video = colour_video(serve_root / "auth_red.mp4", ["red"])
    assert upload(url, video).status_code == 401
    assert upload(url, video, headers=_auth("wrong-key-0123456789")).status_code == 401
    assert upload(url, video, headers={"Authorization": f"Basic {USER_KEY}"}).status_code == 401
    for path in ("/healthz", "/v2/health/live", "/"):  # liveness and the page shell
        assert httpx.get(url + path).status_code == 200, path

    ok = upload(url, video, headers=_auth(USER_KEY))
    assert ok.status_code == 200 and ok.json()["top"][0]["label"] == "red"
    assert len(ok.headers["x-request-id"]) == 32  # generated when the client sends none
    assert httpx.get(f"{url}/v2/health/ready", headers=_auth(ADMIN_KEY)).json() == {"ready": True}


def test_admin_routes_need_an_admin_key(secured, colour_predictor):
    url = f"{secured.url}/v1/models/colour/reload"
    assert httpx.post(url).status_code == 401
    r = httpx.post(url, headers=_auth(USER_KEY))
    assert r.status_code == 403 and "'alice' is not" in r.json()["error"]["message"]
    r = httpx.post(url, headers=_auth(ADMIN_KEY), timeout=60)
    assert r.status_code == 200
    assert r.json() == {"model": "colour", "previous_version": colour_predictor.version,
                        "version": colour_predictor.version, "reloaded": False}
    r = httpx.post(f"{secured.url}/v1/models/nope/reload", headers=_auth(ADMIN_KEY))
    assert r.status_code == 404


def test_admin_routes_are_refused_without_a_key_file(colour_predictor):
    from vidlab.serve.app import create_app

    with LiveServer(create_app(colour_predictor)) as server:
        assert httpx.get(f"{server.url}/v1/models").status_code == 200
        r = httpx.post(f"{server.url}/v1/models/colour/reload")
        assert r.status_code == 403 and "--api-keys" in r.json()["error"]["message"]


def test_a_burst_is_rate_limited_per_key(colour_predictor, key_file):
    from vidlab.serve.app import create_app

    app = create_app(colour_predictor, api_keys=key_file, rate_limit=0.05, rate_burst=3)
    with KeyedServer(app, PROBE_KEY) as server, httpx.Client(base_url=server.url) as client:
        codes = [client.get("/v1/models", headers=_auth(USER_KEY)).status_code
                 for _ in range(6)]
        assert codes[:3] == [200] * 3 and codes[3:] == [429] * 3
        r = client.get("/v1/models", headers=_auth(USER_KEY))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["type"] == "rate_limited" and r.json()["error"]["request_id"]
        assert client.get("/v1/models", headers=_auth(ADMIN_KEY)).status_code == 200
        assert all(client.get("/healthz").status_code == 200 for _ in range(10))
        text = client.get("/metrics", headers=_auth(ADMIN_KEY)).text
        assert metric(text, "vidlab_http_refusals_total", 'reason="rate_limited"') == 4


def test_cors_only_for_the_origins_given(colour_predictor):
    from vidlab.serve.app import create_app

    origin = {"Origin": "http://dash.example", "Access-Control-Request-Method": "POST",
              "Access-Control-Request-Headers": "authorization"}
    with LiveServer(create_app(colour_predictor)) as server:
        r = httpx.options(f"{server.url}/v1/predict", headers=origin)
        assert "access-control-allow-origin" not in r.headers
        r = httpx.get(f"{server.url}/v1/models", headers={"Origin": "http://dash.example"})
        assert "access-control-allow-origin" not in r.headers
    with LiveServer(create_app(colour_predictor, cors=["http://dash.example"])) as server:
        r = httpx.options(f"{server.url}/v1/predict", headers=origin)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "http://dash.example"
        r = httpx.options(f"{server.url}/v1/predict", headers={**origin,
                                                               "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_upload_names_never_become_server_paths(secured, serve_root, tmp_path):
    video = colour_video(serve_root / "auth_blue.mp4", ["blue"])
    with open(video, "rb") as f:
        r = httpx.post(f"{secured.url}/v1/predict", headers=_auth(USER_KEY), timeout=60,
                       files={"file": ("../../../escaped.mp4", f, "video/mp4")})
    assert r.status_code == 200 and r.json()["path"] == "escaped.mp4"
    assert not list(secured.uploads.parent.rglob("escaped*"))
    assert list(secured.uploads.iterdir()) == []


def test_key_file_errors_name_the_line_never_the_key(tmp_path):
    bad = tmp_path / "keys.txt"
    bad.write_text("alice short-secret\n")
    with pytest.raises(ConfigError, match=r"keys.txt: line 1: a key needs at least 16") as exc:
        ApiKeys.load(bad)
    assert "short-secret" not in str(exc.value)
    bad.write_text(f"a {USER_KEY}\na {ADMIN_KEY}\n")
    with pytest.raises(ConfigError, match="'a' is used twice"):
        ApiKeys.load(bad)
    bad.write_text(f"a {USER_KEY} root\n")
    with pytest.raises(ConfigError, match="line 1: the third field may only be 'admin'"):
        ApiKeys.load(bad)
    bad.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no key"):
        ApiKeys.load(bad)
    keys = ApiKeys.load(_write(tmp_path / "k2.txt", f"{USER_KEY}\nb {hash_key(ADMIN_KEY)} admin"))
    assert keys.identify(USER_KEY).name == "key1"
    assert keys.identify(ADMIN_KEY).admin and keys.identify(ADMIN_KEY[:-1]) is None


def test_token_bucket_refills_at_its_rate():
    limiter = RateLimiter(rate=2.0, burst=2, max_clients=2)
    assert [limiter.wait_s("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert limiter.wait_s("a", now=0.5) == 0.0  # one token came back in 0.5 s
    for who in ("b", "c", "d"):  # bounded: old clients are forgotten
        limiter.wait_s(who, now=1.0)
    assert len(limiter._buckets) == 2


def _write(path, text):
    path.write_text(text)
    return path
