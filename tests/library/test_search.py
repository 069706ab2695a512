"""Searching an index: label segments against the truth, "like" precision, corrections, exports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from tests.library.conftest import STRIDE, WINDOW, true_label

from vidlab.errors import LibraryError
from vidlab.library.export import add_correction, export_corrections, export_segments
from vidlab.library.index import open_index
from vidlab.library.search import search_label, search_like_clip, video_timeline


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidlab", *args], capture_output=True,
                          text=True, timeout=600)


def test_label_search_finds_every_true_segment_within_one_stride(colour_index, long_library):
    root, truth = long_library
    lib = open_index(colour_index)
    for label in ("red", "green", "blue"):
        found = search_label(lib, label)
        assert all(r["label"] == label for r in found)
        expected = [(name, s) for name, segs in truth.items() for s in segs if s["label"] == label]
        assert len(found) == len(expected)  # no segment split in two, no extra segment
        for name, seg in expected:
            match = [r for r in found if r["video"] == name
                     and abs(r["start"] - seg["start"]) <= STRIDE
                     and abs(r["end"] - seg["end"]) <= STRIDE]
            assert len(match) == 1, f"{label} {name} {seg}: {found}"
            assert match[0]["path"] == str(root / name)
            assert 0 < match[0]["score"] <= 1


def test_like_ranks_moments_of_the_same_class_first(colour_index, long_library):
    root, truth = long_library
    lib = open_index(colour_index)
    precisions = []
    for label in ("red", "green", "blue"):
        seg = next(s for s in truth["long_0.mp4"] if s["label"] == label)
        found = search_like_clip(lib, root / "long_0.mp4", seg["start"], seg["end"], top=10,
                                 exclude_self=True)
        assert len(found) == 10
        for r in found:  # the query's own moments are left out
            assert not (r["video"] == "long_0.mp4" and r["end"] > seg["start"]
                        and r["start"] < seg["end"])
        scores = [r["score"] for r in found]
        assert scores == sorted(scores, reverse=True)
        hits = [true_label(truth[r["video"]], (r["start"] + r["end"]) / 2) == label
                for r in found]
        precisions.append(np.mean(hits))
    chance = 1 / 3
    assert np.mean(precisions) >= 0.9 > 2 * chance  # measured: 1.0 on every class


def test_like_with_a_clip_outside_the_library_runs_the_model(colour_index, long_library,
                                                            tmp_path):
    from tests.serve.helpers import colour_video

    _, truth = long_library
    outside = colour_video(tmp_path / "query.mp4", ["green", "green"], 1.0, fps=10, seed=42)
    found = search_like_clip(open_index(colour_index), outside, top=10)
    assert sum(true_label(truth[r["video"]], (r["start"] + r["end"]) / 2) == "green"
               for r in found) >= 9


def test_search_cli_json_has_the_contract_keys(colour_index, long_library):
    root, _ = long_library
    run = cli("index", "search", str(colour_index), "--label", "blue", "--top", "3", "--json")
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert len(rows) == 3 and all(set(r) == {"path", "start", "end", "score", "label"}
                                  for r in rows)
    like = cli("index", "search", str(colour_index), "--like", str(root / "long_1.mp4"),
               "--start", "0", "--end", "2", "--exclude-self", "--top", "4", "--json")
    assert like.returncode == 0, like.stderr
    assert len(json.loads(like.stdout)) == 4
    bad = cli("index", "search", str(colour_index), "--label", "purple")
    assert bad.returncode == 1 and "unknown label 'purple'" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_corrections_win_over_the_model_and_export_as_a_manifest(colour_index, long_library,
                                                                 tmp_path):
    import shutil

    root, truth = long_library
    index = tmp_path / "copy.vlx"
    shutil.copytree(colour_index, index)  # the session's index stays untouched
    lib = open_index(index)
    seg = next(s for s in truth["long_2.mp4"] if s["label"] == "red")
    record = add_correction(lib, "long_2.mp4", seg["start"], seg["end"], "crimson", "ann")
    assert (record["old"], record["new"], record["who"]) == ("red", "crimson", "ann")
    assert record["when"].endswith("+00:00")
    crimson = search_label(lib, "red") + [{"video": "x"}]
    assert not any(r["video"] == "long_2.mp4" and abs(r["start"] - seg["start"]) <= STRIDE
                   for r in crimson)
    timeline = video_timeline(lib, "long_2.mp4")
    assert {"label": "crimson"}.items() <= next(
        s for s in timeline["segments"] if abs(s["start"] - seg["start"]) <= STRIDE).items()
    with pytest.raises(LibraryError, match="not an indexed video"):
        add_correction(lib, "../outside.mp4", 0, 1, "red", "ann")
    with pytest.raises(LibraryError, match="characters"):
        add_correction(lib, "long_2.mp4", 0, 1, "x" * 500, "ann")

    run = cli("index", "corrections", str(index), "-o", str(tmp_path / "fixes.jsonl"), "--json")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in (tmp_path / "fixes.jsonl").read_text().splitlines()]
    assert rows == [{"path": str(root / "long_2.mp4"), "label": "crimson",
                     "start": seg["start"], "end": seg["end"], "old_label": "red",
                     "who": "ann", "when": record["when"], "source": "correction"}]
    again = cli("index", "corrections", str(index), "-o", str(tmp_path / "fixes.jsonl"))
    assert again.returncode == 1 and "exists" in again.stderr  # never overwritten unasked


def test_export_writes_the_found_segments_as_a_manifest(colour_index, long_library, tmp_path):
    lib = open_index(colour_index)
    summary = export_segments(lib, "green", tmp_path / "green.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "green.jsonl").read_text().splitlines()]
    assert summary["segments"] == len(rows) == len(search_label(lib, "green"))
    assert all(r["label"] == "green" and r["end"] > r["start"] and r["path"].endswith(".mp4")
               for r in rows)
    assert summary["seconds"] == pytest.approx(sum(r["end"] - r["start"] for r in rows))
    assert export_corrections(lib, tmp_path / "none.jsonl")["corrections"] == 0


def test_one_odd_window_does_not_split_a_segment_nor_hide_a_short_moment(colour_bundle,
                                                                          tmp_path):
    """A 0.6 s green moment inside red (shorter than the 1 s window: one window calls it
    green): `--label red` reports red whole across it (one stride of bridging), `--label green`
    still finds it; `--bridge 0` splits red there, and so does a human correction."""
    from tests.serve.helpers import colour_video

    from vidlab.library.build import build_index

    root = tmp_path / "videos"
    root.mkdir()
    # 0.2 s pieces (2 frames at 10 fps): red 0–3.4 s, green 3.4–4.0 s, red 4.0–7.4 s, blue on.
    colour_video(root / "a.mp4", ["red"] * 17 + ["green"] * 3 + ["red"] * 17 + ["blue"] * 16,
                 0.2, fps=10)
    index = tmp_path / "short.vlx"
    build_index(root, colour_bundle, index, window=WINDOW, stride=STRIDE, workers=1)
    lib = open_index(index)

    def near(r: dict, start: float, end: float) -> bool:
        return abs(r["start"] - start) <= STRIDE and abs(r["end"] - end) <= STRIDE

    red = search_label(lib, "red")
    assert len(red) == 1 and near(red[0], 0.0, 7.4), red
    green = search_label(lib, "green")
    assert len(green) == 1 and near(green[0], 3.4, 4.0), green
    assert green[0]["end"] - green[0]["start"] <= STRIDE + 1e-6  # one window, still found
    split = search_label(lib, "red", bridge=0)
    assert len(split) == 2 and [r["end"] for r in sorted(split, key=lambda r: r["start"])][0] \
        == green[0]["start"], split
    with pytest.raises(LibraryError, match="bridge"):
        search_label(lib, "red", bridge=-1)
    run = cli("index", "search", str(index), "--label", "red", "--bridge", "0", "--json")
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)) == 2
    assert export_segments(lib, "red", tmp_path / "red.jsonl")["segments"] == 1
    assert export_segments(lib, "red", tmp_path / "raw.jsonl", bridge=0)["segments"] == 2
    add_correction(lib, "a.mp4", green[0]["start"], green[0]["end"], "green", "ann")
    assert len(search_label(lib, "red")) == 2  # a human said so: never bridged
