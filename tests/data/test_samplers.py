"""Samplers: pure functions of (video length, fps, preprocessing) → frame indices.

Every sampler is checked on short videos (loop/pad), long videos and variable-frame-rate
timestamps; the sliding windows must cover a long video end to end.
"""

from __future__ import annotations

import numpy as np
import pytest

from vidlab.data.config import DataConfig
from vidlab.data.samplers import (
    RandomClipSampler,
    SegmentSampler,
    SlidingWindowSampler,
    UniformMultiViewSampler,
    fit_indices,
    parse_views,
    train_sampler,
    view_sampler,
    views_label,
    window_sampler,
    window_starts,
)
from vidlab.data.transforms import Preprocess
from vidlab.errors import ConfigError


def pre(**kw) -> Preprocess:
    return Preprocess(**{"num_frames": 4, "stride": 3, **kw})


def only(plans):
    (p,) = plans
    return p.indices


def test_random_clip_stays_inside_and_covers_both_ends():
    s = RandomClipSampler(pre())
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(400):
        idx = only(s(20, rng=rng))  # span 10 → starts 0..10
        assert idx.min() >= 0 and idx.max() <= 19
        assert np.all(np.diff(idx) == 3)
        starts.add(int(idx[0]))
    assert starts == set(range(11))


def test_clip_that_exactly_fits_starts_at_zero():
    assert only(RandomClipSampler(pre(), jitter=False)(10)).tolist() == [0, 3, 6, 9]


def test_short_video_loops_or_pads_never_crashes():
    loop = RandomClipSampler(pre(num_frames=8, stride=2), jitter=False)(5)
    pad = RandomClipSampler(pre(num_frames=8, stride=2, short_video="pad"), jitter=False)(5)
    assert only(loop).tolist() == [0, 2, 4, 1, 3, 0, 2, 4]
    assert only(pad).tolist() == [0, 2, 4, 4, 4, 4, 4, 4]
    one = RandomClipSampler(pre(num_frames=8, stride=2))(1, rng=np.random.default_rng(0))
    assert only(one).tolist() == [0] * 8
    for sampler in (view_sampler(pre(), 3), view_sampler(pre(sampling="segments"), 2),
                    window_sampler(pre(), 2.0, 1.0)):
        for plan in sampler(1, 25.0):
            assert plan.indices.tolist() == [0] * 4


def test_samplers_are_pure_the_same_call_gives_the_same_clips():
    """Nothing is changed per item: a 30 fps and a 60 fps video in turn, then the first again."""
    p = pre(num_frames=4, stride=2, target_fps=10)
    s = train_sampler(p)
    first = only(s(300, 30.0, rng=np.random.default_rng(1)))
    only(s(300, 60.0, rng=np.random.default_rng(1)))
    again = only(s(300, 30.0, rng=np.random.default_rng(1)))
    assert first.tolist() == again.tolist() and np.all(np.diff(first) == 3)


def test_fit_indices_rejects_empty_video_and_unknown_policy():
    with pytest.raises(ValueError):
        fit_indices(np.arange(3), 0)
    with pytest.raises(ValueError):
        fit_indices(np.arange(3), 5, "mirror")
    with pytest.raises(ValueError, match="no frames"):
        view_sampler(pre())(0)


def test_uniform_views_spread_from_first_to_last_frame():
    views = UniformMultiViewSampler(pre(stride=2), clips=3)(31)  # span 7, room 24
    assert [int(v.indices[0]) for v in views] == [0, 12, 24]
    assert views[-1].indices[-1] == 30
    assert only(UniformMultiViewSampler(pre(stride=2))(31)).tolist() == [12, 14, 16, 18]


def test_segments_take_one_frame_per_equal_segment():
    s = SegmentSampler(pre(), random=True)
    rng = np.random.default_rng(1)
    for _ in range(100):
        idx = only(s(40, rng=rng))
        assert [int(i) // 10 for i in idx] == [0, 1, 2, 3]
        assert len(set(np.diff(idx).tolist())) == 1  # evenly spaced: motion keeps its speed
    assert only(SegmentSampler(pre())(40)).tolist() == [5, 15, 25, 35]
    assert only(SegmentSampler(pre(num_frames=8), random=True)(3, rng=rng)).max() <= 2


def test_segment_views_interleave_and_factories_pick_them_for_tsn():
    p = pre(sampling="segments")
    views = view_sampler(p, 2)(40)
    assert [v.indices.tolist() for v in views] == [[2, 12, 22, 32], [7, 17, 27, 37]]
    assert isinstance(view_sampler(p), SegmentSampler)
    assert isinstance(train_sampler(p), SegmentSampler) and train_sampler(p).num_views == 1
    assert isinstance(view_sampler(pre(), 3), UniformMultiViewSampler)
    assert view_sampler(pre(), 3).num_views == 3


def test_one_sampling_vocabulary_old_words_still_load():
    assert DataConfig(sampling="random").sampling == "clips"  # older configs and bundles
    assert DataConfig(sampling="segments").preprocess().sampling == "segments"
    assert Preprocess.from_dict({"sampling": "random"}).sampling == "clips"
    with pytest.raises(ValueError):
        Preprocess(sampling="dense")


def test_target_fps_sets_the_stride_per_video():
    p = pre(num_frames=4, stride=1, target_fps=10)
    assert p.stride_for(30) == 3 and p.stride_for(10) == 1 and p.stride_for(None) == 1
    assert np.all(np.diff(only(view_sampler(p)(100, 30.0))) == 3)


def test_plans_state_their_time_span_by_fps_or_real_timestamps():
    (p,) = view_sampler(pre(num_frames=2, stride=10))(40, 10.0)
    assert (p.start, p.end) == (1.4, 2.5) and p.indices.tolist() == [14, 24]
    times = np.r_[np.arange(20) / 5, 4 + np.arange(20) / 20]  # 5 fps then 20 fps
    (v,) = view_sampler(pre(num_frames=2, stride=10))(40, 10.0, timestamps=times)
    assert (v.start, v.end) == (2.8, 4.25)


def test_window_starts_cover_the_whole_video_and_end_at_its_end():
    assert window_starts(6.0, 2.0, 1.0) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert window_starts(5.5, 2.0, 1.0) == [0.0, 1.0, 2.0, 3.0, 3.5]
    assert window_starts(2.0, 2.0, 1.0) == [0.0]
    # a tail shorter than the slack (under a frame) gets no near-duplicate window
    assert window_starts(4.004, 2.0, 1.0) == [0.0, 1.0, 2.0, 2.004]
    assert window_starts(4.004, 2.0, 1.0, slack=0.02) == [0.0, 1.0, 2.0]
    assert window_starts(4.1, 2.0, 1.0, slack=0.02) == [0.0, 1.0, 2.0, 2.1]


def test_short_video_gets_one_centre_view_like_evaluation():
    p = pre(num_frames=8, stride=2)
    s = window_sampler(p, 2.0, 1.0)
    (plan,) = s(40, 25.0)
    assert not s.windowed(40, 25.0) and (plan.start, plan.end) == (0.0, 1.6)
    assert plan.indices.tolist() == only(view_sampler(p)(40, 25.0)).tolist()


@pytest.mark.parametrize("num_frames,fps", [(250, 25.0), (18000, 30.0), (1201, 29.97)])
def test_windows_cover_a_long_video_end_to_end(num_frames, fps):
    p = pre(num_frames=8, stride=2)
    s = SlidingWindowSampler(p, window=2.0, stride=1.0)
    plans = s(num_frames, fps)
    duration = num_frames / fps
    assert s.windowed(num_frames, fps) and plans[0].start == 0.0
    assert plans[-1].end == pytest.approx(duration, abs=1e-3)
    assert np.diff([p.start for p in plans]).max() <= 1.0 + 1e-6  # no gap between windows
    for plan in plans:
        assert np.all(np.diff(plan.indices) == 2)  # the training clip's sampling
        assert plan.start * fps - 1 <= plan.indices[0] and plan.indices[-1] < plan.end * fps + 1
        assert plan.indices.min() >= 0 and plan.indices.max() < num_frames


def test_max_clips_widens_the_stride_of_a_long_timeline_to_fit():
    p = pre(num_frames=8, stride=2)
    plans = window_sampler(p, 2.0, 1.0, max_clips=32)(15000, 25.0)
    assert len(plans) == 32 and plans[0].start == 0.0 and plans[-1].end == 600.0
    assert len(window_sampler(p, 2.0, 1.0, max_clips=32)(250, 25.0)) == 9  # fits: unchanged


def test_a_timeline_span_shorter_than_a_frame_is_refused_with_the_frame_length():
    p = pre(num_frames=8, stride=2)
    for window, stride in ((0.01, 1.0), (2.0, 0.001)):
        with pytest.raises(ConfigError, match=r"shorter than one frame .*0\.04 s at 25 fps"):
            window_sampler(p, window, stride)(90000, 25.0)  # 1 h: millions of plans otherwise
    assert len(window_sampler(p, 0.04, 0.04)(100, 25.0)) == 100  # one frame is enough
    assert len(window_sampler(p, 0.0, 0.001)(100, 25.0)) == 1  # no timeline: stride unused


def test_windows_of_variable_frame_rate_video_follow_its_timestamps():
    # 4 s at 5 fps (20 frames) then 4 s at 20 fps (80 frames): average 12.5 fps
    times = np.r_[np.arange(20) / 5, 4 + np.arange(80) / 20]
    plans = window_sampler(pre(num_frames=2, stride=1), 2.0, 2.0)(100, 12.5, timestamps=times)
    assert [(p.start, p.end) for p in plans] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)]
    for p in plans:  # every window's clip sits inside its window in real time
        assert all(p.start - 0.2 <= times[i] < p.end for i in p.indices)


def test_views_are_named_and_parsed_the_same_way():
    assert views_label((3, 1)) == "3x1" and parse_views("2X3") == (2, 3)
    with pytest.raises(ValueError):
        parse_views("3")
