"""Load test of `vidlab serve`: dynamic micro-batching against `--max-batch 1`, same run.

Starts the real server (a `vidlab serve` subprocess on 127.0.0.1) once per configuration and
drives it with `--clients` concurrent HTTP clients, each uploading the same video in a loop for
`--seconds`. Reports throughput (requests/s) with its ratio to `--max-batch 1`, p50/p99
latency, errors and the server's peak RSS (sampled with psutil).

    python benchmarks/serve.py                      # 16 clients, 20 s per configuration
    python benchmarks/serve.py --seconds 60 --json  # longer, machine-readable
    python benchmarks/serve.py --bundle RUN/best.vidlab --video clip.mp4
    python benchmarks/serve.py --soak --clients 8 --seconds 30   # hot reload mid-run vs none

Without `--bundle` a randomly initialised r2plus1d_tiny bundle (16 frames at 112×112, the
default preprocessing) with PyTorch weights and an ONNX export is made: speed does not depend
on the weights. `--runtime torch|onnx` picks which one the server runs ("auto": ONNX here).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil


def make_bundle(path: Path, model: str) -> Path:
    import torch

    from vidlab.bundle import save_bundle
    from vidlab.data.transforms import Preprocess
    from vidlab.models import create
    from vidlab.models.export import export_onnx

    torch.manual_seed(0)
    labels = [f"class{i}" for i in range(8)]
    pre = Preprocess()
    net = create(model, num_classes=len(labels), num_frames=pre.num_frames).eval()
    onnx_file = export_onnx(net, path.parent / "model.onnx", pre.num_frames, pre.crop_size)
    save_bundle(path, config={"task": "classify",
                              "model": {"name": model, "num_classes": len(labels),
                                        "kwargs": {"num_frames": pre.num_frames}},
                              "labels": labels, "preprocess": pre.to_dict()},
                state_dict=net.state_dict(), extra_files={"model.onnx": onnx_file},
                overwrite=True)
    return path


def make_video(path: Path) -> Path:
    from vidlab.io import make_test_video

    return make_test_video(path, num_frames=48, size=(240, 320), fps=24)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(bundle: Path, video: Path, max_batch: int, args: argparse.Namespace,
               work: Path) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "vidlab", "serve", str(bundle), "--port", str(port),
           "--max-batch", str(max_batch), "--max-wait-ms", str(args.max_wait_ms),
           "--queue-size", str(4 * args.clients), "--db", str(work / f"log-{max_batch}.db"),
           "--runtime", args.runtime]
    server = start_server(cmd, url, work / f"server-{max_batch}.log")
    try:
        data = video.read_bytes()
        for _ in range(3):  # warm-up outside the measurement
            _post(httpx.Client(timeout=120), url, video.name, data)
        proc = psutil.Process(server.pid)
        peak = [proc.memory_info().rss]
        latencies: list[float] = []
        errors: list[str] = []
        stop = time.monotonic() + args.seconds
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                peak.append(proc.memory_info().rss)

        def client() -> None:
            with httpx.Client(timeout=120) as c:
                while time.monotonic() < stop:
                    t = time.perf_counter()
                    status = _post(c, url, video.name, data)
                    if status == 200:
                        latencies.append(time.perf_counter() - t)
                    else:
                        errors.append(str(status))

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        done.set()
        sampler.join()
        batches = _batch_mean(httpx.get(f"{url}/metrics").text)
    finally:
        server.terminate()
        server.wait(30)
    lat = np.array(latencies) * 1e3
    return {"max_batch": max_batch, "requests": len(latencies), "errors": len(errors),
            "throughput_rps": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
            "mean_batch": batches, "peak_rss_mb": max(peak) / 2**20}


def _post(client: httpx.Client, url: str, name: str, data: bytes) -> int | str:
    try:
        return client.post(f"{url}/v1/predict", files={"file": (name, data, "video/mp4")}
                           ).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def start_server(cmd: list[str], url: str, log: Path) -> subprocess.Popen:
    """Start `vidlab serve` (its log to the file `log`: a pipe nobody reads would fill up and
    block the server) and wait until `/readyz` says ready (it warms up before it binds)."""
    with open(log, "w") as out:
        server = subprocess.Popen([*cmd, "--no-access-log"], stdout=subprocess.DEVNULL,
                                  stderr=out)
    _wait_ready(url, server, log=log)
    return server


def _wait_ready(url: str, server: subprocess.Popen, timeout_s: float = 600,
                log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:] if log else ''}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise RuntimeError(f"server did not become ready in {timeout_s:g} s")


def _batch_mean(metrics: str) -> float | None:
    values = {"vidlab_batch_size_sum": 0.0, "vidlab_batch_size_count": 0.0}
    for line in metrics.splitlines():  # samples carry model/version labels: sum them
        key, _, value = line.rpartition(" ")
        name = key.partition("{")[0]
        if name in values:
            values[name] += float(value)
    count = values["vidlab_batch_size_count"]
    return values["vidlab_batch_size_sum"] / count if count else None


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every serving benchmark takes: what to serve and what to upload."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, help="Bundle to serve (default: a random tiny one).")
    ap.add_argument("--model", default="r2plus1d_tiny", help="Model of the default bundle.")
    ap.add_argument("--video", type=Path, help="Video to upload (default: 2 s 320×240 H.264).")
    return ap


def main() -> None:
    ap = argument_parser(__doc__)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0, help="Load per configuration.")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-wait-ms", type=float, default=10.0)
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--soak", action="store_true",
                    help="Soak run: the same load without and with a hot reload mid-run.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vidlab-bench-serve-"))
    bundle = args.bundle or make_bundle(work / "bench.vidlab", args.model)
    video = args.video or make_video(work / "clip.mp4")
    if args.soak:
        from serve_soak import soak

        soak(bundle, video, args, work)
        return
    rows = [run_config(bundle, video, 1, args, work),
            run_config(bundle, video, args.max_batch, args, work)]
    base = rows[0]["throughput_rps"] or float("nan")
    for r in rows:
        r["throughput_ratio"] = r["throughput_rps"] / base
    if args.json:
        print(json.dumps({"clients": args.clients, "seconds": args.seconds,
                          "cpus": len(os.sched_getaffinity(0)), "rows": rows}, indent=2))
        return
    print(f"runtime {args.runtime}, "
          f"{args.clients} clients × {args.seconds:g} s per configuration, video {video.name} "
          f"({video.stat().st_size // 1024} KB), {len(os.sched_getaffinity(0))} CPUs")
    print(f"{'max-batch':>9} {'requests':>8} {'req/s':>7} {'vs batch 1':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'mean batch':>10} {'errors':>6} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['max_batch']:>9} {r['requests']:>8} {r['throughput_rps']:>7.2f} "
              f"{r['throughput_ratio']:>9.2f}× {r['p50_ms'] or 0:>8.0f} {r['p99_ms'] or 0:>8.0f} "
              f"{r['mean_batch'] or 0:>10.2f} {r['errors']:>6} {r['peak_rss_mb']:>11.0f}")


if __name__ == "__main__":
    main()
