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

    def all_entries(self) -> list[dict[str, Any]]:
        return [*self.train, *self.val, *self.test]


def prepare_data(source: str | Path, val: float = 0.15, test: float = 0.15, seed: int = 0,
                 clean: bool = True, labels: list[str] | None = None,
                 say: Callable[[str], None] | None = None) -> PreparedData:
    """Entries of a folder (scanned → cleaned → split) or a manifest (split if it has none)."""
    from vidlab.data.manifest import labels_of, load_entries

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
    entries = load_entries(path, progress=False)
    if not entries:
        raise DatasetError("holds no readable clips", path)
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
    names = labels_of(entries, labels)
    parts = {s: [e for e in entries if e.get("split", "train") == s] for s in ("train", "val", "test")}
    if not parts["train"]:
        raise DatasetError("no training clips (every entry has a split other than train)", path)
    note(f"{len(names)} classes; {len(parts['train'])} train / {len(parts['val'])} val / "
         f"{len(parts['test'])} test clips")
    return PreparedData(parts["train"], parts["val"], parts["test"], names, notes)

