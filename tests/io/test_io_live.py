"""Live sources and recordings: the frames a stream gives are the reader's frames; sources
that cannot work fail with one clear line; clips are stream copies that start on a keyframe."""

from __future__ import annotations

import av
import numpy as np
import pytest

from vidlab.errors import StreamError
from vidlab.io import VideoReader
from vidlab.io.live import LiveStream, input_options
from vidlab.io.record import Recordings


@pytest.mark.parametrize("name", ["h264_bframes_open_gop.mp4", "rotated_90.mp4",
                                  "odd_67x45_vp9.webm", "h264_vfr.mkv"])
def test_a_file_read_as_a_live_stream_gives_the_readers_frames(clip, name):
    path = clip(name)
    frames = list(LiveStream(path, size=32).frames())
    with VideoReader(path, size=32) as reader:
        expected = reader.get_frames(range(len(reader)))
        times = reader.timestamps
    assert len(frames) == len(expected)
    for got, want in zip(frames, expected, strict=True):
        assert np.array_equal(got.image, want)
    assert np.allclose([f.time for f in frames], times, atol=1e-3)


def test_sources_that_cannot_work_fail_with_one_line_naming_them(tmp_path):
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    empty = tmp_path / "empty.ts"
    empty.write_bytes(b"")
    for source, words in ((tmp_path / "missing.mp4", "no such file"),
                          (noise, "cannot open"), (empty, "cannot open"),
                          ("nosuchproto://127.0.0.1/x", "cannot open")):
        with pytest.raises(StreamError) as info:
            list(LiveStream(source).frames())
        assert str(source) in str(info.value) and words in str(info.value)
        assert "\n" not in str(info.value)


def test_live_sources_get_a_quick_start_and_keep_alive_options():
    fmt, udp = input_options("udp://127.0.0.1:5000", 5.0)
    assert fmt is None and udp["overrun_nonfatal"] == "1"
    assert input_options("rtsp://cam/stream", 2.0)[1]["timeout"] == "2000000"
    assert input_options("/dev/video0", 5.0)[0] == "video4linux2"
    assert input_options("clip.mp4", 5.0) == (None, {})


def test_a_recording_is_a_stream_copy_from_the_keyframe_before_the_pre_roll(clip, tmp_path):
    path = clip("h264_bframes_open_gop.mp4")  # a keyframe every 12 frames, 60 frames at 25 fps
    clips = []
    rec = Recordings(pre_roll=0.5, max_s=60, on_clip=clips.append)
    stream = LiveStream(path, on_packet=rec.packet)
    taken = (tmp_path / "event.mp4")
    taken.write_bytes(b"the user's own file")
    for frame in stream.frames():
        if abs(frame.time - 1.2) < 1e-6:  # an event starts at 1.2 s: clip from 0.7 s on
            assert rec.start("walk", taken, since=1.2)
        if abs(frame.time - 1.6) < 1e-6:
            rec.finish("walk", until=1.8)
    (made,) = clips
    assert made.error is None and taken.read_bytes() == b"the user's own file"
    assert made.path == tmp_path / "event-1.mp4"  # never replaces what is there
    assert made.t_start == pytest.approx(0.48)  # the keyframe at or before 0.7 s (frame 12)
    with av.open(str(made.path)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
        assert packets[0].is_keyframe
    with av.open(str(made.path)) as c:
        decoded = sum(1 for _ in c.decode(video=0))
    assert len(packets) == made.packets and 30 <= decoded <= 36  # 0.48 s to ~1.8 s
    assert not list(tmp_path.glob(".*vidlab-tmp*"))  # no temporary file left behind


def test_a_file_still_being_written_is_followed_until_it_stops_growing(tmp_path):
    import threading
    import time
    from fractions import Fraction

    path = tmp_path / "growing.ts"
    frames = np.random.default_rng(0).integers(0, 256, (50, 120, 160, 3), dtype=np.uint8)

    def write() -> None:  # a recorder writing MPEG-TS, a frame every 40 ms, flushed as it goes
        with av.open(str(path), "w", format="mpegts", options={"flush_packets": "1"}) as out:
            s = out.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
            s.options = {"tune": "zerolatency", "g": "10", "preset": "ultrafast"}
            for n, f in enumerate(frames):
                picture = av.VideoFrame.from_ndarray(f, format="rgb24")
                picture.pts, picture.time_base = n, Fraction(1, 25)
                for packet in s.encode(picture):
                    out.mux(packet)
                time.sleep(0.04)
            for packet in s.encode():
                out.mux(packet)

    writer = threading.Thread(target=write)
    writer.start()
    while not path.exists() or path.stat().st_size < 50_000:
        time.sleep(0.02)
    statuses = []
    stream = LiveStream(path, options={"follow": "1"}, stall_timeout=1.0,
                        on_status=lambda kind, _: statuses.append(kind))
    got = list(stream.frames())
    writer.join()
    assert len(got) == 50 and statuses == ["connected", "ended"]
