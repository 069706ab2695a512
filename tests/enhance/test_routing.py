"""QP routing on real H.264 and HEVC streams: the gate's strength follows the stream's QP,
near-lossless input comes back untouched, and --json says what happened."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from tests.conftest import moving_square_frames

from vidlab.cli import main
from vidlab.enhance import enhance_video
from vidlab.enhance.calibrate import calibrate_bundle
from vidlab.enhance.coded import read_coded
from vidlab.enhance.degrade import CompressionSpec, encode
from vidlab.enhance.gate import QualityGate, load_gate, save_gate
from vidlab.enhance.infer import load_enhancer
from vidlab.enhance.protocol import camera_move, coded, conditions
from vidlab.errors import ConfigError
from vidlab.io import VideoReader


@pytest.fixture()
def gated(bundles, tmp_path):
    """The tiny restore bundle with a known gate: off below QP 25, 0.5 (H.264) / 0.25 (HEVC)
    from QP 38, full strength from 45, blind strength 0.1."""
    path = tmp_path / "gated.vidlab"
    shutil.copytree(bundles["restore"], path)
    save_gate(path, QualityGate(tables={"h264": [[25, 0.0], [38, 0.5], [45, 1.0]],
                                        "hevc": [[25, 0.0], [38, 0.25], [45, 1.0]]}, blind=0.1))
    return path


def _clip(path, codec="h264", qp=40, gop="ld", extra=None):
    frames = moving_square_frames(8, 64, 96, seed=1)
    spec = CompressionSpec(codec=codec, mode="qp", quality=qp, gop=gop)
    encode(frames, spec, path)
    return path


def _frames(path):
    with VideoReader(path) as r:
        return np.stack(list(r.iter_frames()))


def test_h264_frames_are_gated_by_their_decoder_qp_maps(gated, tmp_path):
    src = _clip(tmp_path / "x264.mp4", "h264", qp=40)
    out = enhance_video(gated, src, tmp_path / "out.mp4")
    qp = out["input_qp"]
    assert qp["source"] == "h264 qp map" and qp["min"] >= 37 and qp["max"] == 40
    assert out["input_codec"] == "h264"
    # P frames (QP 40) at 0.5, the I frame (QP 37, x264's ip ratio) at 0
    assert out["model"]["mean_strength"] == pytest.approx(0.5 * 7 / 8, abs=1e-3)
    assert out["model"]["action"] == "enhanced (gated)"


def test_hevc_frames_are_gated_by_the_x265_settings_or_blind_without_them(gated, tmp_path):
    src = _clip(tmp_path / "x265.mp4", "h265", qp=40)
    out = enhance_video(gated, src, tmp_path / "out.mp4")
    assert out["input_codec"] == "hevc"
    assert out["input_qp"] == {"estimate": 40.0, "source": "x265 cqp setting", "min": 40.0,
                               "max": 40.0}
    assert out["model"]["mean_strength"] == pytest.approx(0.25)
    # the same stream without x265's settings SEI: QP unknown, the blind strength
    frames = moving_square_frames(8, 64, 96, seed=1)
    import av

    bare = tmp_path / "bare.mp4"
    with av.open(str(bare), "w") as c:
        s = c.add_stream("libx265", rate=25)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.options = {"x265-params": "qp=40:info=0:log-level=none"}
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode())
    out = enhance_video(gated, bare, tmp_path / "out2.mp4")
    assert out["input_qp"]["source"] == "unknown" and out["input_qp"]["estimate"] is None
    assert out["model"]["mean_strength"] == pytest.approx(0.1)


def test_near_lossless_input_is_passed_through_unchanged_with_a_message(gated, tmp_path,
                                                                        capsys):
    clean = tmp_path / "clean.mp4"
    encode(moving_square_frames(8, 64, 96, seed=2), CompressionSpec("h264", "qp", 0), clean)
    src = _clip(tmp_path / "mild.mp4", "h264", qp=16)
    main(["enhance", str(gated), str(src), str(tmp_path / "out.mp4"), "--reference", str(clean),
          "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["action"] == "passed through"
    assert "passed through" in out["model"]["message"] and "QP" in out["model"]["message"]
    assert out["model"]["frames_enhanced"] == 0 and out["frames"] == 8
    np.testing.assert_array_equal(_frames(tmp_path / "out.mp4"), _frames(src))
    measured = out["measured"]
    assert abs(measured["psnr_gain_db"]) <= 0.05 and measured["baseline"] == "input"


def test_the_pass_through_path_checks_its_output_and_reference_like_the_encode_path(gated,
                                                                                  tmp_path):
    """A near-lossless input is copied, not encoded; its output gets the same checks, and a
    bad `--reference` fails before any output is written."""
    from vidlab.errors import OutputExistsError, VideoOpenError, VideoWriteError

    src = _clip(tmp_path / "mild.mp4", "h264", qp=16)
    with pytest.raises(VideoWriteError, match="input file"):
        enhance_video(gated, src, src, overwrite=True)
    with pytest.raises(VideoWriteError, match="parent directory"):
        enhance_video(gated, src, tmp_path / "nodir" / "out.mp4")
    with pytest.raises(VideoWriteError, match="this file name"):
        enhance_video(gated, src, tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoOpenError):
        enhance_video(gated, src, out, reference=tmp_path / "missing.mp4")
    assert not out.exists()
    small = tmp_path / "small.mp4"
    encode(moving_square_frames(8, 32, 48, seed=1), CompressionSpec("h264", "qp", 16), small)
    with pytest.raises(Exception, match="size|shape|frames"):  # a reference of another size
        enhance_video(gated, src, out, reference=small)
    assert not out.exists()  # removed: a corrected re-run is not blocked by it
    enhance_video(gated, src, out)
    with pytest.raises(OutputExistsError):
        enhance_video(gated, src, out)


def test_no_gate_runs_full_strength(gated, tmp_path):
    src = _clip(tmp_path / "mild.mp4", "h264", qp=16)
    out = enhance_video(gated, src, tmp_path / "out.mp4", gate=False)
    assert out["model"]["mean_strength"] == 1.0 and not out["model"]["gated"]


def test_protocol_clips_carry_their_qp_through_a_real_decoder(tmp_path):
    photo = (np.random.default_rng(0).random((300, 400, 3)) * 255).astype(np.uint8)
    clip = camera_move(photo, 4, "pan", size=(64, 96))
    assert clip.shape == (4, 64, 96, 3) and not np.array_equal(clip[0], clip[-1])
    conds = conditions(qps=(30,))
    assert [c.label for c in conds] == ["x264 QP30 LD", "x264 QP30 RA", "x265 QP30 LD",
                                        "x265 QP30 RA"]
    h264, hevc = coded(clip, conds[0]), coded(clip, conds[2])
    assert h264.qp_source == "h264 qp map" and h264.qps[1] == 30.0
    assert hevc.qp_source == "x265 cqp setting" and hevc.qps == [30.0] * 4
    assert h264.frames.shape == clip.shape


def test_calibration_writes_a_gate_that_harms_no_calibration_clip(bundles, clean_root,
                                                                   tmp_path):
    bundle = tmp_path / "cal.vidlab"
    shutil.copytree(bundles["restore"], bundle)
    result = calibrate_bundle(bundle, clean_root, num_clips=1, num_frames=4, qps=(20, 40),
                              gops=("ld",))
    gate = load_gate(bundle)
    assert gate is not None and set(gate.tables) == {"h264"}  # 48x64 clips: too small for x265
    assert [q for q, _ in gate.tables["h264"]] == [20.0, 40.0]
    assert all(row["gated_worst"] >= -1e-6 for row in result["gain_db"].values())
    assert read_coded  # the benchmark and calibration decode through the same function


def test_calibration_with_lowcut_records_it_in_the_bundle(bundles, clean_root, tmp_path):
    bundle = tmp_path / "lowcut.vidlab"
    shutil.copytree(bundles["restore"], bundle)
    calibrate_bundle(bundle, clean_root, num_clips=1, num_frames=4, qps=(40,), gops=("ld",),
                     lowcut=9)
    model, _ = load_enhancer(bundle)
    assert model.lowcut == 9 and load_gate(bundle) is not None
    calibrate_bundle(bundle, clean_root, num_clips=1, num_frames=4, qps=(40,), gops=("ld",),
                     lowcut=0)
    assert load_enhancer(bundle)[0].lowcut == 0
    assert "lowcut" not in json.loads((bundle / "config.json").read_text())["model"]["kwargs"]
    with pytest.raises(ConfigError, match="odd"):
        calibrate_bundle(bundle, clean_root, num_clips=1, num_frames=4, qps=(40,), lowcut=4)
    with pytest.raises(ConfigError, match="headroom"):
        calibrate_bundle(bundle, clean_root, num_clips=1, num_frames=4, qps=(40,), headroom=-1)


def test_a_gate_refit_from_saved_measurements_pools_sets_and_refuses_other_weights(
        bundles, clean_root, tmp_path, capsys):
    """`--save-frames` then `--from-frames`: a gate from several measured clip sets without
    running the model again, only for the weights (and low-cut) it was measured on."""
    bundle = tmp_path / "refit.vidlab"
    shutil.copytree(bundles["restore"], bundle)
    args = ["enhance", "calibrate", str(bundle), "--data", str(clean_root), "--clips", "1",
            "--frames", "4", "--qps", "40", "--lowcut", "9", "--dry-run"]
    for name in ("a", "b"):  # the same clip twice: two sets whose clips share a name
        main([*args, "--save-frames", str(tmp_path / f"{name}.json"), "--json"])
    capsys.readouterr()
    assert load_gate(bundle) is None and load_enhancer(bundle)[0].lowcut == 0  # dry runs
    main(["enhance", "calibrate", str(bundle), "--from-frames", str(tmp_path / "a.json"),
          "--from-frames", str(tmp_path / "b.json"), "--qps", "40", "--json"])
    result = json.loads(capsys.readouterr().out)
    gate = load_gate(bundle)
    assert gate is not None and gate.info["clips"] == 2 * result_clips(tmp_path / "a.json")
    assert [m["clips"] for m in gate.info["measurements"]] == [1, 1]
    assert [m["file"] for m in gate.info["measurements"]] == ["a.json", "b.json"]  # no paths
    assert gate.info["measurements"][0]["sha256"] == hashlib.sha256(
        (tmp_path / "a.json").read_bytes()).hexdigest()
    assert gate.info["headroom"] == 0.5 and load_enhancer(bundle)[0].lowcut == 9
    assert all(row["gated_worst"] >= -1e-6 for row in result["gain_db"].values())

    dry = json.loads((tmp_path / "a.json").read_text())
    main(["enhance", "calibrate", str(bundle), "--from-frames", str(tmp_path / "a.json")])
    refit = load_gate(bundle)  # one file: exactly the gate the dry run measured
    assert refit.tables == calibrate_bundle(bundle, clean_root, num_clips=1, num_frames=4,
                                            qps=(40,), lowcut=9, write=False)["gate"]["tables"]
    capsys.readouterr()

    (tmp_path / "list.json").write_text(json.dumps(dry["frames"]))  # a pre-hash file

    def variant(name, **change):
        (tmp_path / name).write_text(json.dumps({**dry, **change}))
        return ["--from-frames", str(tmp_path / name)]

    for args, message in ((variant("other.json", weights_sha256="0" * 64), "other weights"),
                          (variant("old.json") + ["--qps", "30,40"], "at QPs [40]"),
                          (["--from-frames", str(tmp_path / "a.json"),
                            *variant("cut.json", lowcut=0)], "different lowcut"),
                          (variant("empty.json", frames=[]), "no frames"),
                          (["--from-frames", str(tmp_path / "list.json")], "measure again"),
                          ([], "either --data")):
        with pytest.raises(SystemExit):
            main(["enhance", "calibrate", str(bundle), *args])
        assert message in capsys.readouterr().err


def result_clips(path) -> int:
    """Clip × encoding keys in a saved measurement."""
    return len({f["clip"] for f in json.loads(path.read_text())["frames"]})
