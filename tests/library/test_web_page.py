"""The library page beside a served model: its HTTP API, what it refuses to serve, and the page
itself in a real headless Chromium (Debian's, driven by Playwright): search, thumbnails, a
player that opens at the moment by range requests, the label timeline, a saved correction."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from tests.library.conftest import true_label
from tests.serve.helpers import LiveServer

from vidlab.library.index import open_index
from vidlab.library.web import mount_library
from vidlab.serve.app import create_app

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def server(colour_bundle, colour_index):
    app = create_app(colour_bundle)
    mount_library(app, colour_index)
    seen: list[tuple[str, str | None, int]] = []

    @app.middleware("http")
    async def record(request, call_next):  # which media requests were ranged, and answered 206
        response = await call_next(request)
        if request.url.path.startswith("/library/media/"):
            seen.append((request.url.path, request.headers.get("range"), response.status_code))
        return response

    with LiveServer(app) as live:
        live.seen = seen
        yield live


def test_media_is_served_with_range_requests(server, long_library):
    root, _ = long_library
    size = (root / "long_1.mp4").stat().st_size
    part = httpx.get(f"{server.url}/library/media/long_1.mp4", headers={"Range": "bytes=10-209"})
    assert part.status_code == 206 and len(part.content) == 200
    assert part.headers["content-range"] == f"bytes 10-209/{size}"
    assert part.content == (root / "long_1.mp4").read_bytes()[10:210]
    whole = httpx.get(f"{server.url}/library/media/long_1.mp4")
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/mp4" and len(whole.content) == size
    thumb = httpx.get(f"{server.url}/library/thumb/long_1.mp4", params={"t": 3.0})
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"  # a JPEG


@pytest.mark.parametrize("path", [
    "../colours.vlx/library.sqlite", "..%2Fcolours.vlx%2Flibrary.sqlite", "%2e%2e/truth.json",
    "%2Fetc%2Fpasswd", "long_0.mp4/../long_1.mp4", "./long_1.mp4", "nothere.mp4",
    "long_1.mp4%00.txt"])
def test_nothing_outside_the_indexed_library_is_served(server, path):
    import http.client
    import json
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    for kind in ("media", "thumb"):
        # http.client sends the path as written (httpx would resolve the dot segments first)
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        conn.request("GET", f"/library/{kind}/{path}")
        r = conn.getresponse()
        body = r.read()
        conn.close()
        assert r.status == 404, (kind, path, r.status)
        assert json.loads(body)["error"]["type"] == "not_found"


def test_an_indexed_file_replaced_by_a_link_out_of_the_library_is_not_served(
        small_library, tiny_bundle, tmp_path):
    from vidlab.library.build import build_index

    build_index(small_library, tiny_bundle, tmp_path / "x.vlx", window=1.0, stride=0.5,
                workers=1)
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"private")
    (small_library / "a.mp4").unlink()
    (small_library / "a.mp4").symlink_to(secret)
    lib = open_index(tmp_path / "x.vlx")
    assert lib.resolve_media("a.mp4") is None and lib.resolve_media("b.mp4") is not None


def test_corrections_api_bounds_and_checks_its_input(server):
    url = f"{server.url}/library/api/corrections"
    big = httpx.post(url, content=b"{" + b" " * 10_000 + b"}",
                     headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    assert httpx.post(url, content=b"not json").status_code == 400
    assert httpx.post(url, json={"video": "long_0.mp4"}).status_code == 422
    outside = httpx.post(url, json={"video": "../x.mp4", "start": 0, "end": 1, "label": "red",
                                    "who": "me"})
    assert outside.status_code == 404
    assert httpx.get(f"{server.url}/library/api/search",
                     params={"label": "purple"}).status_code == 404


@pytest.fixture(scope="module")
def page(server):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (/usr/bin/chromium is missing)")
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(60_000)
        page.goto(f"{server.url}/library/")
        page.wait_for_selector("body[data-ready='1']")
        yield page
        browser.close()


@pytest.mark.browser
def test_search_play_at_the_moment_timeline_and_correct(page, server, long_library, colour_index):
    _, truth = long_library
    assert "4 videos" in page.locator("#info").inner_text()
    page.fill("#query", "green")
    page.click("#search")
    page.wait_for_selector("body[data-state='results']")
    cards = page.locator(".result")
    assert cards.count() == sum(s["label"] == "green" for segs in truth.values() for s in segs)
    assert {cards.nth(i).get_attribute("data-label") for i in range(cards.count())} == {"green"}
    page.wait_for_function("[...document.querySelectorAll('.result img')].every("
                           "i => i.complete && i.naturalWidth > 0)")

    card = cards.nth(1)
    video, start = card.get_attribute("data-video"), float(card.get_attribute("data-start"))
    card.click()
    page.wait_for_selector(f"body[data-playing='{video}']")
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {start})"
                           " < 0.6")
    assert page.locator("#player").evaluate("v => v.readyState") >= 1
    assert any(path.endswith(video) and rng and status == 206 for path, rng, status in server.seen)

    page.wait_for_selector(f"body[data-timeline='{video}']")
    segments = page.locator("#timeline .segment")
    labels = [segments.nth(i).get_attribute("data-label") for i in range(segments.count())]
    assert labels == [s["label"] for s in truth[video]]
    assert page.locator("#legend li").count() == 3

    page.fill("#new-label", "teal")
    page.fill("#who", "tester")
    page.click("#save-correction")
    page.wait_for_selector("body[data-corrected]")
    assert "green → teal by tester" in page.locator("#correct-status").inner_text()
    page.wait_for_function("[...document.querySelectorAll('#timeline .segment')]"
                           ".some(s => s.dataset.label === 'teal')")
    stored = open_index(colour_index).db.corrections(video)
    assert [(c["old"], c["new"], c["who"]) for c in stored] == [("green", "teal", "tester")]
    assert abs(stored[0]["start"] - start) < 1e-6


@pytest.mark.browser
def test_more_like_this_from_a_result(page, long_library):
    _, truth = long_library
    page.fill("#query", "blue")
    page.click("#search")
    page.wait_for_selector("body[data-state='results']")
    page.locator(".result .like").first.click()
    page.wait_for_function("document.getElementById('status').textContent.includes('like')")
    page.wait_for_selector("body[data-state='results']")
    cards = page.locator(".result")
    found = [(cards.nth(i).get_attribute("data-video"),
              (float(cards.nth(i).get_attribute("data-start"))
               + float(cards.nth(i).get_attribute("data-end"))) / 2)
             for i in range(cards.count())]
    assert len(found) >= 10
    assert sum(true_label(truth[v], t) == "blue" for v, t in found[:10]) >= 9
    shot = os.environ.get("VIDLAB_LIBRARY_SCREENSHOT")
    if shot:  # docs/library.png is made this way
        page.fill("#query", "green")  # a video's first frame: headless Chromium paints no other
        page.click("#search")
        page.wait_for_selector("body[data-state='results']")
        card = page.locator(".result[data-start='0']").first
        card.click()
        page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - "
                               f"{card.get_attribute('data-start')}) < 0.3 && "
                               "!document.getElementById('player').seeking")
        page.wait_for_timeout(1000)
        page.screenshot(path=shot)
