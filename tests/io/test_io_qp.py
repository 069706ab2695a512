"""QP maps from the decoder: H.264 gives the encoder's quantiser per pixel, other codecs none."""

from __future__ import annotations

import numpy as np
from tests.io.io_clips import clip_frames, encode_video

from vidlab.io import VideoReader


def _constant_qp_clip(path, qp: int = 30):
    """x264 at constant QP (no adaptive quantisation in that mode), keyframes every 6 frames."""
    return encode_video(path, clip_frames(12), options={
        "qp": str(qp), "x264-params": "keyint=6:min-keyint=6:scenecut=0:bframes=0:log-level=error"})


def test_h264_qp_maps_follow_the_encoder_and_leave_the_frames_alone(tmp_path):
    path = _constant_qp_clip(tmp_path / "qp30.mp4")
    with VideoReader(path) as r:
        items = list(r.iter_frames_with_qp())
        plain = list(r.iter_frames_with_time())
    assert [i for i, *_ in items] == list(range(12))
    for (i, t, frame, qp), (j, u, same) in zip(items, plain, strict=True):
        assert (i, t) == (j, u)
        np.testing.assert_array_equal(frame, same)
        assert qp.dtype == np.uint8 and qp.shape == frame.shape[:2]
    keyframes, others = [0, 6], [k for k in range(12) if k not in (0, 6)]
    assert all((items[k][3] == 30).all() for k in others)
    assert all((items[k][3] < 30).all() for k in keyframes)  # x264's ip_ratio: finer I frames


def test_qp_maps_are_sized_and_turned_like_the_frames(tmp_path, clip):
    path = _constant_qp_clip(tmp_path / "qp.mp4", qp=40)
    with VideoReader(path, size=(32, 40)) as r:
        _, _, frame, qp = next(r.iter_frames_with_qp())
    assert frame.shape[:2] == qp.shape == (32, 40)
    with VideoReader(clip("rotated_90.mp4")) as r:
        _, _, frame, qp = next(r.iter_frames_with_qp())
    assert qp is not None and qp.shape == frame.shape[:2] == (80, 64)


def test_the_luma_of_the_same_decode_is_what_a_gray_reader_gives(tmp_path, clip):
    for path, size in ((_constant_qp_clip(tmp_path / "qp.mp4"), None),
                       (clip("rotated_90.mp4"), (40, 32))):
        with VideoReader(path, size=size) as r:
            items = list(r.iter_frames_with_qp_and_luma())
            plain = list(r.iter_frames_with_qp())
        with VideoReader(path, size=size, pixel_format="gray") as g:
            gray = list(g.iter_frames())
        assert len(items) == len(plain) == len(gray) > 0
        for (i, t, frame, qp, y), (j, u, same, same_qp), g in zip(items, plain, gray,
                                                                 strict=True):
            assert (i, t) == (j, u) and y.shape == frame.shape[:2]
            np.testing.assert_array_equal(frame, same)
            np.testing.assert_array_equal(y, g)
            assert (qp is None and same_qp is None) or np.array_equal(qp, same_qp)


def test_codecs_without_qp_maps_read_as_unknown(clip):
    for name in ("hevc_10bit.mp4", "vp9.webm"):
        with VideoReader(clip(name)) as r:
            items = list(r.iter_frames_with_qp(0, 3))
        assert len(items) == 3 and all(qp is None for *_, qp in items)
