"""`vidlab watch` end to end on files: predict's windows, events with hysteresis, clips around
them, the webhook, the prediction log `vidlab monitor` reads, and a clean stop on SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import numpy as np
import pytest
from tests.serve.helpers import colour_video

from vidlab.serve.log import read_log
from vidlab.serve.stream import watch

WINDOW_KEYS = {"type", "source", "t_start", "t_end", "wall_time", "latency_ms", "top", "window"}


def vidlab(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit status, stdout, stderr)."""
    from vidlab.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


class Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_watching_a_file_gives_the_windows_and_answers_of_predict(tiny_predictor, tmp_path):
    from tests.serve.helpers import pattern_video

    path = pattern_video(tmp_path / "long.mp4", num_frames=60, fps=12, seed=4)  # 5 s
    records = list(watch(tiny_predictor, [str(path)], window=2.0, stride=1.0, top_k=6))
    wins = [r for r in records if r["type"] == "window"]
    assert [w["window"] for w in wins] == [0, 1, 2, 3] and set(wins[0]) == WINDOW_KEYS
    expected = tiny_predictor.predict_file(path, top_k=6, window=2.0, stride=1.0)["windows"]
    for got, want in zip(wins, expected, strict=False):
        assert (got["t_start"], got["t_end"]) == (want["start"], want["end"])
        assert [t["label"] for t in got["top"]] == [t["label"] for t in want["top"]]
        assert np.allclose([t["prob"] for t in got["top"]], [t["prob"] for t in want["top"]],
                           atol=1e-6)
    assert [r["status"] for r in records if r["type"] == "status"] == ["connected", "ended"]


def test_the_cli_turns_windows_into_events_clips_webhook_posts_and_a_log(colour_bundle,
                                                                         tmp_path, capsys):
    video = colour_video(tmp_path / "cam.mp4", ["red", "blue", "red"], seconds_each=2.0, fps=25)
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    db, clips = tmp_path / "watch.db", tmp_path / "clips"
    try:
        code, out, err = vidlab(capsys, "watch", str(colour_bundle), str(video), "--stride", "0.25", "--on", "blue",
                     "--min-prob", "0.6", "--min-duration", "0.5", "--record", str(clips),
                     "--pre-roll", "1", "--post-roll", "0.5", "--db", str(db), "--events-url",
                     f"http://127.0.0.1:{server.server_address[1]}/hook")
    finally:
        server.shutdown()
    assert code == 0, err
    records = lines(out)
    wins = [r for r in records if r["type"] == "window"]
    assert all(set(w) == WINDOW_KEYS for w in wins) and len(wins) == 23  # floor((6 - 0.28) / 0.25) + 1
    events = [r for r in records if r["type"] == "event"]
    assert [(e["event"], e["label"]) for e in events] == [("start", "blue"), ("end", "blue")]
    start, end = events
    assert start["t_start"] == 2.0 and 3.9 <= end["t_end"] <= 4.2 and start["clip"]
    (clip,) = [r for r in records if r["type"] == "clip"]
    assert clip["path"] == start["clip"] and clip["t_start"] <= 1.0 + 0.5
    assert records[-1]["type"] == "summary"
    assert records[-1]["sources"][str(video)]["windows"] == 23
    with av.open(clip["path"]) as c:  # a stream copy of the event with its pre- and post-roll
        duration = sum(1 for _ in c.decode(video=0)) / 25
    assert 2.5 <= duration <= 4.0
    posted = sorted((r["type"], r.get("event") or r.get("status") or "") for r in Hook.received)
    assert posted == [("clip", ""), ("event", "end"), ("event", "start"),
                      ("status", "connected"), ("status", "ended")]  # windows go to the log
    rows = read_log(db)
    assert len(rows) == 23 and {r["source"] for r in rows} == {str(video)}
    assert [r["top_label"] for r in rows] == [w["top"][0]["label"] for w in wins]
    code, out, err = vidlab(capsys, "monitor", str(db), "--bundle", str(colour_bundle), "--json")
    assert code == 0, err
    assert json.loads(out)["traffic"]["predictions"] == 23


def test_sigint_stops_cleanly_ending_events_and_keeping_the_clip(colour_bundle, tmp_path):
    long = colour_video(tmp_path / "long.mp4", ["red"] + ["blue"] * 20, seconds_each=1.0,
                        fps=25)
    clips = tmp_path / "clips"
    proc = subprocess.Popen([sys.executable, "-m", "vidlab", "watch", str(colour_bundle),
                             str(long), "--realtime", "--on", "blue", "--min-duration", "0.3",
                             "--record", str(clips)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen: list[dict] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        seen.append(json.loads(line))
        if seen[-1].get("event") == "start":
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            break
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    records = seen + lines(rest)
    end = next(r for r in records if r.get("event") == "end")
    assert end["reason"] == "stopped" and end["t_end"] < 10  # stopped long before the file ends
    (clip,) = [r for r in records if r["type"] == "clip"]
    assert os.path.getsize(clip["path"]) > 0 and not list(clips.glob(".*"))
    with av.open(clip["path"]) as c:
        assert sum(1 for _ in c.decode(video=0)) > 25
    assert records[-1]["type"] == "summary"


@pytest.mark.parametrize("args,words", [
    (["--on", "purple"], "not a label of this model"),
    (["--events-url", "ftp://example.org/x"], "must start with http"),
    (["--ffmpeg-option", "novalue"], "is not KEY=VALUE"),
    (["--min-prob", "0.3", "--off-prob", "0.6"], "off-prob"),
])
def test_bad_options_are_one_line_errors(colour_bundle, tmp_path, capsys, args, words):
    video = colour_video(tmp_path / "cam.mp4", ["red"], seconds_each=0.5, fps=25)
    code, out, err = vidlab(capsys, "watch", str(colour_bundle), str(video), *args)
    assert code == 1 and words in err
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_a_source_that_cannot_be_opened_is_reported_and_the_exit_status_says_so(
        colour_bundle, tmp_path, capsys):
    video = colour_video(tmp_path / "cam.mp4", ["red"], seconds_each=1.0, fps=25)
    code, out, _ = vidlab(capsys, "watch", str(colour_bundle), str(video),
                          str(tmp_path / "gone.mp4"))
    assert code == 1
    records = lines(out)
    failed = [r for r in records if r.get("status") == "failed"]
    assert len(failed) == 1 and "no such file" in failed[0]["error"]
    assert any(r["type"] == "window" and r["source"] == str(video) for r in records)
