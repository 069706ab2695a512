"""`index build`: predict's windows, stored per window; incremental, resumable, bad files skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tests.serve.helpers import pattern_video

from vidlab.errors import LibraryError
from vidlab.library.build import build_index
from vidlab.library.index import open_index


def build(root, bundle, out, **kw):
    kw.setdefault("workers", 1)
    return build_index(root, bundle, out, window=1.0, stride=0.5, **kw)


def test_index_windows_are_predicts_timeline_with_its_probabilities(small_library, tiny_bundle,
                                                                    tmp_path):
    from vidlab.serve.predict import Predictor

    report = build(small_library, tiny_bundle, tmp_path / "x.vlx")
    assert sorted(report.added) == ["a.mp4", "b.mp4", "trips/c.mp4", "trips/d.mp4"]
    lib = open_index(tmp_path / "x.vlx")
    predicted = Predictor(tiny_bundle, runtime="torch").predict_file(
        small_library / "trips/d.mp4", top_k=3, window=1.0, stride=0.5)
    video = lib.db.video("trips/d.mp4")
    windows = lib.db.windows_of(video["id"])
    assert len(windows) == len(predicted["windows"]) > 2
    for w, p in zip(windows, predicted["windows"], strict=True):
        assert (w.start, w.end) == (p["start"], p["end"])
        assert lib.labels[w.label] == p["top"][0]["label"]
        assert w.prob == pytest.approx(p["top"][0]["prob"], abs=1e-5)
        top = lib.db.top_of(w.id)[:3]  # the index keeps 5, predict was asked for 3
        assert [lib.labels[k] for k, _ in top] == [t["label"] for t in p["top"]]
    # the timeline spans tile the video from 0 to its end
    assert windows[0].span_start == 0 and windows[-1].span_end == pytest.approx(video["duration"])
    assert all(a.span_end == b.span_start for a, b in zip(windows, windows[1:], strict=False))
    emb = lib.db.embeddings([w.id for w in windows])
    assert emb.shape == (len(windows), lib.db.meta("dim")) and lib.db.meta("dim") > 3
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert lib.db.meta("embedding") == "forward_features"


def test_second_build_indexes_only_new_and_changed_files_and_drops_deleted(small_library,
                                                                         tiny_bundle, tmp_path):
    out = tmp_path / "x.vlx"
    build(small_library, tiny_bundle, out)
    lib = open_index(out)
    before = {rel: v["id"] for rel, v in lib.db.videos().items()}

    pattern_video(small_library / "a.mp4", num_frames=50, seed=9)  # new content
    (small_library / "b.mp4").unlink()
    os.replace(small_library / "trips/c.mp4", small_library / "c-renamed.mp4")
    pattern_video(small_library / "e.mp4", num_frames=30, seed=5)
    os.utime(small_library / "trips/d.mp4")  # touched, same content
    report = build(small_library, tiny_bundle, out)

    assert report.added == ["e.mp4"] and report.updated == ["a.mp4"]
    assert report.removed == ["b.mp4"]
    assert report.moved == [{"from": "trips/c.mp4", "to": "c-renamed.mp4"}]
    assert report.unchanged == 1  # d.mp4: the hash matched, nothing decoded
    videos = lib.db.videos()
    assert sorted(videos) == ["a.mp4", "c-renamed.mp4", "e.mp4", "trips/d.mp4"]
    assert videos["trips/d.mp4"]["id"] == before["trips/d.mp4"]
    assert videos["c-renamed.mp4"]["id"] == before["trips/c.mp4"]  # windows moved, not redone
    # the vector index follows: as many vectors as windows, none of the removed ones
    assert report.vectors["count"] == lib.db.window_count() and not report.vectors["rebuilt"]
    live = {w.id for v in videos.values() for w in lib.db.windows_of(v["id"])}
    ids, _ = lib.vectors.search(lib.db.embeddings([min(live)])[0], lib.db.window_count())
    assert set(ids.tolist()) == live

    third = build(small_library, tiny_bundle, out)
    assert (third.added, third.updated, third.removed, third.unchanged) == ([], [], [], 4)


def test_an_interrupted_build_resumes_where_it_stopped(small_library, tiny_bundle, tmp_path):
    out = tmp_path / "x.vlx"
    done = []

    def stop_after_two(rel, result):
        done.append(rel)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build(small_library, tiny_bundle, out, on_file=stop_after_two)
    assert sorted(open_index(out).db.videos()) == sorted(done)
    report = build(small_library, tiny_bundle, out)
    assert sorted(report.added) == sorted({"a.mp4", "b.mp4", "trips/c.mp4", "trips/d.mp4"}
                                          - set(done))
    assert report.unchanged == 2 and report.vectors["count"] == report.windows


def test_bad_files_are_reported_skipped_and_not_retried_until_they_change(small_library,
                                                                        tiny_bundle, tmp_path):
    (small_library / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    (small_library / "empty.mkv").write_bytes(b"")
    truncated = small_library / "truncated.mp4"
    data = (small_library / "a.mp4").read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    report = build(small_library, tiny_bundle, tmp_path / "x.vlx")
    failed = {os.path.basename(f["path"]): f["error"] for f in report.failed}
    assert {"broken.mp4", "empty.mkv", "truncated.mp4"} <= set(failed)
    assert all(name in failed[name] and "Error" in failed[name] for name in failed)
    assert len(report.added) >= 4 and report.videos == len(report.added)
    again = build(small_library, tiny_bundle, tmp_path / "x.vlx")
    assert again.added == [] and {os.path.basename(f["path"]) for f in again.failed} == set(failed)
    shutil.copy(small_library / "a.mp4", small_library / "broken.mp4")  # repaired
    fixed = build(small_library, tiny_bundle, tmp_path / "x.vlx")
    assert fixed.added == ["broken.mp4"]


def assert_same_windows(first, second) -> None:
    """Two indexes of the same videos hold the same windows, labels and embeddings."""
    one, two = open_index(first), open_index(second)
    for rel, video in one.db.videos().items():
        a = one.db.windows_of(video["id"])
        b = two.db.windows_of(two.db.video(rel)["id"])
        assert [(w.start, w.end, w.label) for w in a] == [(w.start, w.end, w.label) for w in b]
        assert np.allclose(one.db.embeddings([w.id for w in a]),
                           two.db.embeddings([w.id for w in b]), atol=1e-4)


def test_two_worker_processes_store_what_one_process_stores(small_library, tiny_bundle,
                                                          tmp_path):
    build(small_library, tiny_bundle, tmp_path / "one.vlx", workers=1)
    build(small_library, tiny_bundle, tmp_path / "two.vlx", workers=2)
    assert_same_windows(tmp_path / "one.vlx", tmp_path / "two.vlx")


def test_ray_data_stores_what_local_processes_store(small_library, tiny_bundle, tmp_path,
                                                   ray_address):
    from vidlab.data.parallel import Engine

    local = build(small_library, tiny_bundle, tmp_path / "local.vlx", workers=1)
    remote = build(small_library, tiny_bundle, tmp_path / "ray.vlx",
                   engine=Engine("ray", ray_address))
    assert sorted(remote.added) == sorted(local.added) and remote.windows == local.windows
    assert [f["path"] for f in remote.failed] == [f["path"] for f in local.failed]
    assert_same_windows(tmp_path / "local.vlx", tmp_path / "ray.vlx")


def test_an_index_is_only_updated_with_the_model_and_windows_it_was_built_with(
        small_library, tiny_bundle, tmp_path):
    from tests.serve.helpers import make_tiny_bundle

    out = tmp_path / "x.vlx"
    build(small_library, tiny_bundle, out)
    with pytest.raises(LibraryError, match="stride"):
        build_index(small_library, tiny_bundle, out, window=1.0, stride=0.25, workers=1)
    other = make_tiny_bundle(tmp_path / "other.vidlab", labels=("x", "y"))
    with pytest.raises(LibraryError, match="model"):
        build(small_library, other, out)
    with pytest.raises(LibraryError, match="not a library index"):
        open_index(tmp_path)


def test_a_manifest_names_the_library(small_library, tiny_bundle, tmp_path):
    manifest = small_library / "some.jsonl"
    manifest.write_text(json.dumps({"path": "a.mp4"}) + "\n"
                        + json.dumps({"path": str(small_library / "trips/c.mp4")}) + "\n")
    report = build(manifest, tiny_bundle, tmp_path / "m.vlx")
    assert report.root == str(small_library.resolve())
    assert sorted(report.added) == ["a.mp4", "trips/c.mp4"]
    # a folder of the user's other files is not where an index goes (an empty one is)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(LibraryError, match="holds other files"):
        build(manifest, tiny_bundle, mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert build(manifest, tiny_bundle, tmp_path / "empty").added


def test_cli_build_stats_and_errors(small_library, tiny_bundle, tmp_path):
    (small_library / "bad.mp4").write_text("not a video at all")
    out = tmp_path / "x.vlx"
    run = subprocess.run([sys.executable, "-m", "vidlab", "index", "build", str(small_library),
                          "--bundle", str(tiny_bundle), "-o", str(out), "--window", "1",
                          "--stride", "0.5", "--workers", "1", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 1  # a file failed; the others are indexed
    report = json.loads(run.stdout)
    assert len(report["added"]) == 4 and report["failed"][0]["path"].endswith("bad.mp4")
    assert "error: VideoOpenError:" in run.stderr and "bad.mp4" in run.stderr
    stats = subprocess.run([sys.executable, "-m", "vidlab", "index", "stats", str(out), "--json"],
                           capture_output=True, text=True, timeout=600, check=True)
    data = json.loads(stats.stdout)
    assert data["videos"] == 4 and data["windows"] == report["windows"]
    assert sum(data["labels"].values()) == data["windows"]
    assert data["hours"] == pytest.approx(report["hours"]) and data["failed"] == 1
    missing = subprocess.run([sys.executable, "-m", "vidlab", "index", "stats",
                              str(tmp_path / "nope.vlx")], capture_output=True, text=True,
                             timeout=600)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: LibraryError:") and "nope.vlx" in missing.stderr
