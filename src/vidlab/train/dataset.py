"""Turn `--data ROOT_OR_MANIFEST` into train/val/test entries, scanning, cleaning and splitting
on the fly when needed (and saying so), so `vidlab train --data FOLDER` just works.

`--data SHARDS` (what `vidlab data shard` wrote: its folder or URL, or shard URLs / a brace
pattern) trains by streaming the train shards; the val and test samples, and a preview of the
training samples (for the data statistics and INT8 calibration), are extracted to files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidlab.errors import DatasetError

log = logging.getLogger(__name__)


PREVIEW_SAMPLES = 200
"""Training samples extracted from shards as files: the data statistics' clips (their cap)."""
SHARD_SAMPLES_DIR = "shard_samples"


@dataclass
class TrainShards:
    """The training split of a sharded dataset, streamed (`vidlab.data.stream`)."""

    refs: list[Any]
    """`vidlab.data.shardset.ShardRef`s of the train shards."""
    samples: int
    label_counts: dict[str, int] = field(default_factory=dict)
    dataset_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedData:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]
    labels: list[str]
    notes: list[str] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    """Entries whose file could not be used (`path`, `label`, `reason`); not in any split."""
    shards: TrainShards | None = None
    """Set when training streams from shards; `train` is then a preview of their samples."""

    def all_entries(self) -> list[dict[str, Any]]:
        return [*self.train, *self.val, *self.test]


def prepare_data(source: str | Path, val: float = 0.15, test: float = 0.15, seed: int = 0,
                 clean: bool = True, labels: list[str] | None = None,
                 say: Callable[[str], None] | None = None,
                 work_dir: str | Path | None = None) -> PreparedData:
    """Entries of a folder (scanned → cleaned → split) or a manifest (probed, split if it has
    none), or of shards (`prepare_shards`, extracting into `work_dir`). Every file is probed first: unusable ones are excluded and listed (`excluded`), so
    counts and statistics are of clips that load. Raises `DatasetError` when a class is left
    with no training clip."""
    from vidlab.data.manifest import check_entries, labels_of, read_manifest, scan
    from vidlab.data.shardset import is_shard_source

    say = say or log.info
    if is_shard_source(source):
        return prepare_shards(source, work_dir, labels, say)
    path = Path(source)
    if not path.exists():
        raise DatasetError("no such dataset folder or manifest", path)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        say(msg)

    if path.is_dir():
        note(f"{path}: folder given: scanning class folders")
        scanned = scan(path, progress=False)
        entries = scanned.entries
        excluded = [{"path": f["path"], "label": f["label"],
                     "reason": f"{f['reason']}: {f['detail']}"} for f in scanned.failures]
    else:
        entries, excluded = check_entries(read_manifest(path, probe_missing=False))
    for e in excluded:
        log.warning("%s: excluded, %s", e["path"], e["reason"])
    if excluded:
        note(f"excluded {len(excluded)} unusable entr{'y' if len(excluded) == 1 else 'ies'} "
             "(listed in the run's excluded.jsonl)")
    if not entries:
        raise DatasetError("holds no readable clips", path)
    names = labels_of(entries + excluded, labels)
    if clean and path.is_dir():
        from vidlab.data.clean import clean as clean_entries

        before = len(entries)
        entries = clean_entries(entries).entries
        note(f"cleaned: kept {len(entries)} of {before} clips")
    if not any(e.get("split") for e in entries):
        from vidlab.data.split import split

        entries = split(entries, val=val, test=test, seed=seed)
        note(f"split {len(entries)} clips into train/val/test ({1 - val - test:.0%}/{val:.0%}/"
             f"{test:.0%}, seed {seed}, grouped where groups are known)")
    parts = {s: [e for e in entries if e.get("split", "train") == s] for s in ("train", "val", "test")}
    if not parts["train"]:
        raise DatasetError("no training clips (every entry has a split other than train)", path)
    _require_training_clips(names, parts["train"], entries, excluded, path)
    note(f"{len(names)} classes; {len(parts['train'])} train / {len(parts['val'])} val / "
         f"{len(parts['test'])} test clips")
    return PreparedData(parts["train"], parts["val"], parts["test"], names, notes, excluded)


def _require_training_clips(names: list[str], train: list[dict[str, Any]],
                            entries: list[dict[str, Any]], excluded: list[dict[str, Any]],
                            path: Path) -> None:
    """`DatasetError` naming every class of the dataset that has no training clip left."""
    present = {str(e["label"]) for e in entries} | {str(e["label"]) for e in excluded}
    trained = {str(e["label"]) for e in train}
    missing = [n for n in names if n in present and n not in trained]
    if not missing:
        return

    def why(label: str) -> str:
        bad = sum(str(e["label"]) == label for e in excluded)
        held = sum(str(e["label"]) == label for e in entries)
        return f"{label!r} ({bad} unusable, {held} in val/test)"

    raise DatasetError(f"{len(missing)} class(es) left with no training clip: "
                       + ", ".join(why(n) for n in missing[:5]), path)


def prepare_shards(source: str | Path | list[str], work_dir: str | Path | None = None,
                   labels: list[str] | None = None,
                   say: Callable[[str], None] | None = None) -> PreparedData:
    """A sharded dataset's splits: train streams (`shards`); val, test and a preview of train
    are extracted as files into `work_dir` (default: under the clip cache, per source), kept
    there so a resumed run extracts nothing twice."""
    import hashlib

    from vidlab.data.cache import default_cache_dir
    from vidlab.data.shardset import extract_samples, open_shards

    say = say or log.info
    found = open_shards(source)
    train = found.shards("train")
    if not train:
        raise DatasetError("has no training shards (index.json lists none)", str(source))
    names = list(labels) if labels is not None else found.labels
    unknown = sorted(set(found.labels) - set(names))
    if unknown:
        raise DatasetError(f"labels not in the label list: {', '.join(unknown[:5])}", str(source))
    if work_dir is None:
        digest = hashlib.sha256(str(source).encode()).hexdigest()[:16]
        work_dir = default_cache_dir() / SHARD_SAMPLES_DIR / digest
    work = Path(work_dir)
    parts = {split: extract_samples(found.shards(split), work / split)
             for split in ("val", "test")}
    preview = extract_samples(train, work / "train", limit=PREVIEW_SAMPLES)
    shards = TrainShards(train, found.count("train"), found.label_counts.get("train", {}),
                         found.dataset_info)
    notes = [f"{source}: streaming {shards.samples} training samples from {len(train)} shards; "
             f"{len(parts['val'])} val / {len(parts['test'])} test samples extracted to {work}"]
    say(notes[0])
    return PreparedData(preview, parts["val"], parts["test"], names, notes, shards=shards)
