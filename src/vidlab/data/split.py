"""Train/val/test splits: stratified by label, deterministic per seed, and group-aware.

Clips sharing a group (the entry's `group`, else a UCF101-style `v_<Class>_gNN_cMM` name, else
the clip alone) always land in the same split, so clips cut from one source video never leak
between training and testing. Groups are assigned whole, per label, to whichever split is
furthest below its target share, in a seeded random order; a class too small for every split
keeps a training clip first (then val, then test), with a warning naming it.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from vidlab.data.manifest import group_from_name
from vidlab.errors import DatasetError

SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


def group_of(entry: dict[str, Any]) -> str:
    """The entry's group key (given, parsed from a UCF101-style name, or its own path)."""
    return str(entry.get("group") or group_from_name(entry["path"]) or entry["path"])


def split(entries: list[dict[str, Any]], val: float = 0.15, test: float = 0.15,
          seed: int = 0) -> list[dict[str, Any]]:
    """Copies of `entries` (same order) with `split` set to train/val/test."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise DatasetError(f"val ({val}) and test ({test}) must be fractions from 0 to below 1, "
                           "summing to below 1")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entries):
        groups[group_of(e)].append(i)
    by_label: dict[str, list[str]] = defaultdict(list)
    for key in sorted(groups):
        # A group whose clips carry several labels is stratified by its most common label.
        labels = Counter(str(entries[i]["label"]) for i in groups[key])
        by_label[max(sorted(labels), key=labels.__getitem__)].append(key)
    share = {"train": 1 - val - test, "val": val, "test": test}
    assigned: dict[str, str] = {}
    for label in sorted(by_label):
        keys = by_label[label]
        rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
        order = [keys[k] for k in rng.permutation(len(keys))]
        total = sum(len(groups[k]) for k in keys)
        filled = dict.fromkeys(SPLITS, 0)
        for key in order:
            # Fill val and test first (ties go to the rarer split) so small classes get some.
            target = max(("test", "val", "train"),
                         key=lambda s: (share[s] * total - filled[s]) / max(share[s], 1e-9)
                         if share[s] > 0 else -np.inf)
            assigned[key] = target
            filled[target] += len(groups[key])
        _keep_training_groups(order, assigned, share)
    _warn_unevaluated(entries, assigned, share)
    out = []
    for e in entries:
        row = dict(e)
        row["split"] = assigned[group_of(e)]
        out.append(row)
    return out


def _keep_training_groups(order: list[str], assigned: dict[str, str],
                          share: dict[str, float]) -> None:
    """Give a class with few groups train first, then val, then test.

    The rule above fills val and test first so that small classes are evaluated at all; a
    class of one or two groups would then have nothing to train on. Moves the last group
    placed in a lower-priority split up to an empty higher one (test → train, val → train,
    test → val).
    """
    placed = {s: [k for k in order if assigned[k] == s] for s in SPLITS}
    for needed, donors in (("train", ("test", "val")), ("val", ("test",))):
        if placed[needed] or share[needed] <= 0:
            continue
        donor = next((d for d in donors if placed[d]), None)
        if donor is not None:
            key = placed[donor].pop()
            assigned[key] = needed
            placed[needed].append(key)


def _warn_unevaluated(entries: list[dict[str, Any]], assigned: dict[str, str],
                      share: dict[str, float]) -> None:
    """Say which classes are too small to have a clip in every evaluation split asked for."""
    have: dict[str, set[str]] = defaultdict(set)
    size: Counter[str] = Counter()
    for e in entries:
        have[str(e["label"])].add(assigned[group_of(e)])
        size[str(e["label"])] += 1
    wanted = {s for s in ("val", "test") if share[s] > 0}
    small = [f"{label} ({size[label]} clip{'s' if size[label] != 1 else ''}: no "
             f"{' or '.join(sorted(wanted - have[label], reverse=True))})"
             for label in sorted(have) if wanted - have[label]]
    if small:
        log.warning("too few clips to evaluate %d class(es), kept for training: %s",
                    len(small), ", ".join(small))


def split_counts(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Clip counts per split, overall and per label."""
    per_label: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SPLITS, 0))
    for e in entries:
        per_label[str(e["label"])][e.get("split") or "train"] += 1
    totals = {s: sum(v[s] for v in per_label.values()) for s in SPLITS}
    return {**totals, "per_label": {k: per_label[k] for k in sorted(per_label)}}


def select(entries: list[dict[str, Any]], which: str) -> list[dict[str, Any]]:
    """Entries of one split (entries without a `split` count as train)."""
    return [e for e in entries if (e.get("split") or "train") == which]
