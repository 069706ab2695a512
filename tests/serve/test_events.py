"""Events from windows (hysteresis, no flapping) and their delivery to a webhook (retries with
back-off against a real local HTTP server, a bounded queue, nothing lost silently)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vidlab.errors import ConfigError
from vidlab.io.live import Backoff
from vidlab.serve.events import Hysteresis, Webhook


def feed(h: Hysteresis, probs: list[float], stride: float = 0.5, length: float = 1.0):
    """Windows `stride` s apart, `length` s long, with these probabilities of "walk"."""
    events = []
    for k, p in enumerate(probs):
        events += h.update("cam", k * stride, k * stride + length, {"walk": p})
    return events


def test_probabilities_wavering_around_the_threshold_do_not_flap():
    h = Hysteresis(["walk"], on_prob=0.6, off_prob=0.4, min_duration=2.0)
    # above and below 0.6 in turn, never long enough: no event at all
    assert feed(h, [0.7, 0.5, 0.7, 0.55, 0.65, 0.3] * 4) == []


def test_a_sustained_label_starts_once_and_a_short_dip_does_not_end_it():
    h = Hysteresis(["walk"], on_prob=0.6, off_prob=0.4, min_duration=1.5)
    probs = [0.1, 0.8, 0.9, 0.7, 0.3, 0.5, 0.45, 0.3, 0.8, 0.9, 0.2, 0.1, 0.1, 0.1]
    events = feed(h, probs)
    assert [e["event"] for e in events] == ["start", "end"]
    start, end = events
    assert start["t_start"] == 0.5 and start["prob"] == 0.9  # from its first window on
    # the dip at windows 4-7 is brief (one window under 0.4, others between the thresholds)
    assert end["t_start"] == 0.5 and end["t_end"] == 5.5 and end["duration"] == 5.0
    assert h.active("cam") == []


def test_an_open_event_is_ended_when_its_source_goes_away():
    h = Hysteresis(["walk"], on_prob=0.5, min_duration=0.0)
    assert [e["event"] for e in feed(h, [0.9])] == ["start"]
    (end,) = h.close("cam", "gave_up")
    assert end["reason"] == "gave_up" and end["event"] == "end" and h.close("cam", "x") == []


def test_thresholds_must_be_ordered():
    with pytest.raises(ConfigError):
        Hysteresis(["walk"], on_prob=0.3, off_prob=0.6)


class Flaky(BaseHTTPRequestHandler):
    """Fails the first `fail` POSTs with 503, then accepts; records what it accepted."""

    fail, seen, accepted = 2, 0, []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        cls.seen += 1
        if cls.seen <= cls.fail:
            self.send_response(503)
        else:
            cls.accepted.append((time.monotonic(), body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky_server():
    Flaky.fail, Flaky.seen, Flaky.accepted = 2, 0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events"
    server.shutdown()


def test_the_webhook_retries_with_back_off_until_the_receiver_takes_it(flaky_server):
    hook = Webhook(flaky_server, backoff=Backoff(0.2, 2.0, 5.0))
    t0 = time.monotonic()
    hook.post({"event": "start", "label": "walk"})
    hook.close(timeout=10)
    assert hook.sent == 1 and hook.failed == 0 and Flaky.seen == 3
    (when, body), = Flaky.accepted
    assert body == {"event": "start", "label": "walk"}
    assert when - t0 >= 0.2 + 0.4  # two waits: 0.2 s, then 0.4 s


def test_an_unreachable_webhook_never_blocks_and_every_loss_is_counted():
    hook = Webhook("http://127.0.0.1:9/nothing", max_queue=3, retries=1,
                   backoff=Backoff(0.05, 2.0, 0.1), timeout=1.0)
    t0 = time.monotonic()
    for k in range(20):
        hook.post({"n": k})
    assert time.monotonic() - t0 < 0.5  # posting is queueing
    hook.close(timeout=3)
    assert hook.sent == 0 and hook.failed + hook.dropped == 20 and hook.dropped >= 16
