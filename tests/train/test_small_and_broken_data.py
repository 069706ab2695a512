"""Datasets a careless user brings: tiny classes still train, unusable manifest entries are
excluded and listed (never silently replaced), and statistics count only clips that load."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest
from tests.train.conftest import tiny_config

from vidlab.data.manifest import write_manifest
from vidlab.errors import DatasetError
from vidlab.train import fit
from vidlab.train.dataset import prepare_data


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def two_per_class(tmp_path_factory) -> Path:
    """16 real H.264 clips in 8 classes, 2 per class (the size of a first try)."""
    from vidlab.data.synth import synth

    return synth(tmp_path_factory.mktemp("small") / "ds", per_class=2, seed=1, workers=1)


def test_two_clips_per_class_train_every_class_and_warn_they_cannot_be_tested(
        two_per_class, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vidlab.data.split"):
        result = fit(tiny_config(two_per_class, tmp_path / "run", "train.epochs=1"))
    manifest = _lines(tmp_path / "run" / "manifest.jsonl")
    per_class = Counter((e["label"], e["split"]) for e in manifest)
    labels = {e["label"] for e in manifest}
    assert len(labels) == 8
    assert all(per_class[(label, "train")] == 1 and per_class[(label, "val")] == 1
               for label in labels)
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "too few clips to evaluate 8 class(es)" in warning
    assert all(label in warning for label in labels) and "no test" in warning
    assert result.bundle is not None and (result.bundle / "weights.safetensors").is_file()


@pytest.fixture
def manifest_with_bad_entries(motion_manifest, tmp_path) -> tuple[Path, list[dict]]:
    """The motion manifest plus an entry whose file is gone and one that is a text file, both
    with plausible metadata (as a manifest written before the files changed would have)."""
    entries = _lines(motion_manifest)
    base = motion_manifest.parent
    for e in entries:
        e["path"] = str((base / e["path"]).resolve())
    label = entries[0]["label"]
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are my notes, not a video\n" * 20)
    meta = {k: entries[0][k] for k in ("num_frames", "fps", "width", "height", "codec",
                                       "duration")}
    bad = [{"path": str(tmp_path / "gone.mp4"), "label": label, "split": "train", **meta},
           {"path": str(notes), "label": label, "split": "train", **meta}]
    return write_manifest(entries + bad, tmp_path / "with_bad.jsonl"), entries


def test_unusable_manifest_entries_are_excluded_listed_and_not_counted(
        manifest_with_bad_entries, tmp_path):
    manifest, good = manifest_with_bad_entries
    run = tmp_path / "run"
    fit(tiny_config(manifest, run, "train.epochs=1"))
    excluded = _lines(run / "excluded.jsonl")
    assert sorted(Path(e["path"]).name for e in excluded) == ["gone.mp4", "notes.mp4"]
    assert excluded[0]["reason"].startswith(("missing", "unreadable"))
    kept = _lines(run / "manifest.jsonl")
    assert len(kept) == len(good) and not any("gone" in e["path"] for e in kept)
    train = [e for e in good if e["split"] == "train"]
    stats = json.loads((run / "data_stats.json").read_text())
    assert stats["num_clips"] == len(train)
    assert stats["class_counts"] == {k: sum(e["label"] == k for e in train)
                                     for k in stats["class_counts"]}
    bundle_stats = json.loads((run / "best.vidlab" / "data_stats.json").read_text())
    assert bundle_stats["num_clips"] == len(train)


def test_a_class_whose_training_clips_are_all_unusable_is_an_error(motion_manifest, tmp_path):
    entries = _lines(motion_manifest)
    for e in entries:
        e["path"] = str((motion_manifest.parent / e["path"]).resolve())
    victim = sorted({e["label"] for e in entries})[0]
    for e in entries:
        if e["label"] == victim and e["split"] == "train":
            e["path"] = str(tmp_path / f"deleted_{Path(e['path']).name}")
    manifest = write_manifest(entries, tmp_path / "m.jsonl")
    with pytest.raises(DatasetError, match=f"no training clip: '{victim}' \\(1 unusable"):
        prepare_data(manifest)
