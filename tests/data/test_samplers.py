"""Sampler index arithmetic: edges, strides, short videos (loop/pad), TSN segments."""

from __future__ import annotations

import numpy as np
import pytest

from vidlab.data.samplers import (
    RandomClipSampler,
    SegmentSampler,
    UniformMultiViewSampler,
    fit_indices,
    segment_views,
)
from vidlab.data.transforms import Preprocess


def test_random_clip_stays_inside_and_covers_both_ends():
    s = RandomClipSampler(num_frames=4, stride=3)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(400):
        idx = s(20, rng)  # span 10 → starts 0..10
        assert idx.min() >= 0 and idx.max() <= 19
        assert np.all(np.diff(idx) == 3)
        starts.add(int(idx[0]))
    assert starts == set(range(11))


def test_clip_that_exactly_fits_starts_at_zero():
    idx = RandomClipSampler(4, 3, jitter=False)(10, np.random.default_rng(0))
    assert idx.tolist() == [0, 3, 6, 9]


def test_short_video_loops_or_pads_never_crashes():
    loop = RandomClipSampler(8, 2, jitter=False, short_video="loop")(5, np.random.default_rng(0))
    pad = RandomClipSampler(8, 2, jitter=False, short_video="pad")(5, np.random.default_rng(0))
    assert loop.tolist() == [0, 2, 4, 1, 3, 0, 2, 4]
    assert pad.tolist() == [0, 2, 4, 4, 4, 4, 4, 4]
    one = RandomClipSampler(8, 2, short_video="loop")(1, np.random.default_rng(0))
    assert one.tolist() == [0] * 8


def test_fit_indices_rejects_empty_video_and_unknown_policy():
    with pytest.raises(ValueError):
        fit_indices(np.arange(3), 0)
    with pytest.raises(ValueError):
        fit_indices(np.arange(3), 5, "mirror")


def test_uniform_views_spread_from_first_to_last_frame():
    views = UniformMultiViewSampler(4, 2, num_clips=3)(31)  # span 7, room 24
    assert [v[0] for v in views] == [0, 12, 24]
    assert views[-1][-1] == 30
    centre = UniformMultiViewSampler(4, 2, num_clips=1)(31)[0]
    assert centre.tolist() == [12, 14, 16, 18]


def test_segments_take_one_frame_per_equal_segment():
    s = SegmentSampler(4)
    rng = np.random.default_rng(1)
    for _ in range(100):
        idx = s(40, rng)
        assert [int(i) // 10 for i in idx] == [0, 1, 2, 3]
    assert SegmentSampler(4, random_offset=False)(40).tolist() == [5, 15, 25, 35]
    assert SegmentSampler(8)(3, rng).max() <= 2  # fewer frames than segments: repeats


def test_segment_views_match_preprocess_and_differ_per_view():
    views = segment_views(40, 4, num_clips=2)
    assert views[0].tolist() == [2, 12, 22, 32] and views[1].tolist() == [7, 17, 27, 37]
    p = Preprocess(num_frames=4, sampling="segments")
    assert [v.tolist() for v in p.clip_indices(40, 2)] == [v.tolist() for v in views]


def test_preprocess_target_fps_sets_the_stride():
    p = Preprocess(num_frames=4, stride=1, target_fps=10)
    assert p.stride_for(30) == 3 and p.stride_for(10) == 1 and p.stride_for(None) == 1
    assert np.all(np.diff(p.clip_indices(100, fps=30)[0]) == 3)
