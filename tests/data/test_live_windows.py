"""Live frames → windows: a stream's window is the clip `predict` takes for the same frames,
and a live source keeps up by skipping windows, never by queueing them."""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
from tests.conftest import encode_video, moving_square_frames

from vidlab.data.clips import open_video, read_clips
from vidlab.data.live import FrameSource
from vidlab.data.samplers import ClipPlan, window_sampler
from vidlab.data.transforms import Preprocess

PRE = Preprocess(num_frames=4, stride=2, short_side=48, crop_size=40)


def run_lossless(source: FrameSource) -> list:
    """Every window of a file read as fast as possible (the consumer side of `watch`)."""
    clips = []
    source.start()
    with source.wakeup:
        while True:
            source.wakeup.wait_for(lambda: source.due() or source.ended, timeout=10)
            clip = source.take()
            if clip is not None:
                clips.append(clip)
            elif source.ended:
                break
    source.stop()
    return clips


def test_a_streamed_window_is_the_same_tensor_as_predicts_clip_of_those_frames(tmp_path):
    path = encode_video(tmp_path / "long.mp4", moving_square_frames(90, 72, 96, seed=3), fps=25)
    clips = run_lossless(FrameSource(str(path), PRE, window=0.8, stride=0.4))
    assert [c.number for c in clips] == list(range(len(clips))) and len(clips) >= 7
    with open_video(path, PRE) as reader:
        for clip in clips:
            (frames,) = read_clips(reader, [ClipPlan(0, 0, clip.indices)])
            assert np.array_equal(clip.frames, frames)  # FFmpeg's scaler, same frames
            assert torch.equal(PRE(clip.frames), PRE(frames))
    # and the windows are predict's timeline windows: same span, same clip
    plans = window_sampler(PRE, 0.8, 0.4)(90, 25.0, timestamps=np.arange(90) / 25.0)
    by_start = {p.start: p for p in plans}
    for clip in clips:
        plan = by_start[round(clip.number * 0.4, 3)]
        assert (clip.t_start, clip.t_end) == (plan.start, plan.end)
        assert clip.indices.tolist() == plan.indices.tolist()


def test_a_live_source_hands_out_the_newest_window_and_counts_the_skipped_ones(tmp_path):
    path = encode_video(tmp_path / "clip.mp4", moving_square_frames(75, 64, 80), fps=25)
    wakeup = threading.Condition()
    source = FrameSource(str(path), PRE, stride=0.1, realtime=True, wakeup=wakeup).start()
    time.sleep(1.5)  # a busy model: nobody takes a window for 1.5 s of a real-time stream
    clip = source.take()
    newest = source.newest
    assert clip is not None and clip.indices.max() <= newest
    assert newest - clip.indices.max() <= 2 * PRE.stride  # the newest window, not the oldest
    assert source.windows_skipped >= 8  # ~1.5 s of windows every 0.1 s were due
    assert 0 < source.buffered <= source.capacity  # memory stays bounded
    with wakeup:
        wakeup.wait_for(lambda: source.ended, timeout=20)
    source.stop()
    assert source.stream.counters.frames == 75 and source.state == "ended"


def test_a_file_in_real_time_takes_its_own_duration(tmp_path):
    path = encode_video(tmp_path / "clip.mp4", moving_square_frames(25, 64, 80), fps=25)
    t0 = time.monotonic()
    clips = run_lossless(FrameSource(str(path), PRE, stride=0.25, realtime=True))
    assert time.monotonic() - t0 >= 0.9  # 25 frames at 25 fps
    assert len(clips) >= 2


def test_a_missing_file_is_a_failed_source_with_the_reason(tmp_path):
    source = FrameSource(str(tmp_path / "nope.mp4"), PRE)
    assert run_lossless(source) == []
    (status,) = source.statuses()
    assert status["status"] == "failed" and "no such file" in status["error"]
