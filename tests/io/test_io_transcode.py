"""transcode: every target codec, size/fps changes, audio kept, atomic and non-destructive."""

from __future__ import annotations

import numpy as np
import pytest
from io_clips import video_with_audio

from vidlab.errors import OutputExistsError, VideoOpenError, VideoWriteError
from vidlab.io import probe, quality, transcode


@pytest.mark.parametrize("codec,suffix", [("h264", ".mp4"), ("h265", ".mp4"), ("vp9", ".webm"),
                                          ("av1", ".mkv")])
def test_transcode_reports_sizes_and_psnr(clip, tmp_path, codec, suffix):
    src = clip("h264_bframes_open_gop.mp4")
    result = transcode(src, tmp_path / f"out{suffix}", codec=codec, crf=30, preset="veryfast")
    out = probe(result.dst)
    assert out.num_frames == result.num_frames == 60 and out.codec == {"h264": "h264",
           "h265": "hevc", "vp9": "vp9", "av1": "av1"}[codec]
    assert result.input_bytes == src.stat().st_size
    assert result.output_bytes == (tmp_path / f"out{suffix}").stat().st_size
    assert result.compression_ratio == pytest.approx(result.input_bytes / result.output_bytes,
                                                     rel=1e-3)
    assert 25 < result.psnr < 100 and result.psnr_frames == 8
    assert result.psnr == pytest.approx(
        sum(quality(src, result.dst).psnr_per_frame) / 60, abs=3)  # sampled vs all frames


def test_higher_crf_gives_smaller_files_and_lower_psnr(clip, tmp_path):
    src = clip("h264_single_keyframe.mp4")
    good = transcode(src, tmp_path / "good.mp4", crf=18)
    poor = transcode(src, tmp_path / "poor.mp4", crf=45)
    assert poor.output_bytes < good.output_bytes and poor.psnr < good.psnr


def test_size_and_fps_change_and_audio_is_carried(tmp_path):
    src = video_with_audio(tmp_path / "cam.mp4", num_frames=30)  # 25 fps, 1.2 s
    result = transcode(src, tmp_path / "small.webm", codec="vp9", size=32, fps=10)
    info = probe(result.dst)
    assert (info.height, info.width) == (32, 40)
    assert info.fps == pytest.approx(10) and info.num_frames == 12
    assert info.has_audio and result.has_audio


def test_never_overwrites_and_leaves_nothing_after_failure(clip, tmp_path):
    src = clip("mjpeg.avi")
    dst = tmp_path / "keep.mp4"
    dst.write_bytes(b"user data")
    with pytest.raises(OutputExistsError):
        transcode(src, dst)
    assert dst.read_bytes() == b"user data"
    with pytest.raises(VideoWriteError, match="unknown or unavailable encoder"):
        transcode(src, tmp_path / "x.mp4", codec="nonsense")
    (tmp_path / "junk.mp4").write_text("not a video")
    with pytest.raises(VideoOpenError):
        transcode(tmp_path / "junk.mp4", tmp_path / "y.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4", "keep.mp4"]
    result = transcode(src, dst, overwrite=True)
    assert probe(result.dst).num_frames == 30
    # the input itself, even with --overwrite and through another name for it: refused
    original = dst.read_bytes()
    (tmp_path / "alias.mp4").hardlink_to(dst)
    for same in (dst, tmp_path / "alias.mp4", tmp_path / "." / "keep.mp4"):
        with pytest.raises(VideoWriteError, match="output is the input"):
            transcode(dst, same, overwrite=True, crf=40)
    assert dst.read_bytes() == original


def test_gop_caps_the_keyframe_interval_and_one_thread_is_reproducible(clip, tmp_path):
    import av

    src = clip("h264_single_keyframe.mp4")
    first = transcode(src, tmp_path / "a.mp4", gop=8, threads=1, preset="veryfast")
    transcode(src, tmp_path / "b.mp4", gop=8, threads=1, preset="veryfast")
    with av.open(str(first.dst)) as c:
        keys = [i for i, p in enumerate(c.demux(video=0)) if p.is_keyframe and p.size]
    assert len(keys) >= first.num_frames // 8 and int(np.diff(keys).max()) <= 8
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
