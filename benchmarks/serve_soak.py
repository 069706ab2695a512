"""Soak run of `vidlab serve` (`python benchmarks/serve.py --soak`): steady load with a hot reload
mid-run, against the same load without one, in the same run.

Each phase starts a fresh `vidlab serve` subprocess on 127.0.0.1 (loopback only) and drives it
with `--clients` concurrent uploaders for `--seconds`. In the reload phase the bundle directory
is replaced on disk a third of the way through (moved away, a new version moved in: another label set, so
another version hash) and the server's poller (`--reload-poll-s 0.5`) loads it beside the old
one, warms it up and switches. Printed per phase, as soon as it is measured: requests, req/s and
its ratio to the baseline, p50/p99 latency, errors, answers per version, and for the reload
phase the time from the swap to the first answer of the new version (the reload phase runs on
until `--seconds / 3` after that answer, at most `3 × --seconds`). Bounded: fixed clients, at
most three times the duration, a bounded server queue.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from serve import _wait_ready, free_port


def _new_version(bundle: Path, dest: Path) -> Path:
    """A copy of `bundle` with renamed labels: same speed, another version."""
    shutil.copytree(bundle, dest)
    config = json.loads((dest / "config.json").read_text())
    config["labels"] = [f"v2-{label}" for label in config["labels"]]
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def _phase(bundle: Path, video: Path, args, work: Path, reload_at: float | None) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "vidlab", "serve", str(bundle), "--port", str(port),
           "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
           "--queue-size", str(4 * args.clients), "--runtime", args.runtime,
           "--reload-poll-s", "0.5", "--no-access-log",
           "--db", str(work / f"soak-{'reload' if reload_at else 'base'}.db")]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answers: list[tuple[float, float, str]] = []  # (done at, latency s, version)
    errors: list[str] = []
    swapped: list[float] = []
    try:
        _wait_ready(url, server)
        data = video.read_bytes()
        with httpx.Client(timeout=120) as c:
            for _ in range(3):  # warm-up outside the measurement
                c.post(f"{url}/v1/predict", files={"file": (video.name, data, "video/mp4")})
        t0 = time.monotonic()
        done = threading.Event()

        def client() -> None:
            with httpx.Client(timeout=120) as c:
                while not done.is_set():
                    t = time.perf_counter()
                    try:
                        r = c.post(f"{url}/v1/predict",
                                   files={"file": (video.name, data, "video/mp4")})
                    except httpx.HTTPError as exc:
                        errors.append(type(exc).__name__)
                        continue
                    if r.status_code != 200:
                        errors.append(str(r.status_code))
                        continue
                    answers.append((time.monotonic() - t0, time.perf_counter() - t,
                                    r.json()["model"]))

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        if reload_at is not None:
            time.sleep(reload_at)
            staging = _new_version(bundle, work / "staging" / bundle.name)
            bundle.rename(work / f"{bundle.name}.old")
            staging.rename(bundle)
            swapped.append(time.monotonic() - t0)
        while not _phase_over(time.monotonic() - t0, args.seconds, swapped, answers):
            time.sleep(0.1)
        done.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
    finally:
        server.terminate()
        server.wait(60)
    lat = np.array([a[1] for a in answers]) * 1e3
    versions: dict[str, int] = {}
    for _, _, v in answers:
        versions[v] = versions.get(v, 0) + 1
    row = {"phase": "reload" if reload_at is not None else "baseline",
           "requests": len(answers), "errors": len(errors), "error_kinds": sorted(set(errors)),
           "throughput_rps": len(answers) / elapsed,
           "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
           "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
           "versions": versions}
    if swapped:
        first = answers[0][2] if answers else None
        new = [a[0] for a in answers if a[2] != first]
        row["swap_at_s"] = swapped[0]
        row["switch_after_s"] = (min(new) - swapped[0]) if new else None
    return row


def _phase_over(now: float, seconds: float, swapped: list[float], answers: list) -> bool:
    """A phase lasts `seconds`; a reload phase also until `seconds / 3` after the first answer
    of the new version (the warm-up of a new version can take long on a busy machine), at most
    three times `seconds`."""
    if now >= 3 * seconds:
        return True
    if now < seconds:
        return False
    if not swapped:
        return True
    first = answers[0][2] if answers else None
    new = [a[0] for a in answers if a[2] != first]
    return bool(new) and now >= min(new) + seconds / 3


def soak(bundle: Path, video: Path, args, work: Path) -> None:
    """Baseline then reload phase; prints each as soon as it is measured."""
    served = work / "soak" / bundle.name  # the reload phase replaces this copy, never yours
    shutil.copytree(bundle, served)
    print(f"soak: {args.clients} clients × {args.seconds:g} s per phase, runtime "
          f"{args.runtime}, reload at {args.seconds / 3:g} s", flush=True)
    print(f"{'phase':>9} {'requests':>8} {'req/s':>7} {'vs base':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'errors':>6}  versions", flush=True)
    rows = []
    for reload_at in (None, args.seconds / 3):
        row = _phase(served, video, args, work, reload_at)
        rows.append(row)
        row["throughput_ratio"] = row["throughput_rps"] / (rows[0]["throughput_rps"] or np.nan)
        row["p99_ratio"] = (row["p99_ms"] or np.nan) / (rows[0]["p99_ms"] or np.nan)
        extra = (f"  switch {row['switch_after_s']:.1f} s after the swap"
                 if row.get("switch_after_s") is not None else "")
        print(f"{row['phase']:>9} {row['requests']:>8} {row['throughput_rps']:>7.2f} "
              f"{row['throughput_ratio']:>7.2f}× {row['p50_ms'] or 0:>8.0f} "
              f"{row['p99_ms'] or 0:>8.0f} {row['errors']:>6}  "
              f"{', '.join(f'{v}: {n}' for v, n in row['versions'].items())}{extra}",
              flush=True)
    if args.json:
        print(json.dumps({"clients": args.clients, "seconds": args.seconds, "rows": rows},
                         indent=2))
