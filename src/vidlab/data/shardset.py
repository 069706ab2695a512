"""Reading a sharded dataset: where its shards are, and the samples of one shard.

A source is a folder or URL holding `index.json` (what `vidlab data shard` writes), the URL of
that index, or shard URLs themselves — a list, or a brace pattern such as
`s3://bucket/ds/train-{000000..000099}.tar`. URLs are opened with `fsspec`, so anything it
reads works (`s3://` with `s3fs` installed, `gs://`, `https://`, local paths). Shards listed
without an index take their labels and counts from the `index.json` beside them, else from one
pass over their JSON members.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidlab.errors import DatasetError

INDEX_FILE = "index.json"
VIDEO_EXTS = ("mp4", "mkv", "webm", "avi", "mov", "m4v", "mpg", "mpeg", "ts", "flv", "ogv")


@dataclass(frozen=True)
class ShardRef:
    """One shard: its URL and how many samples it holds."""

    url: str
    samples: int


@dataclass
class ShardSource:
    """A sharded dataset: per split its shards, the label list, the dataset's flip info."""

    root: str
    labels: list[str]
    splits: dict[str, list[ShardRef]]
    dataset_info: dict[str, Any] = field(default_factory=dict)
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per split: samples per label (from the index, or the one pass over the shards)."""

    def shards(self, split: str) -> list[ShardRef]:
        return self.splits.get(split, [])

    def count(self, split: str) -> int:
        return sum(s.samples for s in self.shards(split))


@dataclass
class ShardSample:
    """A sample streamed from a shard: key, video bytes (and their extension), its JSON."""

    key: str
    url: str
    ext: str
    data: bytes
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        """How messages name it: `SHARD_URL:KEY.EXT`."""
        return f"{self.url}:{self.key}.{self.ext}"


def _is_url(text: str) -> bool:
    return "://" in text


def _join(root: str, name: str) -> str:
    return posixpath.join(root, name) if _is_url(root) else str(Path(root) / name)


def _read_text(url: str) -> str | None:
    import fsspec

    try:
        with fsspec.open(url, "rt") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except Exception as exc:
        raise DatasetError(f"cannot read ({type(exc).__name__}: {exc})", url) from None


def is_shard_source(source: Any) -> bool:
    """Whether `--data` names shards (an index folder/URL, tar URLs or a pattern) rather than
    a folder of videos or a manifest."""
    if isinstance(source, list | tuple):
        return True
    text = str(source)
    if text.endswith(".tar") or ("{" in text and ".tar" in text) or text.endswith(INDEX_FILE):
        return True
    if _is_url(text):
        return True
    return (Path(text) / INDEX_FILE).is_file()


def open_shards(source: str | Path | list[str]) -> ShardSource:
    """The `ShardSource` of a folder/URL with an index, an index URL, or shard URLs."""
    if isinstance(source, list | tuple) or str(source).endswith(".tar") or "{" in str(source):
        return _from_urls(_expand(source))
    text = str(source)
    index_url = text if text.endswith(INDEX_FILE) else _join(text, INDEX_FILE)
    body = _read_text(index_url)
    if body is None:
        raise DatasetError("no index.json: not a sharded dataset (make one with `vidlab data "
                           "shard`, or list the .tar shards)", text)
    root = posixpath.dirname(index_url) if _is_url(index_url) else str(Path(index_url).parent)
    return _from_index(json.loads(body), root)


def _expand(source: str | Path | list[str]) -> list[str]:
    import braceexpand

    items = list(source) if isinstance(source, list | tuple) else [str(source)]
    urls = [u for item in items for part in str(item).split("::")
            for u in braceexpand.braceexpand(part)]
    if not urls:
        raise DatasetError(f"no shard URLs in {source!r}")
    return urls


def _from_index(index: dict[str, Any], root: str) -> ShardSource:
    if not str(index.get("format", "")).startswith("vidlab-shards/"):
        raise DatasetError("is not a vidlab shard index (no 'format': 'vidlab-shards/1')",
                           _join(root, INDEX_FILE))
    splits = {split: [ShardRef(_join(root, s["name"]), int(s["samples"]))
                      for s in part["shards"] if s["samples"] > 0]
              for split, part in index["splits"].items()}
    counts = {split: dict(part.get("labels") or {}) for split, part in index["splits"].items()}
    return ShardSource(root, list(index["labels"]), splits, dict(index.get("dataset") or {}),
                       counts)


def _from_urls(urls: list[str]) -> ShardSource:
    """Shards given by URL: counts and labels from the index beside them, else one pass."""
    root = posixpath.dirname(urls[0]) if _is_url(urls[0]) else str(Path(urls[0]).parent)
    body = _read_text(_join(root, INDEX_FILE))
    if body is not None:
        beside = _from_index(json.loads(body), root)
        known = {ref.url: (split, ref) for split, refs in beside.splits.items() for ref in refs}
        if all(u in known for u in urls):
            splits: dict[str, list[ShardRef]] = {}
            for u in urls:
                split, ref = known[u]
                splits.setdefault(split, []).append(ref)
            return ShardSource(root, beside.labels, splits, beside.dataset_info)
    labels: set[str] = set()
    splits = {}
    counts: dict[str, Counter] = {}
    for u in urls:
        metas = [s.meta for s in iter_shard(u, video=False)]
        labels |= {str(m["label"]) for m in metas}
        split = str(metas[0].get("split", "train")) if metas else "train"
        splits.setdefault(split, []).append(ShardRef(u, len(metas)))
        counts.setdefault(split, Counter()).update(str(m["label"]) for m in metas)
    return ShardSource(root, sorted(labels), splits,
                       label_counts={k: dict(sorted(v.items())) for k, v in counts.items()})


def iter_shard(url: str, start: int = 0, stop: int | None = None,
               video: bool = True) -> Iterator[ShardSample]:
    """The samples at positions `[start, stop)` of one shard, read sequentially (samples
    before `start` are read past, not decoded). `video=False` skips the video bytes."""
    import fsspec
    from webdataset.tariterators import group_by_keys, tar_file_expander

    def wanted(name: str) -> bool:
        return video or name.endswith(".json")

    try:
        with fsspec.open(url, "rb") as stream:
            files = tar_file_expander([{"url": url, "stream": stream}], select_files=wanted)
            for position, sample in enumerate(group_by_keys(files)):
                if stop is not None and position >= stop:
                    return
                if position < start:
                    continue
                yield _sample(sample, url, video)
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"cannot read the shard ({type(exc).__name__}: {exc})", url) from None


def _sample(raw: dict[str, Any], url: str, video: bool) -> ShardSample:
    key = raw["__key__"]
    exts = [k for k in raw if not k.startswith("__") and k != "json"]
    ext = next((e for e in exts if e in VIDEO_EXTS), exts[0] if exts else "")
    if "json" not in raw or (video and not ext):
        raise DatasetError(f"sample {key} lacks its video or its JSON (has: {', '.join(exts)})",
                           url)
    try:
        meta = json.loads(raw["json"])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"sample {key}: its JSON does not parse ({exc})", url) from None
    return ShardSample(key, url, ext, raw.get(ext, b"") if video else b"", meta)


def extract_samples(refs: list[ShardRef], dest: str | Path,
                    limit: int | None = None) -> list[dict[str, Any]]:
    """Write the samples of `refs` (up to `limit`) as files in `dest`; their manifest entries.

    Files already there are kept (a resumed run extracts nothing twice); each is written to a
    temporary name first.
    """
    import os

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for ref in refs:
        for s in iter_shard(ref.url):
            if limit is not None and len(entries) >= limit:
                return entries
            path = dest / f"{s.key}.{s.ext}"
            if not path.is_file():
                tmp = dest / f".{s.key}.{s.ext}.tmp"
                tmp.write_bytes(s.data)
                os.replace(tmp, path)
            entry = {k: v for k, v in s.meta.items() if k != "source"}
            entries.append({**entry, "path": str(path), "label": str(s.meta["label"]),
                            "shard_key": s.key})
    return entries
