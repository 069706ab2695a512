"""The one clip loader: entries → sampler → reader → transform, for one video or many."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch

from vidlab.data.clips import (
    assemble,
    decode_views,
    iter_views,
    load_clips,
    load_views,
    open_video,
    read_clips,
    sample,
    stream_clips,
)
from vidlab.data.manifest import load_entries
from vidlab.data.samplers import view_sampler, window_sampler
from vidlab.data.transforms import Preprocess, normalize, to_float_cthw
from vidlab.errors import DatasetError, VideoDecodeError, VideoError, VideoTooLongError

PRE = Preprocess(num_frames=4, stride=2, short_side=48, crop_size=40)


@pytest.fixture
def entries(tiny_dataset):
    return load_entries(tiny_dataset)


def test_load_clips_holds_every_view_of_every_video_as_model_input(entries):
    clips = load_clips(entries, PRE, view_sampler(PRE, 2), crops=3)
    assert clips.clips.shape == (len(entries) * 6, 3, 4, 40, 40)
    assert clips.clips.dtype == np.float32 and clips.views == (2, 3)
    assert clips.labels == ["a_left", "b_right", "c_still"]
    assert np.bincount(clips.video).tolist() == [6] * len(entries)
    assert clips.targets.tolist() == [clips.labels.index(e["label"]) for e in entries
                                      for _ in range(6)]
    one = load_views(entries[4]["path"], PRE, view_sampler(PRE, 2), crops=3)
    assert torch.equal(one, torch.from_numpy(clips.clips[24:30]))


def test_raw_clips_are_the_uint8_centre_crops_the_model_sees(entries):
    raw = load_clips(entries[:2], PRE, raw=True)
    model_input = load_clips(entries[:2], PRE)
    assert raw.clips.dtype == np.uint8 and raw.clips.shape == (2, 4, 40, 40, 3)
    normalized = normalize(to_float_cthw(raw.clips[0]), PRE.mean, PRE.std)
    assert torch.equal(normalized, torch.from_numpy(model_input.clips[0]))


def test_limit_interleaves_classes_and_unknown_labels_are_kept_or_left_out(entries):
    three = load_clips(entries, PRE, limit=3, seed=4)
    assert sorted(three.targets.tolist()) == [0, 1, 2]
    some = load_clips(entries, PRE, labels=["a_left"])
    assert (some.targets == -1).sum() == 6 and (some.targets == 0).sum() == 3
    assert len(load_clips(entries, PRE, labels=["a_left"], keep_unknown=False)) == 3


def test_unreadable_videos_are_skipped_and_none_readable_is_one_clear_error(entries, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    clips = load_clips([*entries[:2], {"path": str(bad), "label": "a_left"}], PRE)
    assert len(clips) == 2 and clips.skipped == [str(bad)]
    with pytest.raises(DatasetError, match="none of the videos"):
        load_clips([{"path": str(bad), "label": "a_left"}], PRE)
    with pytest.raises(DatasetError, match="GiB"):
        load_clips(entries, PRE, max_bytes=1000)


def test_open_video_checks_the_file_and_the_duration_limit(entries, tmp_path):
    with open_video(entries[0]["path"], PRE) as reader:
        assert min(reader.shape) == PRE.short_side and len(reader) == 24
    with pytest.raises(VideoTooLongError, match="limit is 0.5 s"):
        open_video(entries[0]["path"], PRE, max_duration=0.5)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError) as exc:
        open_video(empty, PRE)
    assert str(empty) in str(exc.value)


def test_random_access_and_streaming_read_the_same_frames(entries):
    path = entries[1]["path"]
    with open_video(path, PRE) as reader:
        plans = sample(reader, window_sampler(PRE, 0.3, 0.2))
        assert len(plans) >= 3
        direct = read_clips(reader, plans)
    streamed = dict(stream_clips(open_video(path, PRE), plans))
    for i, frames in enumerate(direct):
        assert np.array_equal(streamed[i], frames)
    (only,) = list(iter_views(open_video(path, PRE), plans[:1]))
    assert np.array_equal(only[1], direct[0])
    _, (centre,) = decode_views(path, PRE)
    assert centre.shape[0] == 4 and centre.dtype == np.uint8


def test_assemble_yields_early_and_holds_at_most_one_span_of_frames():
    pre = Preprocess(num_frames=4, stride=3)
    plans = window_sampler(pre, 1.0, 0.5)(600, 10.0)
    refs = []
    produced = []

    def frames():
        for i in range(600):
            f = np.full((4, 4, 3), i % 256, np.uint8)
            refs.append(weakref.ref(f))
            produced.append(i)
            yield i, f

    seen, most_alive = [], 0
    for n, clip in assemble(frames(), plans):
        seen.append(n)
        most_alive = max(most_alive, sum(r() is not None for r in refs))
        np.testing.assert_array_equal(clip[:, 0, 0, 0], plans[n].indices % 256)
        if n == 0:
            assert len(produced) < 50  # streamed: the first clip comes before the video ends
    assert sorted(seen) == list(range(len(plans)))
    assert most_alive <= 2 * pre.num_frames + 2  # never more than ~one clip span in memory


def test_assemble_pads_when_the_stream_ends_early_and_fails_when_empty():
    pre = Preprocess(num_frames=4, stride=1)
    plans = view_sampler(pre)(10, 10.0)
    short = ((i, np.full((2, 2, 3), i, np.uint8)) for i in range(5))
    ((_, clip),) = list(assemble(short, plans))
    assert clip[:, 0, 0, 0].tolist() == [min(i, 4) for i in plans[0].indices]
    with pytest.raises(VideoDecodeError):
        list(assemble(iter([]), plans, "x.mp4"))


