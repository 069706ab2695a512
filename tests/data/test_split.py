"""Splits are stratified, deterministic and never put one group on both sides."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from vidlab.data.manifest import group_from_name
from vidlab.data.split import split, split_counts
from vidlab.errors import DatasetError


def ucf_entries(classes=("ApplyEyeMakeup", "Basketball", "YoYo"), groups=25, clips=(4, 7)):
    out = []
    for c in classes:
        for g in range(1, groups + 1):
            for k in range(1, clips[g % 2] + 1):
                out.append({"path": f"/ucf/{c}/v_{c}_g{g:02d}_c{k:02d}.avi", "label": c})
    return out


def test_ucf101_group_is_parsed_from_the_file_name():
    assert group_from_name("/x/v_ApplyEyeMakeup_g08_c01.avi") == "ApplyEyeMakeup_g08"
    assert group_from_name("v_Apply_Eye_g8_c3.mp4") == "Apply_Eye_g08"
    assert group_from_name("/x/clip_001.mp4") is None


def test_groups_never_straddle_splits():
    out = split(ucf_entries(), val=0.15, test=0.15, seed=3)
    where = defaultdict(set)
    for e in out:
        where[group_from_name(e["path"])].add(e["split"])
    assert all(len(s) == 1 for s in where.values())
    assert {e["split"] for e in out} == {"train", "val", "test"}


def test_explicit_group_field_wins_over_names():
    entries = [{"path": f"/d/a/{i}.mp4", "label": "a", "group": f"src{i // 5}"} for i in range(40)]
    out = split(entries, 0.2, 0.2, seed=0)
    for g in {e["group"] for e in out}:
        assert len({e["split"] for e in out if e["group"] == g}) == 1


def test_split_is_stratified_by_label():
    entries = [{"path": f"/d/{c}/{i}.mp4", "label": c} for c, n in (("big", 200), ("small", 20))
               for i in range(n)]
    counts = split_counts(split(entries, val=0.15, test=0.15, seed=1))["per_label"]
    assert counts["big"] == {"train": 140, "val": 30, "test": 30}
    assert counts["small"] == {"train": 14, "val": 3, "test": 3}


def test_same_seed_same_split_and_other_seed_differs():
    a = split(ucf_entries(), seed=7)
    b = split(list(reversed(ucf_entries())), seed=7)
    c = split(ucf_entries(), seed=8)
    key = {e["path"]: e["split"] for e in a}
    assert key == {e["path"]: e["split"] for e in b}  # order of input does not matter
    assert key != {e["path"]: e["split"] for e in c}


def test_tiny_classes_still_get_a_val_and_test_clip():
    entries = [{"path": f"/d/{c}/{i}.mp4", "label": c} for c in "abc" for i in range(3)]
    per = split_counts(split(entries, 0.15, 0.15))["per_label"]
    assert all(v == {"train": 1, "val": 1, "test": 1} for v in per.values())


def test_share_of_groups_is_close_to_target():
    out = split(ucf_entries(groups=40), val=0.2, test=0.1, seed=0)
    c = Counter(e["split"] for e in out)
    n = len(out)
    assert abs(c["val"] / n - 0.2) < 0.04 and abs(c["test"] / n - 0.1) < 0.04


def test_bad_fractions_are_rejected():
    with pytest.raises(DatasetError):
        split(ucf_entries(), val=0.6, test=0.5)
