"""Frame conversion: one scaler thread for small frames against FFmpeg's own thread choice.

Decodes a short H.264 clip per frame size with vidlab's VideoReader, three ways a frame is
turned into an array (plain RGB, RGB resized to a 112-px short side, exact RGB as `vidlab
enhance` reads it), once with `vidlab.io.reader.SINGLE_THREAD_MAX_PIXELS` as shipped and once
with it at 0 (every conversion on FFmpeg's automatic thread count), alternating, median of
`--repeats`. Printed: ms per frame and the ratio auto / shipped (>1: the shipped rule is
faster). The outputs are compared too: the two must be identical.

    python benchmarks/convert.py [--frames 24] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from vidlab.io import reader as reader_module
from vidlab.io.reader import EXACT_RGB, VideoReader

SIZES = [(176, 144), (320, 240), (640, 480), (1280, 720), (1920, 1080)]
WAYS = {"rgb24": dict(pixel_format="rgb24"),
        "rgb24 resized": dict(pixel_format="rgb24", size=112),
        "exact rgb": dict(pixel_format=EXACT_RGB)}


def write_clip(path: Path, width: int, height: int, frames: int) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height + frames, width + frames, 3), np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):  # a diagonal pan over noise: real motion, real residuals
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(
                base[i:i + height, i:i + width]), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def read_all(path: Path, way: dict) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    with VideoReader(path, **way) as r:
        frames = np.stack([f for _, _, f in r.iter_frames_with_time()])
    return frames, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shipped = reader_module.SINGLE_THREAD_MAX_PIXELS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in SIZES:
            clip = write_clip(Path(tmp) / f"{width}x{height}.mp4", width, height, args.frames)
            for name, way in WAYS.items():
                times: dict[str, list[float]] = {"shipped": [], "auto": []}
                outputs = {}
                for _ in range(args.repeats):
                    for rule, limit in (("shipped", shipped), ("auto", 0)):
                        reader_module.SINGLE_THREAD_MAX_PIXELS = limit
                        outputs[rule], seconds = read_all(clip, way)
                        times[rule].append(seconds)
                reader_module.SINGLE_THREAD_MAX_PIXELS = shipped
                ms = {k: 1000 * float(np.median(v)) / args.frames for k, v in times.items()}
                rows.append({"size": f"{width}x{height}", "way": name,
                             "ms_per_frame_shipped": round(ms["shipped"], 3),
                             "ms_per_frame_auto": round(ms["auto"], 3),
                             "auto_over_shipped": round(ms["auto"] / ms["shipped"], 2),
                             "identical": bool(np.array_equal(outputs["shipped"],
                                                              outputs["auto"]))})
                if not args.json:
                    r = rows[-1]
                    print(f"{r['size']:>9} {name:14} shipped {r['ms_per_frame_shipped']:7.3f} "
                          f"ms/frame, auto {r['ms_per_frame_auto']:7.3f}: "
                          f"{r['auto_over_shipped']:.2f}x  identical={r['identical']}",
                          flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
