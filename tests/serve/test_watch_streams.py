"""`watch` on real live streams over loopback: MPEG-TS over UDP and TCP, HLS over HTTP, RTSP
through a real RTSP server. Senders are separate processes encoding H.264 in real time; the
colour bundle's right answer is the colour on screen."""

from __future__ import annotations

import os
import socket
import time

import numpy as np
import pytest
from tests.serve.streams import (
    HTTPDir,
    RTSPServer,
    Sender,
    WatchRun,
    free_port,
    labels,
    statuses,
    switches,
    windows,
)

from vidlab.serve.stream import Watcher, WatchOptions

SLACK = 1.5
"""Seconds a frame may take from the sender's encoder to our decoder on a busy 2-core machine."""


def watcher(predictor, sources, **options):
    opts = {"stride": 0.25, "stall_timeout": 2.0, **options}
    return Watcher(predictor, sources, WatchOptions(**opts))


def top(window: dict) -> str:
    return window["top"][0]["label"]


def test_udp_mpegts_labels_switch_within_one_window_of_the_change(colour_predictor):
    port = free_port(socket.SOCK_DGRAM)
    run = WatchRun(watcher(colour_predictor, [f"udp://127.0.0.1:{port}"]))
    sender = Sender(f"udp://127.0.0.1:{port}?pkt_size=1316", colours="red,blue", seconds=2.5)
    try:
        blue_at = sender.change("blue")
        assert run.wait_for(lambda r: labels(r).count("blue") >= 4), labels(run.records)
    finally:
        sender.kill()
        records = run.stop()
    sequence = labels(records)
    assert sequence[0] == "red" and sequence[-1] == "blue" and switches(sequence) == 1, sequence
    wins = windows(records)
    first_blue = next(w for w in wins if top(w) == "blue")
    last_red = [w for w in wins if top(w) == "red"][-1]
    length = first_blue["t_end"] - first_blue["t_start"]
    # the sender's clock and ours are the same machine's: the switch comes within one window
    assert blue_at - SLACK <= first_blue["wall_time"] <= blue_at + length + 0.25 + SLACK
    assert last_red["wall_time"] <= blue_at + length + SLACK
    assert all(w["latency_ms"] >= 0 for w in wins)


def test_killing_and_restarting_a_tcp_sender_resumes_events_without_restarting_watch(
        colour_predictor):
    port = free_port()
    source = f"tcp://127.0.0.1:{port}"
    sender = Sender(f"{source}?listen=1", colours="red", seconds=60)
    run = WatchRun(watcher(colour_predictor, [source]))
    try:
        assert run.wait_for(lambda r: labels(r).count("red") >= 3), run.records
        sender.kill()
        assert run.wait_for(lambda r: "down" in statuses(r), 20), run.records
        before = len(windows(run.records))
        sender = Sender(f"{source}?listen=1", colours="blue", seconds=60)
        assert run.wait_for(lambda r: labels(r)[before:].count("blue") >= 3, 40), run.records
    finally:
        sender.kill()
        records = run.stop()
    states = statuses(records)  # (the first try may come before the sender listens: down)
    connected = states.index("connected")
    down = states.index("down", connected)
    assert "reconnected" in states[down:], states
    sequence = labels(records)
    assert switches(sequence) == 1 and sequence[0] == "red" and sequence[-1] == "blue"
    wins = windows(records)  # one clock across the outage: time and window numbers go on
    assert all(b["t_start"] > a["t_start"] for a, b in zip(wins, wins[1:], strict=False))
    assert all(b["window"] > a["window"] for a, b in zip(wins, wins[1:], strict=False))


def test_hls_written_to_a_folder_and_served_over_http(colour_predictor, tmp_path):
    folder = tmp_path / "hls"
    folder.mkdir()
    server = HTTPDir(folder)
    sender = Sender(str(folder / "live.m3u8"), fmt="hls", colours="red,blue", seconds=3.0)
    try:
        deadline = time.monotonic() + 30
        while not (folder / "live.m3u8").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        run = WatchRun(watcher(colour_predictor, [f"{server.url}/live.m3u8"], stall_timeout=3))
        assert run.wait_for(lambda r: labels(r).count("blue") >= 3, 40), run.records
    finally:
        sender.kill()
        records = run.stop()
        server.close()
    sequence = labels(records)
    assert sequence[0] == "red" and sequence[-1] == "blue" and switches(sequence) == 1, sequence


def test_rtsp_from_a_real_rtsp_server(colour_predictor):
    server = RTSPServer()
    try:
        sender = Sender(f"rtsp://127.0.0.1:{server.source_port}/cam", fmt="rtsp",
                        colours="red,blue", seconds=3.0)
        sender.change("red")
        run = WatchRun(watcher(colour_predictor, [f"rtsp://127.0.0.1:{server.client_port}/cam"]))
        try:
            assert run.wait_for(lambda r: labels(r).count("blue") >= 3, 40), run.records
        finally:
            sender.kill()
            records = run.stop()
    finally:
        server.close()
    sequence = labels(records)
    assert sequence[0] == "red" and sequence[-1] == "blue" and switches(sequence) == 1, sequence


def test_a_model_slower_than_real_time_skips_windows_and_keeps_latency_bounded(
        colour_predictor):
    delay = 0.5

    def slow(batch: np.ndarray) -> np.ndarray:
        time.sleep(delay)  # a model that needs 0.5 s per batch, windows due every 0.1 s
        return colour_predictor.probabilities(batch)

    port = free_port(socket.SOCK_DGRAM)
    w = Watcher(colour_predictor, [f"udp://127.0.0.1:{port}"],
                WatchOptions(stride=0.1, stall_timeout=2.0), infer=slow)
    run = WatchRun(w)
    sender = Sender(f"udp://127.0.0.1:{port}?pkt_size=1316", colours="red", seconds=6.0)
    try:
        assert run.wait_for(lambda r: len(windows(r)) >= 8, 40), run.records
    finally:
        sender.kill()
        records = run.stop()
    report = w.report()[f"udp://127.0.0.1:{port}"]
    wins = windows(records)
    assert report["skipped"] >= len(wins), report  # most due windows were skipped, not queued
    # queued, the 8th window would wait 8 × 0.5 s; skipping keeps each within about one batch
    latencies = [x["latency_ms"] for x in wins]
    assert max(latencies) < (2 * delay + SLACK) * 1e3, latencies
    assert set(labels(records)) == {"red"}


def test_a_garbage_packet_burst_does_not_stop_it(colour_predictor):
    port = free_port(socket.SOCK_DGRAM)
    source = f"udp://127.0.0.1:{port}"
    w = watcher(colour_predictor, [source])
    run = WatchRun(w)
    sender = Sender(f"{source}?pkt_size=1316", colours="red", seconds=8.0)
    try:
        assert run.wait_for(lambda r: len(windows(r)) >= 3, 30), run.records
        rng = np.random.default_rng(0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for k in range(300):
                if k % 2:  # MPEG-TS packets of the video PID whose payload is noise
                    ts = bytearray(rng.integers(0, 256, 188 * 7, dtype=np.uint8).tobytes())
                    for i in range(0, len(ts), 188):
                        ts[i:i + 4] = bytes([0x47, 0x41, 0x00, 0x10 | (k % 16)])
                        ts[i + 4:i + 13] = b"\x00\x00\x01\xe0\x00\x00\x80\x00\x00"
                    s.sendto(bytes(ts), ("127.0.0.1", port))
                else:  # plain noise
                    s.sendto(rng.integers(0, 256, 1316, dtype=np.uint8).tobytes(),
                             ("127.0.0.1", port))
        burst_end = time.time()
        assert run.wait_for(lambda r: sum(x["wall_time"] > burst_end + 0.5
                                          for x in windows(r)) >= 4, 30), run.records
    finally:
        sender.kill()
        records = run.stop()
    assert "failed" not in statuses(records)
    assert set(labels(records)) == {"red"}
    report = w.report()[source]
    assert report["frames"] > 0 and report["windows"] >= 7


def test_a_source_that_never_comes_back_is_reported_and_the_others_keep_running(
        colour_predictor):
    port = free_port(socket.SOCK_DGRAM)
    live, dead = f"udp://127.0.0.1:{port}", f"tcp://127.0.0.1:{free_port()}"
    w = watcher(colour_predictor, [live, dead], give_up_s=2.0)
    run = WatchRun(w)
    sender = Sender(f"{live}?pkt_size=1316", colours="red", seconds=10.0)
    try:
        assert run.wait_for(lambda r: "gave_up" in statuses(r, dead), 30), run.records
        gave_up = next(r for r in run.records if r["type"] == "status"
                       and r["status"] == "gave_up")["wall_time"]
        assert run.wait_for(lambda r: sum(x["wall_time"] > gave_up for x in windows(r, live))
                            >= 4, 30), run.records
    finally:
        sender.kill()
        records = run.stop()
    assert "down" in statuses(records, dead) and not windows(records, dead)
    assert w.report()[dead]["status"] == "gave_up"
    assert set(labels(records, live)) == {"red"}


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_metrics_of_each_source_are_served_on_the_port(colour_predictor):
    import httpx

    port, metrics_port = free_port(socket.SOCK_DGRAM), free_port()
    source = f"udp://127.0.0.1:{port}"
    run = WatchRun(watcher(colour_predictor, [source], port=metrics_port))
    sender = Sender(f"{source}?pkt_size=1316", colours="red", seconds=5.0)
    try:
        assert run.wait_for(lambda r: len(windows(r)) >= 3, 30), run.records
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    finally:
        sender.kill()
        run.stop()
    for name in ("frames_decoded_total", "frames_dropped_total", "windows_total",
                 "windows_skipped_total", "reconnects_total", "source_up"):
        assert f'vidlab_watch_{name}{{source="{source}"}}' in text, name
    assert f'vidlab_watch_latency_seconds_count{{source="{source}"}}' in text
    decoded = next(line for line in text.splitlines()
                   if line.startswith(f'vidlab_watch_frames_decoded_total{{source="{source}"}}'))
    assert float(decoded.split()[-1]) > 0
