"""CLI verb `watch`: a bundle's labels for live streams, as JSON Lines (thin: parsing and
printing; the work is `vidlab.serve.stream.Watcher`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the `watch` verb to the root app."""
    app.command("watch")(watch)


def watch(
    bundle: Path = typer.Argument(..., help="Model bundle directory (NAME.vidlab/)."),
    sources: list[str] = typer.Argument(..., help="rtsp://, udp:// or rtp:// (MPEG-TS), tcp://, "
                                        "srt://, http(s)://…m3u8, /dev/videoN, or a file."),
    stride: float = typer.Option(0.5, "--stride", min=0.01, help="Seconds between windows."),
    window: float = typer.Option(0.0, "--window", min=0.0,
                                 help="Seconds per window (0: one training clip's span)."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Labels per window."),
    runtime: str = typer.Option("auto", "--runtime", help="auto, torch, onnx or onnx-int8."),
    realtime: bool = typer.Option(False, "--realtime",
                                  help="Play files at their own frame rate (default: as fast "
                                       "as possible, every window)."),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="Windows per forward pass."),
    on: list[str] = typer.Option([], "--on", help="A label that makes start/end events "
                                 "(repeat for several)."),
    min_prob: float = typer.Option(0.5, "--min-prob", min=0.0, max=1.0,
                                   help="An event starts at this probability..."),
    off_prob: float = typer.Option(None, "--off-prob", min=0.0, max=1.0,
                                   help="...and ends below this one (default: min-prob - 0.1)."),
    min_duration: float = typer.Option(1.0, "--min-duration", min=0.0,
                                       help="Seconds a change must last to start/end an event."),
    record: Path = typer.Option(None, "--record", help="Write a clip around each event here."),
    pre_roll: float = typer.Option(2.0, "--pre-roll", min=0.0, help="Seconds before an event."),
    post_roll: float = typer.Option(2.0, "--post-roll", min=0.0, help="Seconds after it ends."),
    max_clip_s: float = typer.Option(60.0, "--max-clip-s", min=1.0, help="Longest clip."),
    events_url: str = typer.Option(None, "--events-url",
                                   help="POST events (JSON) to this URL, with retries."),
    db: Path = typer.Option(None, "--db", help="SQLite prediction log (for `vidlab monitor`)."),
    retention_days: float = typer.Option(30.0, "--retention-days",
                                         help="Delete log rows older than this (0: keep all)."),
    stall_timeout: float = typer.Option(5.0, "--stall-timeout", min=0.1,
                                        help="Seconds without data before reconnecting."),
    give_up_s: float = typer.Option(0.0, "--give-up-s", min=0.0,
                                    help="Drop a source down this long (0: retry forever)."),
    ffmpeg_option: list[str] = typer.Option([], "--ffmpeg-option",
                                            help="KEY=VALUE passed to FFmpeg when opening "
                                                 "(e.g. rtsp_transport=tcp)."),
    port: int = typer.Option(None, "--port", help="Serve Prometheus /metrics on this port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface for --port."),
    events_only: bool = typer.Option(False, "--events-only",
                                     help="Print events, statuses and clips, not every window."),
) -> None:
    """Watch live streams: one JSON line per window (and per event with --on) on stdout.

    Ctrl-C (or SIGTERM) stops cleanly: open events end, clips and the log are flushed, and a
    last `{"type": "summary"}` line reports each source's frames, drops, windows run and
    skipped, and reconnections. Exit status 1 if a source failed or was given up.
    """
    import os
    import signal

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # decode threads share the cores
    from vidlab.errors import ConfigError
    from vidlab.serve.predict import Predictor
    from vidlab.serve.stream import Watcher, WatchOptions

    options = {}
    for item in ffmpeg_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--ffmpeg-option {item!r} is not KEY=VALUE")
        options[key] = value
    opts = WatchOptions(stride=stride, window=window or None, top_k=top_k, runtime=runtime,
                        realtime=realtime, max_batch=max_batch, on=list(on), min_prob=min_prob,
                        off_prob=off_prob, min_duration=min_duration, record=record,
                        pre_roll=pre_roll, post_roll=post_roll, max_clip_s=max_clip_s,
                        events_url=events_url, db=db, retention_days=retention_days or None,
                        stall_timeout=stall_timeout, give_up_s=give_up_s or None,
                        ffmpeg_options=options, port=port, host=host)
    watcher = Watcher(Predictor(bundle, runtime), list(sources), opts)

    def stop(*_: object) -> None:
        watcher.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: at once

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for record in watcher.run():
            if not (events_only and record["type"] == "window"):
                _print_line(record)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report = watcher.report()
    _print_line({"type": "summary", "sources": report})
    if any(isinstance(r, dict) and r.get("status") in ("failed", "gave_up")
           for r in report.values()):
        sys.exit(1)


def _print_line(record: dict) -> None:
    """One JSON line on stdout, flushed at once (a pipe reader sees events as they happen)."""
    import json

    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()
