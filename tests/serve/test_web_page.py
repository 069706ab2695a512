"""The web page in a real headless Chromium (Debian's, driven by Playwright): upload, read result."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.serve.helpers import LiveServer, colour_video

from vidlab.serve.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_url(colour_predictor):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (/usr/bin/chromium is missing)")
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    with LiveServer(create_app(colour_predictor, max_upload_mb=1)) as server:
        yield server.url


@pytest.fixture(scope="module")
def page(page_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"])
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(page_url)
        page.wait_for_function("document.getElementById('model').textContent.includes('labels')")
        yield page
        browser.close()


def test_uploading_a_video_shows_top5_bars_and_a_timeline(page, tmp_path):
    video = colour_video(tmp_path / "red-then-blue.mp4", ["red", "red", "blue"], 2.0)
    page.set_input_files("#file", str(video))
    page.wait_for_selector("body[data-state=done]")
    rows = page.locator("#top5 li")
    labels = [rows.nth(i).get_attribute("data-label") for i in range(rows.count())]
    probs = [float(rows.nth(i).get_attribute("data-prob")) for i in range(rows.count())]
    assert sorted(labels) == ["blue", "green", "red"] and labels[0] == "red"
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-6
    width = page.locator("#top5 li .bar > div").first.evaluate("e => e.style.width")
    assert width == f"{100 * probs[0]:.1f}%"
    assert page.locator("#top5 li .prob").first.inner_text() == f"{100 * probs[0]:.1f}%"
    segments = page.locator("#timeline .segment")
    assert page.locator("#timeline-box").is_visible() and segments.count() == 5
    timeline = [segments.nth(i).get_attribute("data-label") for i in range(segments.count())]
    assert timeline[0] == "red" and timeline[-1] == "blue"
    assert page.locator("#error").is_hidden()
    assert page.locator("#player").evaluate("v => v.src.startsWith('blob:')")


def test_a_file_that_is_not_a_video_shows_the_error_in_words(page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a video\n" * 20)
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#error:not([hidden])")
    message = page.locator("#error").inner_text()
    assert "notes.txt" in message and "not a video" in message


def test_dropping_a_video_on_the_page_predicts_it(page, tmp_path):
    import base64

    video = colour_video(tmp_path / "green.mp4", ["green"], 1.0)
    page.evaluate("() => { document.body.dataset.state = ''; }")
    page.evaluate("""([name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], name, { type: "video/mp4" }));
        document.getElementById("drop").dispatchEvent(
            new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    }""", [video.name, base64.b64encode(video.read_bytes()).decode()])
    page.wait_for_selector("body[data-state=done]")
    assert page.locator("#top5 li").first.get_attribute("data-label") == "green"
    assert page.locator("#timeline-box").is_hidden()  # 1 s: no timeline
    assert "green.mp4" in page.locator("#status").inner_text()
