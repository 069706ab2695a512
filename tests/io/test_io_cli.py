"""The io verbs: JSON contracts, one-line errors, non-zero exits, no overwriting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def vidlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidlab", *args], capture_output=True,
                          text=True, timeout=120)


def test_probe_json_has_the_contract_keys(clip):
    run = vidlab("probe", "--json", str(clip("vp9.webm")))
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert {"path", "codec", "width", "height", "fps", "num_frames", "duration", "rotation",
            "pix_fmt", "has_audio"} <= set(info)
    assert (info["codec"], info["num_frames"], info["width"]) == ("vp9", 40, 80)


@pytest.mark.parametrize("content,reason", [(b"", "empty file"), (b"hello\n" * 50, "not a video")])
def test_probe_of_a_bad_file_prints_one_line_and_fails(tmp_path, content, reason):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    run = vidlab("probe", str(bad))
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and reason in lines[0]
    assert "Traceback" not in run.stderr


def test_transcode_and_quality_verbs(clip, tmp_path):
    src, dst = clip("h264_single_keyframe.mp4"), tmp_path / "out.mkv"
    run = vidlab("transcode", str(src), str(dst), "--codec", "h265", "--crf", "32", "--size",
                 "40x32", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["output_bytes"] == dst.stat().st_size and result["width"] == 40
    assert result["compression_ratio"] > 0 and result["psnr"] > 20

    again = vidlab("transcode", str(src), str(dst))
    assert again.returncode != 0 and "exists" in again.stderr and "--overwrite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert vidlab("transcode", str(src), str(dst), "--overwrite", "--fps", "5").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"]

    run = vidlab("quality", str(src), str(src), "--json")
    assert run.returncode == 0, run.stderr
    q = json.loads(run.stdout)
    assert q["num_frames"] == 60 and q["psnr"] == 100.0 and len(q["ssim_per_frame"]) == 60
    mismatch = vidlab("quality", str(src), str(dst))
    assert mismatch.returncode != 0 and "QualityMismatchError" in mismatch.stderr
