"""Normal clients of `vidlab serve` with and without hostile ones, in one bounded loopback run.

Starts the real server (a `vidlab serve` subprocess on 127.0.0.1, default limits) once and
drives it in phases of `--seconds` each, with `--clients` normal clients uploading a video in a
loop throughout:

1. `normal`: nobody else;
2. `+16 slow bodies`: 16 connections that send a request head, then the multipart body at one
   byte per second (each replaced by a new one when the server answers it);
3. `+16 slow bodies +200 slow heads`: the same plus 200 connections that send their request
   head at one byte per second (replaced likewise).

Reports, per phase, the normal clients' requests, errors (any answer but 200), p50/p99 latency
and the p99 as a ratio to phase 1; how the slow connections were answered; the server's peak
RSS. `--soak-minutes M` then keeps phase 3 plus a hostile mix (bodies cut short, random bytes,
oversized uploads) going for M minutes and prints the server's RSS each minute (a leak grows
without bound; a warm-up settles).

    python benchmarks/serve_abuse.py                     # 3 phases × 30 s
    python benchmarks/serve_abuse.py --soak-minutes 10   # then a 10-minute soak
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from serve import (  # noqa: E402
    _post,
    argument_parser,
    free_port,
    make_bundle,
    make_video,
    start_server,
)

BOUNDARY = "vidlabbench"
PHASES = (("normal", 0, 0), ("+16 slow bodies", 16, 0),
          ("+16 slow bodies +200 slow heads", 16, 200))  # (name, slow bodies, slow heads)


def multipart(data: bytes, closed: bool = True) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    return head + data + (f"\r\n--{BOUNDARY}--\r\n".encode() if closed else b"")


def head(port: int, length: int) -> bytes:
    return (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
            f"multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
            ).encode()


def answer_status(sock: socket.socket, timeout: float = 5.0) -> str:
    """The status code the server answered on `sock`, or how the connection ended."""
    sock.settimeout(timeout)
    try:
        first = sock.recv(4096)
    except (TimeoutError, OSError) as exc:
        return type(exc).__name__
    if not first:
        return "closed"
    parts = first.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 and parts[0].startswith(b"HTTP/") else "junk"


class Trickler(threading.Thread):
    """Keeps one slow connection open until `stop`: it sends `opening` at once, then `rest` one
    byte per second; when the server answers or closes, a new connection starts over."""

    def __init__(self, port: int, opening: bytes, rest: bytes, stop: threading.Event,
                 outcomes: list[str]):
        super().__init__(daemon=True)
        self.port, self.opening, self.rest = port, opening, rest
        self.stop, self.outcomes = stop, outcomes

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError as exc:
                self.outcomes.append(f"connect:{type(exc).__name__}")
                self.stop.wait(1.0)
                continue
            try:
                sock.sendall(self.opening)
                for i in range(len(self.rest)):
                    if self.stop.wait(1.0):
                        break
                    sock.sendall(self.rest[i:i + 1])
            except OSError:
                pass  # answered and closed while we were sending
            if not self.stop.is_set():
                self.outcomes.append(answer_status(sock))
            sock.close()


def hostile_mix(url: str, port: int, video: bytes, stop: threading.Event,
                outcomes: list[str]) -> None:
    """Bodies cut short, random bytes and oversized uploads, one after another (the soak)."""
    rng = random.Random(0)
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            kind = rng.choice(["truncated", "random", "oversized"])
            try:
                if kind == "truncated":
                    body = multipart(video[:len(video) // 2], closed=False)
                    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                        sock.sendall(head(port, len(body)) + body)
                        outcomes.append(f"{kind}:{answer_status(sock, 30)}")
                    continue
                data = os.urandom(200_000 if kind == "random" else 101 * 2**20)
                r = client.post(f"{url}/v1/predict", files={"file": ("x.mp4", data)})
                outcomes.append(f"{kind}:{r.status_code}")
            except (httpx.HTTPError, OSError) as exc:
                outcomes.append(f"{kind}:{type(exc).__name__}")


def run_phase(url: str, port: int, video: bytes, name: str, slow_bodies: int, slow_heads: int,
              args: argparse.Namespace, proc: psutil.Process) -> dict:
    stop = threading.Event()
    body_outcomes: list[str] = []
    head_outcomes: list[str] = []
    body = multipart(video)
    request_head = head(port, 0)  # ~130 bytes: over two minutes at a byte a second
    tricklers = [Trickler(port, head(port, len(body)), body, stop, body_outcomes)
                 for _ in range(slow_bodies)]
    tricklers += [Trickler(port, b"", request_head, stop, head_outcomes)
                  for _ in range(slow_heads)]
    for t in tricklers:
        t.start()
    time.sleep(2.0 if tricklers else 0.0)  # let them connect before measuring
    latencies: list[float] = []
    errors: list[str] = []
    peak = [proc.memory_info().rss]
    deadline = time.monotonic() + args.seconds

    def client() -> None:
        with httpx.Client(timeout=120) as c:
            while time.monotonic() < deadline:
                t = time.perf_counter()
                status = _post(c, url, "clip.mp4", video)
                if status == 200:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors.append(str(status))

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak.append(proc.memory_info().rss)
        time.sleep(0.2)
    stop.set()
    for t in tricklers:
        t.join(15)
    lat = np.array(latencies) * 1e3
    return {"phase": name, "requests": len(latencies), "errors": len(errors),
            "error_kinds": sorted(set(errors)),
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
            "slow_body_answers": _count(body_outcomes), "slow_head_answers": _count(head_outcomes),
            "peak_rss_mb": max(peak) / 2**20}


def soak(url: str, port: int, video: bytes, args: argparse.Namespace,
         proc: psutil.Process) -> list[dict]:
    """Phase 3 plus the hostile mix for `--soak-minutes`; the server's RSS once a minute."""
    stop = threading.Event()
    outcomes: list[str] = []
    body = multipart(video)
    request_head = head(port, 0)
    workers = [Trickler(port, head(port, len(body)), body, stop, outcomes) for _ in range(16)]
    workers += [Trickler(port, b"", request_head, stop, outcomes) for _ in range(200)]
    workers += [threading.Thread(target=hostile_mix, args=(url, port, video, stop, outcomes),
                                 daemon=True)]
    statuses: list[str] = []

    def client() -> None:
        with httpx.Client(timeout=120) as c:
            while not stop.is_set():
                statuses.append(str(_post(c, url, "clip.mp4", video)))

    workers += [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    for w in workers:
        w.start()
    rows = [{"minute": 0, "rss_mb": proc.memory_info().rss / 2**20}]
    for minute in range(1, int(args.soak_minutes) + 1):
        time.sleep(60)
        rows.append({"minute": minute, "rss_mb": proc.memory_info().rss / 2**20,
                     "normal_requests": len(statuses),
                     "normal_errors": sum(s != "200" for s in statuses),
                     "hostile": _count(outcomes)})
        progress(rows[-1])
    stop.set()
    for w in workers:
        w.join(30)
    return rows


def progress(row: dict) -> None:
    """One phase's or minute's figures as soon as they are measured (stderr: --json stays
    one document on stdout)."""
    print(json.dumps(row), file=sys.stderr, flush=True)


def _count(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


def main() -> None:
    ap = argument_parser(__doc__)
    ap.add_argument("--clients", type=int, default=4, help="Normal clients.")
    ap.add_argument("--seconds", type=float, default=30.0, help="Length of each phase.")
    ap.add_argument("--soak-minutes", type=float, default=0.0)
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vidlab-bench-abuse-"))
    bundle = args.bundle or make_bundle(work / "bench.vidlab", args.model)
    video_path = args.video or make_video(work / "clip.mp4")
    video = video_path.read_bytes()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server([sys.executable, "-m", "vidlab", "serve", str(bundle), "--port",
                           str(port), "--db", str(work / "log.db"), "--runtime", args.runtime],
                          url, work / "server.log")
    try:
        proc = psutil.Process(server.pid)
        with httpx.Client(timeout=120) as c:
            for _ in range(3):  # warm-up outside the measurement
                _post(c, url, "clip.mp4", video)
        rows = []
        for name, slow_bodies, slow_heads in PHASES:
            rows.append(run_phase(url, port, video, name, slow_bodies, slow_heads, args, proc))
            progress(rows[-1])
        soak_rows = soak(url, port, video, args, proc) if args.soak_minutes > 0 else []
    finally:
        server.terminate()
        server.wait(30)
    base = rows[0]["p99_ms"] or float("nan")
    for r in rows:
        r["p99_ratio"] = (r["p99_ms"] or float("nan")) / base
    report = {"clients": args.clients, "seconds": args.seconds,
              "cpus": len(os.sched_getaffinity(0)), "video_kb": len(video) // 1024,
              "rows": rows, "soak": soak_rows}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.clients} normal clients, {args.seconds:g} s per phase, video "
          f"{video_path.name} ({len(video) // 1024} KB), {report['cpus']} CPUs, server defaults")
    print(f"{'phase':<34} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'p99 vs normal':>13} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['phase']:<34} {r['requests']:>8} {r['errors']:>6} {r['p50_ms'] or 0:>7.0f} "
              f"{r['p99_ms'] or 0:>7.0f} {r['p99_ratio']:>12.2f}× {r['peak_rss_mb']:>11.0f}")
    for r in rows[1:]:
        print(f"{r['phase']}: slow bodies answered {r['slow_body_answers']}, slow heads "
              f"answered {r['slow_head_answers']}, normal errors {r['error_kinds']}")
    for r in soak_rows:
        print(f"soak minute {r['minute']}: server RSS {r['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
