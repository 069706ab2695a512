"""`vidlab serve --watch`: the server watches a stream beside its uploads — one model, one
batcher, its metrics and log — and the web page (in a real Chromium) shows the live label."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from tests.serve.helpers import LiveServer, colour_video, metric, upload

from vidlab.serve.app import create_app
from vidlab.serve.log import read_log

CHROMIUM = Path("/usr/bin/chromium")


def wait_for(url: str, predicate, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = httpx.get(f"{url}/v1/streams", timeout=10).json()
        if predicate(data):
            return data
        time.sleep(0.2)
    raise AssertionError(f"the streams never got there: {data}")


def label(data: dict) -> str | None:
    window = data["streams"][0]["window"]
    return window["top"][0]["label"] if window else None


def test_the_server_watches_a_stream_beside_its_uploads(colour_predictor, tmp_path):
    camera = colour_video(tmp_path / "camera.mp4", ["red", "red", "blue", "blue", "blue"],
                          seconds_each=1.0, fps=25)
    db = tmp_path / "serve.db"
    app = create_app(colour_predictor, db=db, watch=[str(camera)],
                     watch_options={"stride": 0.25, "on": ["blue"], "min_duration": 0.5})
    with LiveServer(app) as server:
        data = wait_for(server.url, lambda d: label(d) == "red")
        assert data["streams"][0]["source"] == str(camera)
        assert data["streams"][0]["status"] == "connected"
        answer = upload(server.url, colour_video(tmp_path / "green.mp4", ["green"], 1.0))
        assert answer.status_code == 200 and answer.json()["top"][0]["label"] == "green"
        data = wait_for(server.url, lambda d: d["streams"][0]["active"] == ["blue"])
        assert label(data) == "blue"
        assert any(e.get("event") == "start" and e["label"] == "blue" for e in data["events"])
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert metric(metrics, "vidlab_watch_windows_total", f'source="{camera}"') > 0
    assert metric(metrics, "vidlab_requests_total", 'status="200"') >= 1  # the upload
    rows = read_log(db)
    assert {r["source"] for r in rows} == {None, str(camera)}  # uploads and windows, one log
    assert sum(r["source"] == str(camera) for r in rows) >= 8


def test_without_watch_there_are_no_streams(colour_predictor):
    with LiveServer(create_app(colour_predictor)) as server:
        assert httpx.get(f"{server.url}/v1/streams", timeout=10).json() == {
            "streams": [], "events": []}


@pytest.mark.browser
def test_the_web_page_shows_each_streams_live_label(colour_predictor, tmp_path):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (/usr/bin/chromium is missing)")
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    camera = colour_video(tmp_path / "camera.mp4", ["green"] * 2 + ["blue"] * 30,
                          seconds_each=1.0, fps=25)
    app = create_app(colour_predictor, watch=[str(camera)],
                     watch_options={"stride": 0.25, "on": ["blue"], "min_duration": 0.5})
    with LiveServer(app) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(server.url)
        row = page.locator(f'#streams li[data-source="{camera}"]')
        page.wait_for_selector(f'#streams li[data-source="{camera}"][data-label="blue"]')
        assert page.locator("#streams-box").is_visible()
        assert "blue" in row.locator(".now").inner_text()
        page.wait_for_selector("#streams li .event")
        assert row.locator(".event").inner_text() == "blue"
        browser.close()
