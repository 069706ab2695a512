"""Turn `--data ROOT_OR_MANIFEST` into train/val/test entries, scanning, cleaning and splitting
on the fly when needed (and saying so), so `vidlab train --data FOLDER` just works."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidlab.errors import DatasetError

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]
    labels: list[str]
    notes: list[str] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    """Entries whose file could not be used (`path`, `label`, `reason`); not in any split."""

    def all_entries(self) -> list[dict[str, Any]]:
        return [*self.train, *self.val, *self.test]


def prepare_data(source: str | Path, val: float = 0.15, test: float = 0.15, seed: int = 0,
                 clean: bool = True, labels: list[str] | None = None,
                 say: Callable[[str], None] | None = None) -> PreparedData:
    """Entries of a folder (scanned → cleaned → split) or a manifest (probed, split if it has
    none). Every file is probed first: unusable ones are excluded and listed (`excluded`), so
    counts and statistics are of clips that load. Raises `DatasetError` when a class is left
    with no training clip."""
    from vidlab.data.manifest import check_entries, labels_of, read_manifest, scan

    say = say or log.info
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
