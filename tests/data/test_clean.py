"""The cleaner reports every kind of bad file with its reason code and keeps the good ones."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from data_helpers import distinct_frames, truncate, write, write_audio_only

from vidlab.data.clean import DEFAULT_DROP, REASONS, clean
from vidlab.data.manifest import scan


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    root = tmp_path_factory.mktemp("dirty")
    good = [write(root / "walk" / f"good{i}.mp4", distinct_frames(i)) for i in range(6)]
    (root / "walk" / "empty.mp4").write_bytes(b"")
    (root / "walk" / "text.mp4").write_text("this is not a video\n" * 20)
    write_audio_only(root / "walk" / "audio.mp4")
    truncate(write(root / "walk" / "truncated.mp4", distinct_frames(20, 48)), 0.5)
    write(root / "walk" / "short.mp4", distinct_frames(21, 6))
    shutil.copy(good[0], root / "walk" / "zz_copy_of_good0.mp4")
    # the same content re-encoded at another quality, filed under a different label
    write(root / "run" / "reencoded.mp4", distinct_frames(1), crf=35)
    write(root / "walk" / "reencoded_same_label.mp4", distinct_frames(2), crf=32)
    write(root / "walk" / "blank.mp4", np.full((24, 96, 128, 3), 90, np.uint8))
    write(root / "walk" / "frozen.mp4", np.repeat(distinct_frames(22, 1), 24, axis=0))
    big = np.repeat(np.repeat(distinct_frames(23), 3, axis=1), 3, axis=2)
    write(root / "walk" / "big.mp4", big)
    write(root / "walk" / "slow.mp4", distinct_frames(24), fps=5)
    scanned = scan(root, workers=2, progress=False)
    # files that cannot even be probed are checked too when a manifest lists them
    entries = scanned.entries + [{"path": f["path"], "label": f["label"]}
                                 for f in scanned.failures]
    result = clean(entries, min_frames=16, workers=2)
    return root, scanned, {f["path"].rsplit("/", 1)[-1]: f for f in result.files}, result


EXPECTED = {
    "empty.mp4": "empty", "text.mp4": "unreadable", "audio.mp4": "no_video_stream",
    "truncated.mp4": "truncated", "short.mp4": "too_short", "zz_copy_of_good0.mp4": "duplicate",
    "blank.mp4": "blank", "frozen.mp4": "frozen", "big.mp4": "resolution_outlier",
    "slow.mp4": "fps_outlier", "reencoded_same_label.mp4": "near_duplicate",
}


@pytest.mark.parametrize("name,code", sorted(EXPECTED.items()))
def test_each_bad_file_gets_its_reason_code(dirty, name, code):
    _, _, files, _ = dirty
    assert code in files[name]["reasons"], files[name]
    assert files[name]["kept"] == (code not in DEFAULT_DROP)


def test_scan_lists_unreadable_files_with_reasons_instead_of_failing(dirty):
    _, scanned, _, _ = dirty
    reasons = {f["path"].rsplit("/", 1)[-1]: f["reason"] for f in scanned.failures}
    assert reasons["empty.mp4"] == "empty"
    assert reasons["text.mp4"] == "unreadable"
    assert reasons["audio.mp4"] == "no_video_stream"
    assert "good0.mp4" not in reasons


def test_near_duplicate_with_a_different_label_is_a_label_conflict(dirty):
    _, _, files, result = dirty
    assert "label_conflict" in files["reencoded.mp4"]["reasons"]
    assert "label_conflict" in files["good1.mp4"]["reasons"]
    assert any({f["label"] for f in group} == {"run", "walk"} for group in result.conflicts)
    assert result.to_dict()["summary"]["label_conflicts"] >= 1


def test_good_clips_are_kept_untouched(dirty):
    root, _, files, result = dirty
    for i in (3, 4, 5):
        assert files[f"good{i}.mp4"] == {**files[f"good{i}.mp4"], "kept": True, "reasons": []}
    kept = {e["path"].rsplit("/", 1)[-1] for e in result.entries}
    assert {"good0.mp4", "good3.mp4", "big.mp4", "slow.mp4"} <= kept
    assert "zz_copy_of_good0.mp4" not in kept and "blank.mp4" not in kept
    assert (root / "walk" / "empty.mp4").exists()  # never deletes anything
    assert set(result.counts()) <= set(REASONS)


def test_similar_looking_clips_of_different_durations_are_not_near_duplicates(tmp_path):
    # the same frames at two lengths: frame hashes agree at the sampled times, durations do not
    frames = distinct_frames(3, 48)
    a = write(tmp_path / "walk" / "long.mp4", frames)
    b = write(tmp_path / "run" / "short.mp4", frames[::2])
    result = clean(scan(tmp_path, workers=1, progress=False).entries, min_frames=16, workers=1)
    assert result.conflicts == []
    assert all(not f["reasons"] for f in result.files), result.files
    same = write(tmp_path / "run" / "same_length.mp4", frames, crf=32)
    result = clean(scan(tmp_path, workers=1, progress=False).entries, min_frames=16, workers=1)
    assert any({f["path"] for f in g} >= {str(a), str(same)} for g in result.conflicts)
    assert str(b) not in {f["path"] for g in result.conflicts for f in g}
