"""`vidlab transcode MANIFEST_OR_FOLDER OUT`: every file re-encoded into the same layout with a
manifest of the outputs; a bad file is a row of the report; a rerun keeps finished outputs."""

from __future__ import annotations

import json
import subprocess
import sys

from data_helpers import distinct_frames, write

from vidlab.data.manifest import read_manifest
from vidlab.data.transcoding import TranscodeSpec, transcode_manifest
from vidlab.io import probe


def test_transcode_a_folder_keeps_the_layout_and_reports_failures(tmp_path):
    root = tmp_path / "ds"
    for i in range(2):
        write(root / "left" / f"l{i}.mp4", distinct_frames(i, 12))
        write(root / "right" / f"r{i}.mp4", distinct_frames(10 + i, 12))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "vidlab", "transcode", str(root), str(out), "--size", "32",
           "--gop", "4", "--workers", "2", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["files"] == summary["transcoded"] == 4 and not summary["failures"]
    entries = read_manifest(out / "manifest.jsonl")
    assert sorted((e["label"], e["path"]) for e in entries) == sorted(
        (p.parent.name, str(p)) for p in out.glob("*/*.mp4"))
    assert all(min(probe(e["path"]).width, probe(e["path"]).height) == 32 for e in entries)
    assert {e["source"] for e in entries} == {str(p) for p in root.glob("*/*.mp4")}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "overwrite" in again.stderr

    (root / "right" / "broken.mp4").write_text("not a video\n" * 20)  # a new, bad file
    kept = {p: p.stat().st_mtime_ns for p in out.glob("*/*.mp4")}
    result = transcode_manifest(root, out, TranscodeSpec(size=32, gop=4), workers=2,
                                overwrite=True, progress=False)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished outputs are kept
    assert result["transcoded"] == 4 and [f["label"] for f in result["failures"]] == ["right"]
