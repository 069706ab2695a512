"""A live sender for the watch tests: real H.264 encoded by PyAV, sent in real time.

    python -m tests.serve.stream_sender URL --format mpegts --colours red,blue --seconds 2

`URL` is what PyAV's muxer writes to: `udp://127.0.0.1:PORT?pkt_size=1316` (MPEG-TS over UDP),
`tcp://127.0.0.1:PORT?listen=1` (MPEG-TS over TCP, the sender listens), `rtsp://…` (publish
to an RTSP server, `--format rtsp`) or a playlist path (`--format hls`). Each colour plays for
`--seconds` (a moving grey square on a noisy coloured background, the colour bundle's classes);
`--loop` starts over forever. One JSON line per colour change on stdout: `{"colour", "wall"}`,
the unix time its first frame was sent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from fractions import Fraction

import av
import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def frame(colour: str, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    f = np.empty((h, w, 3), np.int16)
    f[:] = np.array(COLOURS[colour], np.int16) + rng.integers(-12, 13, size=3)
    x0 = (n * 2) % (w - 8)
    f[h // 2 - 4:h // 2 + 4, x0:x0 + 8] = 128
    return np.clip(f, 0, 255).astype(np.uint8)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--format", default="mpegts")
    ap.add_argument("--colours", default="red,blue")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--size", default="48x64")
    ap.add_argument("--loop", action="store_true")
    args = ap.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    options = {}
    if args.format == "hls":
        options = {"hls_time": "0.5", "hls_list_size": "6",
                   "hls_flags": "delete_segments+omit_endlist"}
    out = av.open(args.url, "w", format=args.format, options=options)
    stream = out.add_stream("libx264", rate=args.fps)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(args.fps // 2)}
    rng = np.random.default_rng(0)
    colours = args.colours.split(",")
    per = int(round(args.seconds * args.fps))
    n, start = 0, time.time()
    try:
        while True:
            for colour in colours:
                for k in range(per):
                    if k == 0:
                        print(json.dumps({"colour": colour, "wall": time.time()}), flush=True)
                    picture = av.VideoFrame.from_ndarray(frame(colour, n, h, w, rng), "rgb24")
                    picture.pts, picture.time_base = n, Fraction(1, args.fps)
                    for packet in stream.encode(picture):
                        out.mux(packet)
                    n += 1
                    ahead = start + n / args.fps - time.time()
                    if ahead > 0:
                        time.sleep(ahead)
            if not args.loop:
                break
        for packet in stream.encode():
            out.mux(packet)
    except (BrokenPipeError, ConnectionError, av.error.FFmpegError) as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        sys.exit(1)
    finally:
        out.close()


if __name__ == "__main__":
    main()
