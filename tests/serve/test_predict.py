"""The prediction core: correct answers, timelines of long and variable-frame-rate videos.

(Window plans are tested with the samplers in tests/data, streaming assembly in
tests/data/test_clips.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from tests.serve.helpers import colour_frames, colour_video, pattern_video

from vidlab.io import write_video


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
