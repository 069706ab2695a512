"""The dataset fingerprint measures what the recipe needs, on real H.264 clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_helpers import write

from vidlab.data.fingerprint import clip_motion, compute_fingerprint, load_or_compute, quantiles
from vidlab.data.manifest import load_entries


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(h // 8 + 2, w // 8 + 2, 3))
    big = np.kron(small, np.ones((8, 8, 1)))  # blocky, so it survives compression
    return big[:h, :w].astype(np.float32)


def _pan(n: int, px_per_frame: float, seed: int = 0) -> np.ndarray:
    canvas = _texture(64, 96 + int(n * px_per_frame) + 8, seed)
    return np.stack([canvas[:, int(t * px_per_frame):int(t * px_per_frame) + 96]
                     for t in range(n)]).astype(np.uint8)


def _still_with_event(n: int, fps: int, start_s: float, length_s: float, size: int = 10,
                      speed_px_s: float = 40.0) -> np.ndarray:
    """A still textured scene; a square moves right only during [start, start + length]."""
    base = _texture(64, 96, 3)
    frames = np.repeat(base[None], n, axis=0)
    for t in range(n):
        s = np.clip(t / fps - start_s, 0, length_s)
        x = int(10 + speed_px_s * s)
        frames[t, 27:27 + size, x:x + size] = (255, 40, 40)
    return frames.astype(np.uint8)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fp")
    return {
        "still": write(root / "still.mp4", np.repeat(_texture(64, 96, 1)[None], 40, 0)
                       .astype(np.uint8), fps=20),
        "pan": write(root / "pan.mp4", _pan(40, 2.0), fps=20),
        "slow_pan": write(root / "slow_pan.mp4", _pan(40, 0.25), fps=20),
        "event": write(root / "event.mp4", _still_with_event(300, 10, 14.0, 2.0), fps=10),
        "small": write(root / "small.mp4", _still_with_event(60, 20, 0.0, 3.0, size=3,
                                                            speed_px_s=20), fps=20),
    }


def test_a_still_clip_has_no_motion(clips):
    m = clip_motion(clips["still"])
    assert m["active_fraction"] == 0 and m["moving_area"] == 0


def test_camera_pan_moves_the_whole_picture_at_the_speed_it_was_made_with(clips):
    m = clip_motion(clips["pan"])
    assert m["moving_area"] > 0.5 and m["active_fraction"] > 0.8
    # 2 px/frame at 20 fps on a 64-px short side = 0.625 short sides per second
    assert m["camera_speed"] == pytest.approx(0.625, rel=0.2)


def test_slower_motion_takes_longer_to_decorrelate(clips):
    fast, slow = clip_motion(clips["pan"]), clip_motion(clips["slow_pan"])
    assert slow["decorrelation_s"] > 2 * fast["decorrelation_s"]
    assert slow["camera_speed"] < fast["camera_speed"] / 4


def test_a_short_event_in_a_long_clip_is_a_small_active_fraction(clips):
    m = clip_motion(clips["event"])  # 30 s, the square moves during 2 s
    assert 0 < m["active_fraction"] < 0.25
    assert 1.0 <= m["action_seconds"] <= 6.0


def test_a_small_object_is_a_small_moving_area(clips):
    assert 0 < clip_motion(clips["small"])["moving_area"] < 0.02


def test_fingerprint_of_a_folder(tiny_dataset):
    entries = load_entries(tiny_dataset)
    fp = compute_fingerprint(entries, workers=1)
    assert fp["clips"]["num_clips"] == 9 and fp["clips"]["num_classes"] == 3
    assert fp["clips"]["class_counts"] == {"a_left": 3, "b_right": 3, "c_still": 3}
    assert fp["clips"]["imbalance"] == 1.0
    assert fp["duration"]["p50"] == pytest.approx(24 / 25, abs=0.05)
    assert fp["motion"]["clips_measured"] == 9
    flip = fp["labels"]["hflip"]
    assert flip["unmapped"] == ["a_left", "b_right"]  # no "a_right" or "b_left" to become
    assert flip["map"] == {"c_still": "c_still"}
    json.dumps(fp)  # plain JSON


def test_unreadable_clips_do_not_stop_the_fingerprint(tiny_dataset, tmp_path):
    entries = load_entries(tiny_dataset)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    entries.append({**entries[0], "path": str(bad)})
    fp = compute_fingerprint(entries, workers=1)
    assert fp["motion"]["clips_measured"] == 9


def test_the_fingerprint_is_cached_until_the_clips_change(tiny_dataset, tmp_path):
    entries = load_entries(tiny_dataset)
    path = tmp_path / "fingerprint.json"
    first = load_or_compute(entries, ["a_left", "b_right", "c_still"], path, workers=1)
    cached = json.loads(path.read_text())
    cached["marker"] = 1
    path.write_text(json.dumps(cached))
    assert load_or_compute(entries, ["a_left", "b_right", "c_still"], path)["marker"] == 1
    fewer = load_or_compute(entries[:6], ["a_left", "b_right"], path, workers=1)
    assert "marker" not in fewer and fewer["digest"] != first["digest"]


def test_quantiles_ignore_missing_values():
    q = quantiles([1.0, None, 3.0, float("nan"), 2.0])
    assert q["min"] == 1.0 and q["p50"] == 2.0 and q["max"] == 3.0
    assert quantiles([])["p50"] == 0.0
