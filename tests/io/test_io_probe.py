"""probe: exact metadata, and clear errors for files that are not usable videos."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from io_clips import BUILDERS, audio_only, clip_frames, sequential_decode, video_with_audio

from vidlab.errors import VideoDecodeError, VideoOpenError
from vidlab.io import VideoReader, probe, write_video

CONTRACT_KEYS = {"path", "codec", "width", "height", "fps", "num_frames", "duration", "rotation",
                 "pix_fmt", "has_audio"}


@pytest.mark.parametrize("name,codec,frames,pix_fmt", [
    ("h264_bframes_open_gop.mp4", "h264", 60, "yuv420p"),
    ("h264_bframes.mkv", "h264", 60, "yuv420p"),
    ("hevc_10bit.mkv", "hevc", 40, "yuv420p10le"),
    ("vp9.webm", "vp9", 40, "yuv420p"),
    ("av1.mkv", "av1", 40, "yuv420p"),
    ("mjpeg.avi", "mjpeg", 30, "yuvj420p"),
])
def test_probe_counts_frames_exactly_in_every_container(clip, name, codec, frames, pix_fmt):
    info = probe(clip(name))
    assert (info.codec, info.num_frames, info.pix_fmt) == (codec, frames, pix_fmt)
    assert (info.width, info.height, info.rotation) == (80, 64, 0)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(frames / 25)
    assert info.keyframes >= 1 and not info.has_audio and not info.truncated
    assert set(info.to_dict()) >= CONTRACT_KEYS


def test_probe_reports_keyframes_audio_and_odd_size(clip, tmp_path):
    assert probe(clip("h264_single_keyframe.mp4")).keyframes == 1
    assert probe(clip("h264_bframes_open_gop.mp4")).keyframes == 5
    odd = probe(clip("odd_67x45_vp9.webm"))
    assert (odd.width, odd.height) == (67, 45)
    info = probe(video_with_audio(tmp_path / "a.mp4"))
    assert info.has_audio and info.num_frames == 30


def test_missing_empty_text_and_audio_only_files_raise_open_errors(tmp_path):
    with pytest.raises(VideoOpenError, match="no such file"):
        probe(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoOpenError, match="empty file"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    with pytest.raises(VideoOpenError, match="notes.mp4: not a video"):
        probe(tmp_path / "notes.mp4")
    with pytest.raises(VideoOpenError, match="no video stream"):
        probe(audio_only(tmp_path / "song.m4a"))


def test_mp4_cut_in_half_before_its_index_is_reported_as_truncated(clip, tmp_path):
    data = clip("h264_bframes_open_gop.mp4").read_bytes()  # moov (the index) at the end
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match=r"cut.mp4: truncated"):
        probe(cut)


@pytest.mark.parametrize("container_options,suffix", [({"movflags": "faststart"}, ".mp4"),
                                                      ({}, ".mkv")])
def test_file_cut_in_half_still_decodes_the_frames_before_the_cut(tmp_path, container_options,
                                                                  suffix, caplog):
    full = write_video(tmp_path / f"full{suffix}", clip_frames(100), fps=25,
                       options={"g": "10"}, container_options=container_options)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        info = probe(cut)
    assert info.truncated and 10 < info.num_frames < 90
    assert "truncated" in caplog.text
    reference = sequential_decode(full)
    safe = info.num_frames - 4  # the last few may sit in the cut packet or lack references
    with VideoReader(cut) as reader:
        assert np.array_equal(reader.get_frames(range(0, safe, 3)), reference[0:safe:3])


def test_random_bytes_in_the_middle_are_skipped_and_counted(tmp_path, caplog):
    full = write_video(tmp_path / "full.mp4", clip_frames(100), fps=25, options={"g": "10"})
    data = bytearray(full.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 1500] = np.random.default_rng(1).integers(0, 256, 1500, np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    reference = sequential_decode(full)
    with VideoReader(damaged) as reader:
        assert len(reader) == 100  # the index (moov) is intact
        far = [0, 5, 9, 95, 99]
        assert np.array_equal(reader.get_frames(far), reference[far])
        with caplog.at_level(logging.WARNING):
            streamed = list(reader.iter_frames_with_time())
        assert reader.num_corrupt > 0 and "corrupt" in caplog.text
        kept = {i: f for i, _, f in streamed}
        assert all(np.array_equal(kept[i], reference[i]) for i in far)
        lost = [i for i in range(100) if i not in kept]
        assert lost, "the damage should cost some frames"
        with pytest.raises(VideoDecodeError, match=rf"damaged.mp4: frame {lost[0]} of 100"):
            reader.get_frames([lost[0]])


def test_every_builder_is_probed_without_warnings(clip, caplog):
    with caplog.at_level(logging.WARNING):
        for name in BUILDERS:
            probe(clip(name))
    assert not caplog.records
