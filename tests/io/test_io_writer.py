"""write_video / VideoWriter: real encodes, atomic, never overwriting by accident."""

from __future__ import annotations

import numpy as np
import pytest
from io_clips import clip_frames

from vidlab.errors import OutputExistsError, VideoWriteError
from vidlab.io import VideoReader, make_test_video, probe, psnr, write_video


@pytest.mark.parametrize("codec,suffix", [("h264", ".mp4"), ("h265", ".mkv"), ("vp9", ".webm"),
                                          ("av1", ".mkv"), ("mjpeg", ".avi")])
def test_written_video_reads_back_close_to_the_input(tmp_path, codec, suffix):
    frames = clip_frames(12)
    path = write_video(tmp_path / f"out{suffix}", frames, fps=12, codec=codec)
    info = probe(path)
    assert (info.num_frames, info.width, info.height) == (12, 80, 64)
    assert info.fps == pytest.approx(12)
    with VideoReader(path) as reader:
        back = reader.get_frames(range(12))
    assert min(psnr(a, b) for a, b in zip(frames, back, strict=True)) > 28


def test_odd_sizes_are_padded_to_even_for_420(tmp_path):
    frames = clip_frames(6, 45, 67)
    info = probe(write_video(tmp_path / "odd.mp4", iter(frames), fps=25))  # an iterable works
    assert (info.width, info.height) == (68, 46)
    with VideoReader(tmp_path / "odd.mp4") as reader:
        assert psnr(reader.get_frames([2])[0][:45, :67], frames[2]) > 28


def test_timestamps_keep_a_variable_frame_rate(tmp_path):
    times = [0.0, 0.04, 0.2, 0.25, 0.9, 1.0]
    path = write_video(tmp_path / "vfr.mp4", clip_frames(6), fps=25, timestamps=times)
    with VideoReader(path) as reader:
        np.testing.assert_allclose(reader.timestamps, times, atol=1e-3)


def test_existing_file_is_never_overwritten_unless_asked(tmp_path):
    target = tmp_path / "mine.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="mine.mp4: exists"):
        write_video(target, clip_frames(3), fps=25)
    assert target.read_bytes() == b"precious"
    write_video(target, clip_frames(3), fps=25, overwrite=True)
    assert probe(target).num_frames == 3


def test_failure_midway_leaves_no_file_behind(tmp_path):
    def frames_then_crash():
        yield from clip_frames(5)
        raise RuntimeError("camera unplugged")

    with pytest.raises(RuntimeError):
        write_video(tmp_path / "half.mp4", frames_then_crash(), fps=25)
    with pytest.raises(VideoWriteError, match="uint8"):
        write_video(tmp_path / "bad.mp4", np.zeros((2, 8, 8, 3), np.float32), fps=25)
    assert list(tmp_path.iterdir()) == []


def test_make_test_video_replaces_its_temp_file(tmp_path):
    path = make_test_video(tmp_path / "demo.mp4")
    again = make_test_video(path, num_frames=10)
    info = probe(again)
    assert again == path and info.num_frames == 10 and (info.height, info.width) == (96, 128)
