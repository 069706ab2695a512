"""quality / psnr / ssim: the yardstick for transcode and enhancement."""

from __future__ import annotations

import av
import numpy as np
import pytest
from av.filter import Graph
from io_clips import clip_frames

from vidlab.io import QualityMismatchError, psnr, quality, ssim, transcode, write_video


def test_psnr_of_a_known_error_and_of_identical_frames():
    a = clip_frames(1)[0]
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    mse = np.mean((a @ [0.299, 0.587, 0.114] - b @ [0.299, 0.587, 0.114]) ** 2)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / mse))
    assert psnr(a, a) == 100.0
    gray = a[..., 0]
    assert psnr(gray, gray + 0) == 100.0 and psnr(gray, 255 - gray) < 10


def test_ssim_is_one_for_identical_frames_and_falls_with_noise():
    a = clip_frames(1)[0]
    rng = np.random.default_rng(0)
    noisy = [np.clip(a + rng.normal(0, s, a.shape), 0, 255).astype(np.uint8) for s in (3, 15, 50)]
    scores = [ssim(a, n) for n in noisy]
    assert ssim(a, a) == pytest.approx(1.0)
    assert 1 > scores[0] > scores[1] > scores[2] > 0
    with pytest.raises(ValueError, match="shape"):
        ssim(a, a[:-1])


def _ffmpeg_psnr_y(ref, dist) -> list[float]:
    """Per-frame luma PSNR from FFmpeg's own `psnr` filter, as an independent reference."""
    with av.open(str(ref)) as a, av.open(str(dist)) as b:
        graph = Graph()
        src_ref = graph.add_buffer(template=a.streams.video[0])
        src_dist = graph.add_buffer(template=b.streams.video[0])
        meter, sink = graph.add("psnr"), graph.add("buffersink")
        src_dist.link_to(meter, 0, 0)
        src_ref.link_to(meter, 0, 1)
        meter.link_to(sink)
        graph.configure()
        values = []
        for fa, fb in zip(a.decode(video=0), b.decode(video=0), strict=True):
            src_ref.push(fa)
            src_dist.push(fb)
            while True:
                try:
                    values.append(float(graph.pull().metadata["lavfi.psnr.psnr.y"]))
                except (av.error.BlockingIOError, av.error.EOFError):
                    break
        return values


def test_video_quality_matches_ffmpeg_psnr_filter(clip, tmp_path):
    ref = clip("h264_bframes_open_gop.mp4")
    dist = transcode(ref, tmp_path / "dist.mp4", crf=40).dst
    result = quality(ref, dist)
    assert result.num_frames == 60 and len(result.psnr_per_frame) == len(result.ssim_per_frame) == 60
    expected = _ffmpeg_psnr_y(ref, dist)
    np.testing.assert_allclose(result.psnr_per_frame[:len(expected)], expected, atol=1e-3)
    assert result.psnr == pytest.approx(np.mean(result.psnr_per_frame), abs=1e-3)
    assert 0.5 < result.ssim < 1
    same = quality(ref, ref)
    assert same.psnr == 100.0 and same.ssim == pytest.approx(1.0)
    assert {"ref", "dist", "num_frames", "psnr", "ssim", "psnr_per_frame",
            "ssim_per_frame"} <= set(result.to_dict())


def test_mismatched_videos_raise_a_clear_error(clip, tmp_path):
    ref = clip("h264_bframes_open_gop.mp4")  # 60 frames, 80×64
    shorter = write_video(tmp_path / "short.mp4", clip_frames(30), fps=25)
    with pytest.raises(QualityMismatchError, match=r"short.mp4: 30 frames, the reference .* 60"):
        quality(ref, shorter)
    smaller = transcode(ref, tmp_path / "small.mp4", size=32).dst
    with pytest.raises(QualityMismatchError, match=r"small.mp4: frame size 40x32 differs"):
        quality(ref, smaller)


def test_real_carphone_pair(shared_clips):
    pristine, distorted = shared_clips
    degraded = quality(pristine, distorted)
    assert degraded.num_frames == 120
    assert 15 < degraded.psnr < 40 and 0.3 < degraded.ssim < 0.95
    assert quality(pristine, pristine).psnr == 100.0
