"""Training material: clean clips derived from ordinary videos, pool windows after a lead-in."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import encode_video, moving_square_frames

from vidlab.enhance.pool import PoolSpec, build_pool
from vidlab.enhance.sources import derive_clips, downscale
from vidlab.errors import OutputExistsError
from vidlab.io import VideoReader, psnr


def test_derive_clips_downscales_and_cuts_segments(tmp_path):
    frames = moving_square_frames(25, 160, 192, seed=1)
    src = encode_video(tmp_path / "src.mp4", frames, fps=25, options={"crf": "10"})
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    out = derive_clips([src, tmp_path / "junk.mp4"], tmp_path / "out", scales=(2, 3),
                       segment_frames=10)
    # factor 3 would leave 52 px (< 64): skipped; 25 frames make two whole 10-frame segments
    assert [p.name for p in out] == ["src_s2_00.mp4", "src_s2_01.mp4"]
    with VideoReader(out[1]) as r:
        seg = np.stack(list(r.iter_frames()))
    assert seg.shape == (10, 80, 96, 3)
    with VideoReader(src) as r:
        decoded = np.stack(list(r.iter_frames()))
    expected = downscale(decoded, 2)[10:20]
    assert np.mean([psnr(a, b) for a, b in zip(expected, seg, strict=True)]) > 38
    with pytest.raises(OutputExistsError):
        derive_clips([src], tmp_path / "out", scales=(2,), segment_frames=10)


def test_pool_windows_are_cut_after_their_lead_in(tmp_path):
    root = tmp_path / "clean" / "a"
    root.mkdir(parents=True)
    encode_video(root / "c.mp4", moving_square_frames(24, 48, 64, seed=0), options={"crf": "12"})
    spec = PoolSpec(task="restore", windows=6, val_windows=1, window_frames=5, max_height=48,
                    max_width=64, lead_frames=8, seed=3)
    records = build_pool(tmp_path / "run", tmp_path / "clean", spec)
    leads = [r.get("lead_frames", 0) for r in records]
    assert any(leads) and max(leads) <= 8
    for r in records:
        clean = np.load(tmp_path / "run" / "pool" / f"{r['name']}_clean.npy")
        degraded = np.load(tmp_path / "run" / "pool" / f"{r['name']}_degraded.npy")
        assert clean.shape == degraded.shape == (5, 48, 64, 3)
    index = json.loads((tmp_path / "run" / "pool" / "pool.json").read_text())
    assert index["spec"]["lead_frames"] == 8


def test_pool_is_the_same_made_by_one_process_or_several(tmp_path):
    """Each window has its own generator, so parallel pair-making changes nothing but speed."""
    for k in range(2):
        root = tmp_path / "clean" / f"c{k}"
        root.mkdir(parents=True)
        encode_video(root / "v.mp4", moving_square_frames(16, 48, 64, seed=k), options={"crf": "12"})
    spec = PoolSpec(task="restore", windows=5, val_windows=1, window_frames=4, max_height=32,
                    max_width=48, lead_frames=4, seed=7)
    serial = build_pool(tmp_path / "one", tmp_path / "clean", spec, workers=1)
    parallel = build_pool(tmp_path / "two", tmp_path / "clean", spec, workers=2)
    assert serial == parallel and len(serial) == 6
    for r in serial:
        for part in ("clean", "degraded"):
            a, b = (np.load(tmp_path / run / "pool" / f"{r['name']}_{part}.npy")
                    for run in ("one", "two"))
            np.testing.assert_array_equal(a, b)
    assert len({r["clip"] for r in serial if r["split"] == "val"}) == 1


@pytest.mark.parametrize("kind", ["texture", "graphics"])
def test_procedural_clips_are_real_videos_of_their_kind(tmp_path, kind):
    """Textures are busy everywhere; graphics are mostly flat or smooth with hard edges."""
    from vidlab.enhance.textures import make_texture_clips

    paths = make_texture_clips(tmp_path, num_clips=3, num_frames=6, seed=1, kind=kind)
    assert [p.parent.name for p in paths] == [kind] * 3
    smooth = []
    for path in paths:
        with VideoReader(path) as r:
            frames = np.stack(list(r.iter_frames())).astype(float)
        assert frames.shape[0] == 6 and frames.std() > 5
        second_diff = np.abs(frames[:, :, 2:] - 2 * frames[:, :, 1:-1] + frames[:, :, :-2])
        smooth.append(float(np.mean(second_diff.max(-1) < 6)))  # codec dither
    if kind == "graphics":
        assert min(smooth) > 0.6
    else:
        assert max(smooth) < 0.4
    with pytest.raises(OutputExistsError):
        make_texture_clips(tmp_path, num_clips=1, kind=kind)
    with pytest.raises(ValueError, match="kind"):
        make_texture_clips(tmp_path / "other", kind="cartoon")


def test_camera_clips_move_over_the_given_photos(tmp_path):
    """`camera` clips are protocol-size camera moves over the stills: consecutive frames are
    the same photo shifted (small difference), different clips differ; no stills: an error."""
    import av

    from vidlab.enhance.textures import CAMERA_SIZE, make_texture_clips

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:400, 0:500]
    photo = (127 + 60 * np.sin(xx / 9.0)[..., None] * np.cos(yy / 13.0)[..., None]
             + rng.normal(0, 4, (400, 500, 3))).clip(0, 255).astype(np.uint8)
    still = tmp_path / "photo.png"
    with av.open(str(still), "w") as c:
        s = c.add_stream("png")
        s.width, s.height, s.pix_fmt = 500, 400, "rgb24"
        c.mux(s.encode(av.VideoFrame.from_ndarray(photo, format="rgb24")))
        c.mux(s.encode())
    paths = make_texture_clips(tmp_path / "out", num_clips=2, num_frames=5, seed=3,
                               stills=[still], kind="camera")
    clips = []
    for path in paths:
        with VideoReader(path) as r:
            clips.append(np.stack(list(r.iter_frames())).astype(float))
    for frames in clips:
        assert frames.shape == (5, *CAMERA_SIZE, 3) and frames.std() > 10
        assert 0 < np.abs(frames[1] - frames[0]).mean() < np.abs(frames[0] - 127).mean()
    assert np.abs(clips[0][0] - clips[1][0]).mean() > 1
    with pytest.raises(ValueError, match="stills"):
        make_texture_clips(tmp_path / "none", num_clips=1, kind="camera")


def test_retoned_windows_are_a_darker_or_flatter_copy_degraded_after_retoning(tmp_path):
    """tone_share maps a window's clean frames onto a darker/narrower range before the codec
    sees them: the same crop as without it, linearly re-toned, and the pair stays a pair."""
    root = tmp_path / "clean" / "a"
    root.mkdir(parents=True)
    encode_video(root / "c.mp4", moving_square_frames(16, 48, 64, seed=2), options={"crf": "10"})
    kw = dict(task="restore", windows=8, val_windows=1, window_frames=4, max_height=48,
              max_width=64, lead_frames=0, quality_range=(20, 22), noise_prob=0.0, seed=5)
    plain = build_pool(tmp_path / "plain", tmp_path / "clean", PoolSpec(**kw))
    toned = build_pool(tmp_path / "toned", tmp_path / "clean", PoolSpec(**kw, tone_share=0.5))
    assert "tone_share" not in PoolSpec(**kw).to_dict()  # pools made before the field are reused
    assert 0 < sum(bool(r.get("toned")) for r in toned) < len(toned)
    for p, t in zip(plain, toned, strict=True):
        x = np.load(tmp_path / "plain" / "pool" / f"{p['name']}_clean.npy").astype(float)
        y = np.load(tmp_path / "toned" / "pool" / f"{t['name']}_clean.npy").astype(float)
        slope, black = np.polyfit(x.ravel(), y.ravel(), 1)
        if t.get("toned"):
            assert 32 / 255 - 0.01 < slope < 200 / 255 + 0.01 and -0.6 < black < 48.6
            assert np.abs(y - (slope * x + black)).max() <= 1.0
        else:
            np.testing.assert_array_equal(x, y)
        degraded = np.load(tmp_path / "toned" / "pool" / f"{t['name']}_degraded.npy")
        assert np.mean([psnr(c, d) for c, d in zip(y.astype(np.uint8), degraded,
                                                   strict=True)]) > 30
