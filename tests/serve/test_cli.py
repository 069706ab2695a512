"""`vidlab predict` and `vidlab serve` as a user runs them (the CLI entry point, exit codes, and
`vidlab serve` as a real subprocess)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from tests.serve.helpers import colour_video, upload, wait_ready

from vidlab.serve.log import read_log


def test_predict_reports_a_bad_file_in_one_line_and_still_predicts_the_others(
        colour_bundle, tmp_path, capsys):
    from vidlab.cli import main

    red = colour_video(tmp_path / "red.mp4", ["red"], 1.0)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    rgb = colour_video(tmp_path / "rgb.mkv", ["red", "green", "blue"], 2.0)
    args = [colour_bundle, red, tmp_path / "broken.mp4", tmp_path / "missing.mp4", rgb,
            "--window", "1", "--stride", "1", "--top-k", "2", "--json"]
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", *map(str, args)])
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    errors = err.strip().splitlines()
    assert len(errors) == 2 and "broken.mp4" in errors[0] and "missing.mp4" in errors[1]
    results = json.loads(out)
    assert [x["path"] for x in results] == [str(red), str(rgb)]
    assert results[0]["top"][0]["label"] == "red" and len(results[0]["top"]) == 2
    assert results[0]["windows"] == []
    timeline = [(w["start"], w["end"], w["top"][0]["label"]) for w in results[1]["windows"]]
    assert timeline == [(0.0, 1.0, "red"), (1.0, 2.0, "red"), (2.0, 3.0, "green"),
                        (3.0, 4.0, "green"), (4.0, 5.0, "blue"), (5.0, 6.0, "blue")]


def test_predict_refuses_a_window_shorter_than_a_frame_in_one_line(colour_bundle, tmp_path,
                                                                   capsys):
    from vidlab.cli import main

    rgb = colour_video(tmp_path / "rgb.mp4", ["red", "green"], 2.0)
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(colour_bundle), str(rgb), "--window", "0.001"])
    assert exit_info.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ConfigError: timeline window 0.001 s is shorter than one frame")


def test_predict_prints_labels_and_timeline_for_people(colour_bundle, tmp_path, capsys):
    from vidlab.cli import main

    rgb = colour_video(tmp_path / "rgb.mp4", ["green", "blue"], 2.0)
    main(["predict", str(colour_bundle), str(rgb), "--window", "2", "--stride", "2"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{rgb}: ") and len(out) == 3
    assert "green" in out[1] and "blue" in out[2]


def test_serve_command_answers_http_and_logs_to_its_database(colour_bundle, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "served.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidlab", "serve", str(colour_bundle), "--port", str(port),
         "--db", str(db), "--max-batch", "4", "--max-wait-ms", "5", "--max-upload-mb", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url, 90)
        video = colour_video(tmp_path / "blue.mp4", ["blue"], 1.0)
        assert upload(url, video).json()["top"][0]["label"] == "blue"
        assert httpx.get(f"{url}/v1/model").json()["limits"]["max_upload_mb"] == 5
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"on http://127.0.0.1:{port}/" in err
    assert [r["top_label"] for r in read_log(db)] == ["blue"]
