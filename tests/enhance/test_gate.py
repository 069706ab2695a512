"""The quality gate: strengths measured per codec and QP so that no calibration clip loses."""

from __future__ import annotations

import numpy as np
import pytest

from vidlab.enhance.gate import (
    CalibrationFrame,
    QualityGate,
    blend,
    calibrate_gate,
    calibration_frame,
    clip_gains,
    load_gate,
    save_gate,
)


def _frame(clip: str, qp: float, cross: float, power: float, family: str = "h264",
           mse: float = 10.0) -> CalibrationFrame:
    return CalibrationFrame(f"{clip} | QP{qp:g}", family, qp, mse, cross, power)


def test_calibration_frame_predicts_the_mse_of_any_strength():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    base = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
    out = np.clip(clean + rng.normal(0, 4, clean.shape), 0, 255).astype(np.uint8)
    f = calibration_frame("c", "h264", 30, clean, base, out)
    from vidlab.io.quality import luma

    for a in (0.0, 0.5, 1.0):
        mixed = luma(base) + a * (luma(out) - luma(base))
        assert f.mse(a) == pytest.approx(np.mean((luma(clean) - mixed) ** 2), rel=1e-9)


def test_gate_turns_off_where_any_clip_would_lose_and_keeps_full_strength_where_all_gain():
    frames = [
        # QP 22: helps clip a, hurts clip b -> strength 0 (pass-through)
        _frame("a", 22, cross=1.0, power=1.0), _frame("b", 22, cross=-0.5, power=1.0),
        # QP 37: both gain most at full strength (cross == power)
        _frame("a", 37, cross=2.0, power=2.0), _frame("b", 37, cross=1.0, power=1.0),
        # QP 32: the model overshoots by 2x: half strength is best for both
        _frame("a", 32, cross=1.0, power=2.0), _frame("b", 32, cross=0.5, power=1.0),
    ]
    gate = calibrate_gate(frames, [22, 32, 37], min_gain_db=0.0)
    assert gate.tables["h264"] == [[22.0, 0.0], [32.0, 0.5], [37.0, 1.0]]
    assert gate.blind == 0.0  # clip b at QP 22 loses at any strength
    assert gate.alpha(22, "h264") == 0.0 and gate.alpha(10, "h264") == 0.0
    assert gate.alpha(34.5, "h264") == 0.5  # the strength calibrated on QP 32..36 frames
    assert gate.alpha(51, "h264") == 1.0
    assert gate.alpha(None, "h264") == gate.blind
    gains = clip_gains([f for f in frames if f.qp == 37], gate.alpha(37, "h264"))
    assert min(gains.values()) > 0


def test_headroom_keeps_a_strength_no_clip_loses_at_one_and_a_half_times_it():
    # clip b's best strength is 0.5 and it starts to lose past 1.0
    frames = [_frame("a", 37, cross=1.0, power=1.0), _frame("b", 37, cross=0.5, power=1.0)]
    bold = calibrate_gate(frames, [37], min_gain_db=0.0).tables["h264"][0][1]
    safe = calibrate_gate(frames, [37], min_gain_db=0.0, headroom=0.5)
    assert bold > 2 / 3 and safe.tables["h264"] == [[37.0, 0.65]]
    assert min(clip_gains(frames, 0.65 * 1.5).values()) >= 0
    assert safe.info["headroom"] == 0.5


def test_the_cli_calibrates_with_the_librarys_default_headroom():
    import inspect

    from vidlab.cli.enhance import calibrate_cmd
    from vidlab.enhance.gate import HEADROOM

    assert inspect.signature(calibrate_cmd).parameters["headroom"].default.default == HEADROOM


def test_a_clip_that_gains_little_shuts_the_floor_off_but_not_the_headroom():
    # clip c gains under 0.01 dB at any strength but never loses: no reason to stop clip a
    frames = [_frame("a", 37, cross=1.0, power=1.0), _frame("c", 37, cross=0.02, power=0.02)]
    assert calibrate_gate(frames, [37], floor_db=0.05).tables["h264"] == [[37.0, 0.0]]
    assert calibrate_gate(frames, [37], headroom=0.5).tables["h264"] == [[37.0, 1.0]]


def test_codecs_without_a_table_get_the_most_cautious_one():
    gate = QualityGate(tables={"h264": [[20, 0.0], [40, 1.0]], "hevc": [[20, 0.0], [40, 0.5]]},
                       blind=0.2)
    assert gate.alpha(39.9, "h264") == 0.0 and gate.alpha(10, "h264") == 0.0
    assert gate.alpha(40, "hevc") == 0.5 and gate.alpha(40, "h264") == 1.0
    assert gate.alpha(40, "vp9") == 0.5
    assert gate.alpha(None, "vp9") == 0.2


def test_gate_round_trips_through_the_bundle_and_a_broken_one_is_named(tmp_path):
    gate = QualityGate(tables={"h264": [[22.0, 0.0], [37.0, 0.8]]}, blind=0.1, info={"x": 1})
    save_gate(tmp_path, gate)
    assert load_gate(tmp_path) == gate
    (tmp_path / "gate.json").write_text('{"tables": 3}')
    from vidlab.errors import BundleError

    with pytest.raises(BundleError, match="gate.json"):
        load_gate(tmp_path)
    (tmp_path / "gate.json").write_text('{"blind": 0.1}')
    with pytest.raises(BundleError, match="gate.json is not a quality gate: no 'tables' field"):
        load_gate(tmp_path)
    assert load_gate(tmp_path / "none") is None


def test_blend_is_exact_at_the_ends():
    a = np.full((2, 2, 3), 10, np.uint8)
    b = np.full((2, 2, 3), 30, np.uint8)
    assert blend(a, b, 0.0) is a and blend(a, b, 1.0) is b
    assert (blend(a, b, 0.5) == 20).all()


def test_gains_too_small_to_pay_for_the_re_encode_are_passed_through():
    # both clips gain, but only ~0.02 dB at best: below the 0.1 dB worth correcting for
    frames = [_frame("a", 22, cross=0.05, power=0.05), _frame("b", 22, cross=0.05, power=0.05)]
    assert calibrate_gate(frames, [22]).tables["h264"] == [[22.0, 0.0]]
    assert calibrate_gate(frames, [22], min_gain_db=0.0).tables["h264"] == [[22.0, 1.0]]


def test_near_lossless_frames_pass_through_whatever_the_table_says():
    gate = QualityGate(tables={"h264": [[12, 0.5], [37, 1.0]]}, near_lossless_qp=20)
    assert gate.alpha(19.5, "h264") == 0.0 and gate.alpha(20, "h264") == 0.5
    assert QualityGate.from_dict(gate.to_dict()) == gate


def test_calibration_leaves_near_lossless_frames_out_of_the_tables_not_out_of_blind():
    # clip b's QP 19 frame loses at any strength, but the gate passes it through anyway:
    # it must not veto the strength its QP bin's other frames (QP 20+) earn
    frames = [_frame("a", 20, cross=1.0, power=1.0), _frame("b", 21, cross=1.0, power=1.0),
              _frame("b", 19, cross=-0.5, power=1.0)]
    gate = calibrate_gate(frames, [18], min_gain_db=0.0, near_lossless_qp=20)
    assert gate.tables["h264"] == [[18.0, 1.0]] and gate.near_lossless_qp == 20
    assert gate.alpha(19, "h264") == 0.0 and gate.alpha(21, "h264") == 1.0
    assert gate.blind == 0.0  # a stream of unknown QP may be that near-lossless one
    assert calibrate_gate(frames, [18], min_gain_db=0.0).tables["h264"] == [[18.0, 0.0]]


def test_calibration_counts_two_clips_of_the_same_name_in_different_folders(make_video, tmp_path):
    """Two clip sets side by side (each with a clip_0000) are both calibrated on, by path."""
    from vidlab.enhance.calibrate import calibration_clips

    for folder in ("both/camera", "both/photos", "one/camera"):
        (tmp_path / folder).mkdir(parents=True)
    make_video("both/camera/clip_0000.mp4", num_frames=8, seed=1)
    make_video("both/photos/clip_0000.mp4", num_frames=8, seed=2)
    clips = calibration_clips(tmp_path / "both", num_clips=5, num_frames=6)
    assert sorted(clips) == ["camera/clip_0000", "photos/clip_0000"]
    assert not np.array_equal(clips["camera/clip_0000"], clips["photos/clip_0000"])
    make_video("one/camera/clip_0000.mp4", num_frames=8, seed=1)
    one = calibration_clips(tmp_path / "one", num_clips=5, num_frames=6)
    assert list(one) == ["clip_0000"]  # one class folder: the names are the stems, as before
