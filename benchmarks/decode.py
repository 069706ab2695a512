"""Random-clip decoding: vidlab's VideoReader against the usual ways of reading clips.

Reads random 16-frame clips at stride 4 from a 1280×720 30 fps H.264 video (default GOP, and a
30-frame GOP) with: vidlab's reader; decode-everything-then-index (the tutorial approach);
OpenCV sequential `grab()` up to the clip; plain PyAV `container.seek` + decode; decord's
`get_batch`. Each method runs in a fresh subprocess so its peak RSS is its own. Figures are
printed as ratios against the other methods measured in the same run.

    python benchmarks/decode.py            # --quick: a few minutes on a shared 2-core machine
    python benchmarks/decode.py --full     # decode-everything on the real 60 s video (~5 GB RSS)
    python benchmarks/decode.py --long     # also: vidlab's RSS on a 10 min video vs 60 s

Videos are generated once (FFmpeg's testsrc2 with light noise, x264 superfast) into
`--cache-dir` and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CLIP_FRAMES, STRIDE = 16, 4
METHODS = ["vidlab", "pyav_seek", "decord", "opencv_grab", "decode_all"]


# -- test videos ---------------------------------------------------------------------------------
def make_videos(cache: Path, seconds: int, size: str) -> dict[str, Path]:
    """The benchmark videos (default GOP and 30-frame GOP), generated once into `cache`."""
    import av

    from vidlab.io.writer import VideoWriter

    cache.mkdir(parents=True, exist_ok=True)
    paths = {"gop250": cache / f"testsrc_{size}_{seconds}s_gop250.mp4",
             "gop30": cache / f"testsrc_{size}_{seconds}s_gop30.mp4"}
    if all(p.exists() for p in paths.values()):
        return paths
    print(f"generating {seconds} s {size} test videos in {cache} (once) ...", file=sys.stderr)
    w, h = size.split("x")
    graph = f"testsrc2=size={w}x{h}:rate=30:duration={seconds},noise=alls=3:allf=t"
    writers = {k: VideoWriter(p, fps=30, preset="superfast", overwrite=True,
                              options={"g": "250" if k == "gop250" else "30"})
               for k, p in paths.items()}
    with av.open(graph, format="lavfi") as src:
        for frame in src.decode(video=0):
            for writer in writers.values():
                writer.write(frame)
    for writer in writers.values():
        writer.close()
    return paths


def make_long_video(short: Path, repeat: int) -> Path:
    """`short` played `repeat` times, by remuxing its packets with shifted timestamps
    (no re-encoding: same content and bitrate, `repeat`× the length)."""
    import av

    out_path = short.with_name(short.stem + f"_x{repeat}.mp4")
    if out_path.exists():
        return out_path
    tmp = out_path.with_suffix(".tmp.mp4")
    with av.open(str(short)) as probe_in:
        span = probe_in.streams.video[0].duration
    with av.open(str(tmp), "w") as out:
        stream = None
        for r in range(repeat):
            with av.open(str(short)) as src:
                vs = src.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(vs)
                for packet in src.demux(vs):
                    if packet.size == 0:
                        continue
                    packet.pts += r * span
                    packet.dts += r * span
                    packet.stream = stream
                    out.mux(packet)
    tmp.rename(out_path)
    return out_path


# -- methods (each runs in its own process) ------------------------------------------------------
def clip_indices(num_frames: int, clips: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    span = (CLIP_FRAMES - 1) * STRIDE + 1
    starts = rng.integers(0, num_frames - span + 1, clips)
    return [s + np.arange(CLIP_FRAMES) * STRIDE for s in starts]


def run_vidlab(path: Path, clips: list[np.ndarray]) -> None:
    from vidlab.io import VideoReader

    reader = VideoReader(path)
    for idx in clips:
        out = reader.get_frames(idx)
        assert out.shape[0] == CLIP_FRAMES
        del out  # like every method: a clip is dropped before the next is read


def run_pyav_seek(path: Path, clips: list[np.ndarray]) -> None:
    """The plain way: seek to the first frame's timestamp (FFmpeg goes back to a keyframe),
    decode forward, keep frames whose timestamp is wanted (assumes a constant frame rate)."""
    import av

    container = av.open(str(path))
    stream = container.streams.video[0]
    step = int(round(1 / (stream.average_rate * stream.time_base)))
    start = stream.start_time or 0
    for idx in clips:
        wanted = {start + int(i) * step for i in idx}
        container.seek(min(wanted), stream=stream, backward=True)
        frames = []
        for frame in container.decode(stream):
            if frame.pts in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))
            if frame.pts >= max(wanted):
                break
        assert len(frames) == CLIP_FRAMES
        del frames
    container.close()


def run_decord(path: Path, clips: list[np.ndarray]) -> None:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    for idx in clips:
        out = reader.get_batch(idx.tolist()).asnumpy()
        assert out.shape[0] == CLIP_FRAMES
        del out


def run_opencv_grab(path: Path, clips: list[np.ndarray]) -> None:
    """Sequential `grab()` from the start of the file to the clip (a new capture per clip)."""
    import cv2

    for idx in clips:
        cap = cv2.VideoCapture(str(path))
        wanted, frames = set(idx.tolist()), []
        for i in range(int(idx.max()) + 1):
            cap.grab()
            if i in wanted:
                ok, bgr = cap.retrieve()
                frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
        assert len(frames) == CLIP_FRAMES


def run_decode_all(path: Path, clips: list[np.ndarray]) -> None:
    """The tutorial approach: decode the whole video to RGB arrays, then index (per clip)."""
    import av

    for idx in clips:
        with av.open(str(path)) as container:
            video = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        clip = video[idx]
        del video
        assert clip.shape[0] == CLIP_FRAMES


def worker(method: str, path: Path, clips: int, seed: int, num_frames: int) -> dict:
    indices = clip_indices(num_frames, clips, seed)
    started = time.perf_counter()
    globals()[f"run_{method}"](path, indices)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "clips": clips, "seconds": seconds, "peak_rss_mb": peak_mb}


def measure(method: str, path: Path, clips: int, seed: int, num_frames: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--video", str(path), "--clips",
           str(clips), "--seed", str(seed), "--num-frames", str(num_frames)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        return {"method": method, "error": run.stderr.strip().splitlines()[-1:]}
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["clips_per_s"] = result["clips"] / result["seconds"]
    return result


# -- the run -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="default: bounded run (minutes)")
    mode.add_argument("--full", action="store_true", help="decode-everything on the 60 s video")
    mode.add_argument("--long", action="store_true", help="also compare RSS on a 10 min video")
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "vidlab-bench-decode")
    parser.add_argument("--clips", type=int, default=12, help="clips per method")
    parser.add_argument("--seconds", type=int, default=60, help="length of the test video")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--num-frames", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.video, args.clips, args.seed, args.num_frames)))
        return

    from vidlab.io import probe

    methods = args.methods.split(",")
    videos = make_videos(args.cache_dir, args.seconds, args.size)
    short_s = 10
    results = []
    for gop, path in videos.items():
        n = probe(path).num_frames
        for method in methods:
            clips, video, note = args.clips, path, ""
            if method in ("decode_all", "opencv_grab") and not args.full:
                # bounded default: these read from the file start for every clip
                clips = 2 if method == "decode_all" else max(2, args.clips // 3)
            if method == "decode_all" and not args.full:
                video = make_videos(args.cache_dir, short_s, args.size)[gop]
                note = f"measured on the {short_s} s video, clips/s scaled ×{short_s}/{args.seconds}"
            vn = probe(video).num_frames
            r = measure(method, video, clips, args.seed, vn)
            if "clips_per_s" in r and video != path:
                r["clips_per_s"] *= vn / n
            r.update(gop=gop, video_s=round(vn / 30), note=note)
            results.append(r)
            print(f"  {gop:7s} {method:12s} {r.get('clips_per_s', float('nan')):8.3f} clips/s  "
                  f"{r.get('peak_rss_mb', float('nan')):8.0f} MB {note}", file=sys.stderr)
    if args.long:
        long_path = make_long_video(videos["gop250"], 10)
        n = probe(long_path).num_frames
        r = measure("vidlab", long_path, args.clips, args.seed, n)
        r.update(gop="gop250", video_s=round(n / 30), note="10 min video (RSS check)",
                 clips_per_s=r.get("clips_per_s"))
        results.append(r)
    report(results, args.json)


def report(results: list[dict], as_json: bool) -> None:
    by = {(r["gop"], r["method"], r["video_s"]): r for r in results if "clips_per_s" in r}
    ratios = []
    for gop in ("gop250", "gop30"):
        ours = next((r for (g, m, s), r in by.items() if g == gop and m == "vidlab" and s <= 60),
                    None)
        for (g, m, s), r in by.items():
            if g == gop and ours and m != "vidlab" and s <= 60:
                ratios.append({"gop": gop, "vs": m,
                               "speed_ratio": ours["clips_per_s"] / r["clips_per_s"],
                               "rss_ratio": ours["peak_rss_mb"] / r["peak_rss_mb"]})
    long = [r for r in results if r.get("video_s", 0) > 60 and r["method"] == "vidlab"]
    base = by.get(("gop250", "vidlab", 60))
    if long and base:
        ratios.append({"gop": "gop250", "vs": "vidlab 600 s vs 60 s video",
                       "rss_ratio": long[0]["peak_rss_mb"] / base["peak_rss_mb"]})
    if as_json:
        print(json.dumps({"results": results, "ratios": ratios}, indent=2))
        return
    print(f"\nrandom {CLIP_FRAMES}-frame clips at stride {STRIDE}, RGB output")
    print(f"{'video':18s} {'method':12s} {'clips':>5s} {'clips/s':>9s} {'s/clip':>8s} "
          f"{'peak RSS MB':>11s}  note")
    for r in results:
        if "clips_per_s" not in r:
            print(f"{r.get('gop', ''):18s} {r['method']:12s} failed: {r.get('error')}")
            continue
        print(f"{r['gop'] + ' ' + str(r['video_s']) + ' s':18s} {r['method']:12s} "
              f"{r['clips']:5d} {r['clips_per_s']:9.3f} {1 / r['clips_per_s']:8.3f} "
              f"{r['peak_rss_mb']:11.0f}  {r.get('note', '')}")
    print("\nvidlab vs each method (same run): speed ratio (higher is better), RSS ratio")
    for q in ratios:
        speed = f"{q['speed_ratio']:7.2f}×" if "speed_ratio" in q else "        "
        print(f"  {q['gop']:7s} vs {q['vs']:28s} {speed} speed   {q['rss_ratio']:5.2f}× RSS")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
