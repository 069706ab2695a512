"""How many live 25 fps streams one machine watches in real time, at what latency and CPU.

Four measurements, each against a baseline taken in the same run:

1. **Streams kept up with**, per runtime (PyTorch eager and ONNX Runtime) for `r2plus1d_tiny`
   (16 frames at 112², the default preprocessing): N copies of a 25 fps H.264 camera video
   (`--size`, default 640×360) are watched at once, each played in real time by its own
   decode thread (`vidlab watch --realtime`: real decoding, real pacing, no sender process
   competing for the cores), one window every `--stride` s. A configuration keeps up when at
   most 5 % of its due windows are skipped and at most 1 % of frames are dropped. N doubles
   until it fails, then the gap is bisected. Reported: windows run/skipped, latency p50/p95,
   CPU per stream (process CPU time / wall time / N), and ONNX Runtime's ratio to PyTorch.
2. **Latency vs the window length** (one stream): the processing latency (newest frame decoded
   → window emitted) p50/p95, and the detection delay (the middle of the window, where the
   clip sits → emitted) = latency + window/2, for windows of 1×, 2× and 4× the clip's span.
3. **Decode-everything-then-sample vs the ring buffer**, without the model, over the same
   file as fast as possible: the naive loop decodes every frame to full-size RGB, keeps them,
   and resizes each window's frames in PyTorch; the ring buffer resizes in FFmpeg's scaler while
   it converts and keeps only the frames a window can need. Reported per resolution: stream
   seconds processed per CPU second (ratio ring / naive) and the frame memory held at the end.

    python benchmarks/watch.py                 # ~5 minutes
    python benchmarks/watch.py --seconds 20 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import make_bundle  # noqa: E402 - the same random r2plus1d_tiny bundle as serve's


def make_camera_video(path: Path, seconds: float, size: tuple[int, int], fps: int = 25) -> Path:
    """A 25 fps H.264 video of moving content (a camera's view), encoded in chunks."""
    from vidlab.io import VideoWriter
    from vidlab.io.writer import moving_pattern

    if path.exists():
        return path
    with VideoWriter(path, fps=fps, codec="h264", preset="veryfast",
                     options={"g": str(2 * fps)}) as out:
        for chunk in range(int(np.ceil(seconds * fps / 50))):
            for frame in moving_pattern(50, size, seed=chunk):
                out.write(frame)
    return path


def run_streams(predictor, video: Path, n: int, seconds: float, stride: float,
                window: float | None, work: Path) -> dict:
    """Watch `n` real-time copies of `video` for `seconds`; figures after a 2 s warm-up."""
    from vidlab.serve.stream import Watcher, WatchOptions

    sources = []
    for i in range(n):  # one file per stream (a watcher refuses the same source twice)
        link = work / f"cam{i}{video.suffix}"
        if not link.exists():
            os.link(video, link)
        sources.append(str(link))
    watcher = Watcher(predictor, sources, WatchOptions(stride=stride, window=window,
                                                       realtime=True, max_batch=8))
    proc = psutil.Process()
    warm, mark = 2.0, {}

    def counters() -> dict:
        return {s.source: (s.windows_run, s.windows_skipped, s.stream.counters.frames,
                           s.stream.counters.dropped) for s in watcher.sources}

    def start_measuring() -> None:
        mark.update(cpu=sum(proc.cpu_times()[:2]), wall=time.monotonic(), before=counters())

    timers = [threading.Timer(warm, start_measuring), threading.Timer(warm + seconds,
                                                                      watcher.stop)]
    for t in timers:
        t.start()
    latencies = []
    for record in watcher.run():
        if record["type"] == "window" and mark:
            latencies.append(record["latency_ms"])
    for t in timers:
        t.cancel()
    cpu = sum(proc.cpu_times()[:2]) - mark["cpu"]
    wall = time.monotonic() - mark["wall"]
    before = mark["before"]
    run = skipped = frames = dropped = 0
    for s in watcher.sources:
        r0, s0, f0, d0 = before.get(s.source, (0, 0, 0, 0))
        run += s.windows_run - r0
        skipped += s.windows_skipped - s0
        frames += s.stream.counters.frames - f0
        dropped += s.stream.counters.dropped - d0
    due = max(1, run + skipped)
    lat = np.asarray(latencies or [np.nan])
    out = {"streams": n, "windows_run": run, "windows_skipped": skipped,
           "skipped_share": round(skipped / due, 4), "frames": frames, "dropped": dropped,
           "dropped_share": round(dropped / max(1, frames + dropped), 4),
           "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
           "latency_ms_p95": round(float(np.percentile(lat, 95)), 1),
           "cpu_cores_per_stream": round(cpu / wall / n, 3)}
    out["keeps_up"] = out["skipped_share"] <= 0.05 and out["dropped_share"] <= 0.01
    return out


def capacity(predictor, video: Path, args, work: Path) -> dict:
    """Double N until a configuration falls behind, then bisect the gap."""
    runs: dict[int, dict] = {}

    def trial(n: int) -> bool:
        runs[n] = run_streams(predictor, video, n, args.seconds, args.stride, None, work)
        print(f"  {predictor.runtime:6s} {n:3d} streams: {json.dumps(runs[n])}", file=sys.stderr)
        return runs[n]["keeps_up"]

    good, bad, n = 0, None, 1
    while n <= args.max_streams:
        if not trial(n):
            bad = n
            break
        good, n = n, n * 2
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if trial(mid) else (good, mid)
    one = runs[1]["cpu_cores_per_stream"]
    # what the CPU time says the cores would carry with nobody else on them (an estimate)
    estimate = int(len(os.sched_getaffinity(0)) / one) if one else None
    return {"max_streams": good, "cpu_bound_estimate": estimate,
            "runs": [runs[k] for k in sorted(runs)]}


def latency_vs_window(predictor, video: Path, args, work: Path) -> list[dict]:
    pre = predictor.preprocess
    span = ((pre.num_frames - 1) * pre.stride_for(25.0) + 1) / 25.0
    rows = []
    for factor in (1, 2, 4):
        window = round(span * factor, 3)
        r = run_streams(predictor, video, 1, args.seconds, args.stride, window, work)
        rows.append({"window_s": window, "latency_ms_p50": r["latency_ms_p50"],
                     "latency_ms_p95": r["latency_ms_p95"],
                     "detection_delay_ms_p50": round(r["latency_ms_p50"] + window * 500, 1),
                     "detection_delay_ms_p95": round(r["latency_ms_p95"] + window * 500, 1),
                     "skipped_share": r["skipped_share"]})
        print(f"  window {window} s: {json.dumps(rows[-1])}", file=sys.stderr)
    return rows


def decode_paths(video: Path, pre, stride: float) -> dict:
    """Stream seconds per CPU second and frame memory: naive full decode vs the ring buffer."""
    import av

    from vidlab.data.live import FrameSource

    proc = psutil.Process()

    def cpu() -> float:
        return sum(proc.cpu_times()[:2])

    # the ring buffer: FFmpeg's scaler resizes, the ring keeps what a window can need
    c0 = cpu()
    source = FrameSource(str(video), pre, stride=stride).start()
    ring_windows, held = 0, 0
    with source.wakeup:
        while True:
            source.wakeup.wait_for(lambda: source.due() or source.ended, timeout=30)
            clip = source.take()
            if clip is not None:
                pre(clip.frames)
                ring_windows += 1
                held = max(held, source.buffered * clip.frames[0].nbytes)
            elif source.ended:
                break
    source.stop()
    ring_cpu = cpu() - c0
    # decode everything, then sample: full-size RGB kept, windows resized by PyTorch
    c0 = cpu()
    frames = []
    with av.open(str(video)) as container:
        s = container.streams.video[0]
        s.thread_type = "SLICE"
        fps = float(s.average_rate)
        for frame in container.decode(s):
            frames.append(frame.to_ndarray(format="rgb24"))
    naive_held = sum(f.nbytes for f in frames)
    step = pre.stride_for(fps)
    span = (pre.num_frames - 1) * step + 1
    naive_windows = 0
    while round(naive_windows * stride * fps) + span <= len(frames):  # the same windows
        start = round(naive_windows * stride * fps)
        pre(np.stack(frames[start:start + span:step]))  # resize + crop + normalize
        naive_windows += 1
    naive_cpu = cpu() - c0
    duration = len(frames) / fps
    return {"duration_s": round(duration, 2), "windows": [ring_windows, naive_windows],
            "ring_stream_s_per_cpu_s": round(duration / ring_cpu, 2),
            "naive_stream_s_per_cpu_s": round(duration / naive_cpu, 2),
            "ratio_ring_over_naive": round(naive_cpu / ring_cpu, 2),
            "ring_frames_mb": round(held / 2**20, 1),
            "naive_frames_mb": round(naive_held / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per trial")
    ap.add_argument("--stride", type=float, default=0.5, help="seconds between windows")
    ap.add_argument("--size", default="360x640", help="camera video HxW")
    ap.add_argument("--max-streams", type=int, default=64)
    ap.add_argument("--runtimes", default="torch,onnx")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from vidlab.serve.predict import Predictor

    h, w = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="vidlab-watch-bench-"))
    bundle = make_bundle(work / "tiny.vidlab", "r2plus1d_tiny")
    video = make_camera_video(work / "camera.mp4", args.seconds + 6, (h, w))
    report: dict = {"machine": {"cpus": len(os.sched_getaffinity(0)),
                                "load_average_at_start": round(os.getloadavg()[0], 1)},
                    "size": args.size,
                    "stride_s": args.stride, "capacity": {}}
    for runtime in args.runtimes.split(","):
        print(f"streams kept up with ({runtime})", file=sys.stderr)
        report["capacity"][runtime] = capacity(Predictor(bundle, runtime), video, args, work)
    caps = {r: c["max_streams"] for r, c in report["capacity"].items()}
    if "torch" in caps and "onnx" in caps and caps["torch"]:
        report["onnx_over_torch_streams"] = round(caps["onnx"] / caps["torch"], 2)
    fastest = max(caps, key=caps.get)
    print("latency vs window", file=sys.stderr)
    report["latency_vs_window"] = latency_vs_window(Predictor(bundle, fastest), video, args, work)
    pre = Predictor(bundle, fastest).preprocess
    report["decode"] = {}
    for name, size in (("360p", (360, 640)), ("720p", (720, 1280))):
        clip = make_camera_video(work / f"decode-{name}.mp4", 20, size)
        report["decode"][name] = decode_paths(clip, pre, args.stride)
        print(f"  decode {name}: {json.dumps(report['decode'][name])}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"\nstreams of {args.size} at 25 fps, r2plus1d_tiny 16x112², a window every "
          f"{args.stride} s, {report['machine']['cpus']} CPUs (load average at start "
          f"{report['machine']['load_average_at_start']})")
    for runtime, cap in report["capacity"].items():
        best = next(r for r in cap["runs"] if r["streams"] == cap["max_streams"]) \
            if cap["max_streams"] else cap["runs"][0]
        print(f"  {runtime:6s}: {cap['max_streams']:3d} streams kept up with "
              f"(CPU-time estimate for idle cores: {cap['cpu_bound_estimate']}); at that load "
              f"latency p50 {best['latency_ms_p50']} ms, p95 {best['latency_ms_p95']} ms, "
              f"{best['cpu_cores_per_stream']:.3f} cores per stream")
    if "onnx_over_torch_streams" in report:
        print(f"  ONNX Runtime / PyTorch streams: {report['onnx_over_torch_streams']}x")
    print(f"latency vs window (1 stream, {fastest}):")
    for r in report["latency_vs_window"]:
        print(f"  window {r['window_s']:5.2f} s: processing p50 {r['latency_ms_p50']} ms / p95 "
              f"{r['latency_ms_p95']} ms; detection delay p50 {r['detection_delay_ms_p50']} ms "
              f"/ p95 {r['detection_delay_ms_p95']} ms")
    print("decode-everything-then-sample vs ring buffer (no model):")
    for name, d in report["decode"].items():
        print(f"  {name}: ring {d['ring_stream_s_per_cpu_s']} vs naive "
              f"{d['naive_stream_s_per_cpu_s']} stream-s per CPU-s "
              f"({d['ratio_ring_over_naive']}x); frames held {d['ring_frames_mb']} MB vs "
              f"{d['naive_frames_mb']} MB after {d['duration_s']} s")


if __name__ == "__main__":
    main()
