"""The web page of a server with API keys and two models, in a real headless Chromium: the page
asks for the key, then lets the user pick the model that answers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.serve.helpers import colour_video, make_colour_bundle
from tests.serve.keyed import KeyedServer
from tests.serve.test_reload import GERMAN, relabelled_copy

CHROMIUM = Path("/usr/bin/chromium")
KEY = "page-key-0123456789abcdef"
pytestmark = pytest.mark.browser


def test_the_page_asks_for_a_key_and_predicts_with_the_chosen_model(tmp_path):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium (/usr/bin/chromium is missing)")
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    from vidlab.serve.app import create_app

    colour = make_colour_bundle(tmp_path / "colour.vidlab")
    german = relabelled_copy(colour, tmp_path / "farbe.vidlab", GERMAN)
    keys = tmp_path / "keys.txt"
    keys.write_text(f"browser {KEY}\n")
    video = colour_video(tmp_path / "red.mp4", ["red"], 1.0)
    app = create_app([colour, german], api_keys=keys)
    with KeyedServer(app, KEY) as server, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"])
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(server.url)
        page.wait_for_selector("#key-form:not([hidden])")
        assert "needs an API key" in page.locator("#model").inner_text()
        page.fill("#api-key", "wrong-key-0123456789")
        page.click("#key-form button")
        page.wait_for_function("document.getElementById('model').textContent.includes('refused')")
        page.fill("#api-key", KEY)
        page.click("#key-form button")
        page.wait_for_selector("#model-select:not([hidden])")
        options = page.locator("#model-select option")
        assert [options.nth(i).get_attribute("value") for i in range(options.count())] == [
            "colour", "farbe"]

        page.set_input_files("#file", str(video))
        page.wait_for_selector("body[data-state=done]")
        assert page.locator("#top5 li").first.get_attribute("data-label") == "red"

        page.select_option("#model-select", "farbe")
        page.wait_for_function("document.getElementById('model').textContent.includes('farbe')")
        page.evaluate("() => { document.body.dataset.state = ''; }")
        page.set_input_files("#file", str(colour_video(tmp_path / "red2.mp4", ["red"], 1.0)))
        page.wait_for_selector("body[data-state=done], body[data-state=error]")
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        assert page.locator("#top5 li").first.get_attribute("data-label") == "rot"
        browser.close()
