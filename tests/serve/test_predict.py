"""The prediction core: clip plans, streaming assembly with bounded memory, correct answers."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from tests.serve.helpers import colour_frames, colour_video, pattern_video

from vidlab.data.transforms import Preprocess
from vidlab.errors import VideoDecodeError
from vidlab.io import write_video
from vidlab.serve.clips import frame_range, plan_clips, stream_clips, window_starts


def test_window_starts_cover_the_whole_video_and_end_at_its_end():
    assert window_starts(6.0, 2.0, 1.0) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert window_starts(5.5, 2.0, 1.0) == [0.0, 1.0, 2.0, 3.0, 3.5]
    assert window_starts(2.0, 2.0, 1.0) == [0.0]


def test_short_video_gets_one_centre_clip_like_evaluation():
    pre = Preprocess(num_frames=8, stride=2)
    plans, windowed = plan_clips(pre, 40, 25.0, window=2.0, stride=1.0)
    assert not windowed and len(plans) == 1
    np.testing.assert_array_equal(plans[0].indices, pre.clip_indices(40, 1, 25.0)[0])


def test_window_clips_keep_training_sampling_and_stay_inside_their_window():
    pre = Preprocess(num_frames=8, stride=2)
    plans, windowed = plan_clips(pre, 250, 25.0, window=2.0, stride=1.0)
    assert windowed and len(plans) == 9
    for p in plans:
        assert np.all(np.diff(p.indices) == 2)
        assert p.start * 25 <= p.indices[0] and p.indices[-1] < p.end * 25
    assert frame_range(plans)[2] == 2  # one sequential pass on the stride grid


def test_stream_clips_yields_early_and_holds_at_most_one_span_of_frames():
    pre = Preprocess(num_frames=4, stride=3)
    plans, _ = plan_clips(pre, 600, 10.0, window=1.0, stride=0.5)
    refs = []
    produced = []

    def frames():
        for i in range(600):
            f = np.full((4, 4, 3), i % 256, np.uint8)
            refs.append(weakref.ref(f))
            produced.append(i)
            yield i, f

    seen, most_alive = [], 0
    for n, clip in stream_clips(frames(), plans):
        seen.append(n)
        most_alive = max(most_alive, sum(r() is not None for r in refs))
        np.testing.assert_array_equal(clip[:, 0, 0, 0], plans[n].indices % 256)
        if n == 0:
            assert len(produced) < 50  # streamed: the first clip comes before the video ends
    assert sorted(seen) == list(range(len(plans)))
    assert most_alive <= 2 * pre.num_frames + 2  # never more than ~one clip span in memory


def test_stream_clips_pads_when_the_stream_ends_early_and_fails_when_empty():
    pre = Preprocess(num_frames=4, stride=1)
    plans, _ = plan_clips(pre, 10, 10.0)
    short = ((i, np.full((2, 2, 3), i, np.uint8)) for i in range(5))
    ((_, clip),) = list(stream_clips(short, plans))
    assert clip[:, 0, 0, 0].tolist() == [min(i, 4) for i in plans[0].indices]
    with pytest.raises(VideoDecodeError):
        list(stream_clips(iter([]), plans, "x.mp4"))


@pytest.mark.parametrize("colour", ["red", "green", "blue"])
def test_predict_file_names_the_colour_of_the_video(colour_predictor, tmp_path, colour):
    path = colour_video(tmp_path / f"{colour}.mp4", [colour], seconds_each=1.5)
    result = colour_predictor.predict_file(path, top_k=5)
    assert result["path"] == str(path)
    assert result["top"][0]["label"] == colour
    assert len(result["top"]) == 3  # top_k is capped by the number of labels
    assert sum(t["prob"] for t in result["top"]) == pytest.approx(1.0)
    assert result["windows"] == []  # 1.5 s is shorter than one 2 s window
    assert set(result["input"]) == {"brightness", "contrast", "motion"}


def test_timeline_follows_the_colour_changes_of_a_long_video(colour_predictor, tmp_path):
    path = colour_video(tmp_path / "rgb.mkv", ["red", "green", "blue"], seconds_each=2.0)
    result = colour_predictor.predict_file(path, top_k=2, window=1.0, stride=1.0)
    spans = [(w["start"], w["end"]) for w in result["windows"]]
    assert spans == [(float(i), float(i + 1)) for i in range(6)]
    labels = [w["top"][0]["label"] for w in result["windows"]]
    assert labels == ["red", "red", "green", "green", "blue", "blue"]
    assert all(len(w["top"]) == 2 for w in result["windows"])


def test_batched_inference_equals_one_clip_at_a_time(tiny_predictor, tmp_path):
    path = pattern_video(tmp_path / "p.mp4", num_frames=42, fps=12)
    one = tiny_predictor.predict_file(path, window=1.0, stride=0.5, batch_size=1)
    many = tiny_predictor.predict_file(path, window=1.0, stride=0.5, batch_size=8)
    assert len(one["windows"]) == len(many["windows"]) >= 4
    for a, b in zip(one["windows"], many["windows"], strict=True):
        assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
        np.testing.assert_allclose([t["prob"] for t in a["top"]],
                                   [t["prob"] for t in b["top"]], atol=1e-5)


def test_max_clips_widens_the_stride_of_a_long_timeline_to_fit():
    pre = Preprocess(num_frames=8, stride=2)
    plans, windowed = plan_clips(pre, 15000, 25.0, window=2.0, stride=1.0, max_clips=32)
    assert windowed and len(plans) == 32
    assert plans[0].start == 0.0 and plans[-1].end == 600.0
    assert len(plan_clips(pre, 250, 25.0, 2.0, 1.0, max_clips=32)[0]) == 9  # fits: unchanged


def test_windows_follow_real_timestamps_in_variable_frame_rate_video(colour_predictor, tmp_path):
    # 4 s of red at 5 fps (20 frames), then 4 s of blue at 20 fps (80 frames): at the average
    # 12.5 fps, 3 s would land on frame 37 (blue); by the timestamps it is frame 15 (red)
    frames = np.concatenate([colour_frames(["red"], 4.0, fps=5),
                             colour_frames(["blue"], 4.0, fps=20)])
    times = [i / 5 for i in range(20)] + [4 + i / 20 for i in range(80)]
    path = write_video(tmp_path / "vfr.mkv", frames, fps=20, timestamps=times)
    result = colour_predictor.predict_file(path, window=2.0, stride=2.0)
    labels = [w["top"][0]["label"] for w in result["windows"]]
    assert labels[:2] == ["red", "red"] and set(labels[2:]) == {"blue"}
