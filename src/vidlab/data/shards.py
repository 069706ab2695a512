"""Sharded datasets: a manifest becomes WebDataset tar shards that stream sequentially.

`shard_dataset` packs each split into `OUT/<split>-NNNNNN.tar` (the `webdataset` library's
format: a sample is `KEY.<ext>` — the video's bytes, untouched or re-encoded — plus
`KEY.json`: label, split, group, source path and the probed metadata of those bytes) and
writes `OUT/index.json`: every shard with its sample count, size and labels, per split, and
the label list. Samples are shuffled (seeded) before packing so every shard mixes classes.

Deterministic: the same manifest and settings give byte-identical shards (fixed tar headers,
one encoder thread). Resumable: the plan's digest is saved first (`.plan.json`), a shard is written to
a temporary name and renamed when complete, and finished shards are kept on a rerun. The
per-file work (re-encoding, packing a shard) is spread by the engine: local processes or Ray.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from vidlab.data.config import find_dataset_info
from vidlab.data.manifest import META_KEYS, load_entries
from vidlab.data.parallel import Engine, parallel_map
from vidlab.data.transcoding import TranscodeSpec, transcode_many
from vidlab.errors import DatasetError, OutputExistsError

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"
PLAN_FILE = ".plan.json"
STAGING_DIR = ".staging"
FORMAT = "vidlab-shards/1"
SPLIT_ORDER = ("train", "val", "test")
TAR_OVERHEAD = 3 * 512
"""Bytes a sample costs besides its video: two tar headers and the JSON with its padding."""
TAR_END = 10240
"""The end-of-archive blocks and record padding a tar file ends with (at most)."""
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(text: str | int) -> int:
    """`"1GB"` → 10⁹ bytes (`KB/MB/GB/TB` decimal, `KiB/MiB/GiB` binary, a plain number: bytes)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(text))
    if not m or m[2].upper() not in _UNITS:
        raise DatasetError(f"not a size: {text!r} (e.g. 1GB, 500MB, 64MiB)")
    size = int(float(m[1]) * _UNITS[m[2].upper()])
    if size <= 0:
        raise DatasetError(f"the shard size must be positive, got {text!r}")
    return size


def sample_key(split: str, position: int) -> str:
    """The `__key__` of a sample: its split and position (no dots: WebDataset splits on them)."""
    return f"{split}-{position:08d}"


def _split_order(entries: list[dict[str, Any]], seed: int) -> dict[str, list[dict[str, Any]]]:
    """Entries per split (no split: train), each split shuffled by a seeded permutation."""
    by_split: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_split.setdefault(str(e.get("split") or "train"), []).append(e)
    names = [s for s in SPLIT_ORDER if s in by_split] + sorted(set(by_split) - set(SPLIT_ORDER))
    out = {}
    for split in names:
        rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
        out[split] = [by_split[split][i] for i in rng.permutation(len(by_split[split]))]
    return out


def _sample_meta(entry: dict[str, Any], split: str, meta: dict[str, Any]) -> dict[str, Any]:
    row = {"label": str(entry["label"]), "split": split, "source": str(entry["path"])}
    if entry.get("group"):
        row["group"] = entry["group"]
    row.update({k: meta.get(k) for k in META_KEYS})
    return row


def plan_shards(samples: list[dict[str, Any]], split: str, shard_size: int) -> list[dict]:
    """Pack a split's samples in order into shards of at most `shard_size` bytes (a sample
    bigger than that gets a shard of its own)."""
    capacity = max(1, shard_size - TAR_END)
    shards: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    used = 0
    for s in samples:
        cost = s["bytes"] + TAR_OVERHEAD
        if current and used + cost > capacity:
            shards.append(current)
            current, used = [], 0
        current.append(s)
        used += cost
    if current:
        shards.append(current)
    return [{"name": f"{split}-{i:06d}.tar", "split": split, "samples": members}
            for i, members in enumerate(shards)]


def write_shard(job: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """Pack one planned shard into `out_dir/name` (temporary name, renamed when complete);
    a shard already there is kept. Returns its name, samples, bytes, labels and failures."""
    import webdataset as wds

    out_dir, shard = job
    target = Path(out_dir) / shard["name"]
    written, failures = [], []
    if not target.is_file():
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as f, wds.TarWriter(f, mtime=0, user="vidlab", group="vidlab",
                                                 mode=0o444) as tar:
            for s in shard["samples"]:
                try:
                    data = Path(s["file"]).read_bytes()
                except OSError as exc:
                    failures.append({"key": s["key"], "path": s["meta"]["source"],
                                     "error": f"cannot read ({exc.strerror or exc})"})
                    continue
                tar.write({"__key__": s["key"], s["ext"]: data,
                           "json": json.dumps(s["meta"], sort_keys=True).encode()})
                written.append(s)
        os.replace(tmp, target)
    else:
        done = {k for k in _keys_in(target)}
        written = [s for s in shard["samples"] if s["key"] in done]
        failures = [{"key": s["key"], "path": s["meta"]["source"], "error": "missing from "
                     "the shard written before"} for s in shard["samples"] if s["key"] not in done]
    return {"name": shard["name"], "split": shard["split"], "samples": len(written),
            "bytes": target.stat().st_size,
            "labels": dict(sorted(Counter(s["meta"]["label"] for s in written).items())),
            "failures": failures}


def _keys_in(path: Path) -> list[str]:
    import tarfile

    with tarfile.open(path) as tar:
        return sorted({m.name.split(".", 1)[0] for m in tar.getmembers()})


def _check_out(out: Path, plan: dict[str, Any], overwrite: bool) -> None:
    """Refuse a finished dataset or another plan's shards, unless `overwrite` (which removes
    only what a shard run writes)."""
    index, saved = out / INDEX_FILE, out / PLAN_FILE
    if overwrite:
        names = {s["name"] for s in plan["shards"]}
        for old in (saved, index):
            if old.is_file():
                names |= {s["name"] for s in json.loads(old.read_text()).get("shards", [])}
                old.unlink()
        for name in names:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / STAGING_DIR, ignore_errors=True)
        return
    if index.is_file():
        raise OutputExistsError("holds a finished sharded dataset (pass --overwrite)", out)
    if saved.is_file() and json.loads(saved.read_text()) != plan:
        raise OutputExistsError("holds shards of another manifest or other settings (pass "
                                "--overwrite to replace them)", out)


def shard_dataset(source: str | Path, out_dir: str | Path, shard_size: str | int = "1GB",
                  transcode: TranscodeSpec | None = None, seed: int = 0,
                  workers: int | None = None, engine: Engine | str | None = None,
                  overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Pack a manifest (or folder) into WebDataset tar shards per split in `out_dir`.

    `transcode` re-encodes every video first (e.g. `TranscodeSpec("h264", size=256, gop=16)`:
    training-sized, short GOPs so clip seeks stay cheap). Unreadable files are rows of
    `failures`, never fatal. Returns the index (`index.json`'s content).
    """
    out = Path(out_dir)
    size = parse_size(shard_size)
    entries = load_entries(source, workers=workers, engine=engine, keep_failures=True)
    usable = [e for e in entries if not e.get("error")]
    failures = [{"path": e["path"], "error": e["error"]} for e in entries if e.get("error")]
    if not usable:
        raise DatasetError("holds no readable clips to shard", source)
    out.mkdir(parents=True, exist_ok=True)
    ordered = _split_order(usable, seed)
    samples: dict[str, list[dict[str, Any]]] = {}
    if transcode is not None:
        staged = _transcode_all(ordered, out, transcode, workers, engine, progress, failures)
    for split, members in ordered.items():
        samples[split] = []
        for i, e in enumerate(members):
            key = sample_key(split, i)
            if transcode is not None:
                if key not in staged:
                    continue
                file, meta, ext = staged[key]["dst"], staged[key]["meta"], "mp4"
            else:
                file, meta = e["path"], e
                ext = Path(e["path"]).suffix.lower().lstrip(".") or "mp4"
            samples[split].append({"key": key, "file": file, "ext": ext,
                                   "bytes": Path(file).stat().st_size if Path(file).is_file()
                                   else 0, "meta": _sample_meta(e, split, meta)})
    shards = [sh for split, ss in samples.items() for sh in plan_shards(ss, split, size)]
    settings = {"shard_size": size, "seed": seed, "source": str(source),
                "transcode": transcode.to_dict() if transcode else None}
    digest = hashlib.sha256(json.dumps([settings, shards], sort_keys=True).encode()).hexdigest()
    plan = {"format": FORMAT, "digest": digest, "shards": [{"name": sh["name"]} for sh in shards]}
    _check_out(out, plan, overwrite)
    tmp = out / f"{PLAN_FILE}.tmp"
    tmp.write_text(json.dumps(plan))
    os.replace(tmp, out / PLAN_FILE)
    done = parallel_map(write_shard, [(str(out), sh) for sh in shards], workers, progress,
                        desc="writing shards", chunksize=1, engine=engine)
    index = _index(done, settings, failures)
    index["dataset"] = find_dataset_info([e["path"] for e in usable])  # flip safety, etc.
    tmp = out / f"{INDEX_FILE}.tmp"
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    os.replace(tmp, out / INDEX_FILE)
    (out / PLAN_FILE).unlink()
    shutil.rmtree(out / STAGING_DIR, ignore_errors=True)
    return index


def _transcode_all(ordered: dict[str, list[dict[str, Any]]], out: Path, spec: TranscodeSpec,
                   workers: int | None, engine: Engine | str | None, progress: bool,
                   failures: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Re-encode every sample into the staging folder (kept across reruns): key → result."""
    keys, jobs = [], []
    for split, members in ordered.items():
        for i, e in enumerate(members):
            keys.append(sample_key(split, i))
            jobs.append((e["path"], str(out / STAGING_DIR / f"{keys[-1]}.mp4")))
    staged = {}
    for key, r in zip(keys, transcode_many(jobs, spec, workers, engine, progress), strict=True):
        if "error" in r:
            failures.append({"path": r["src"], "error": r["error"]})
        else:
            staged[key] = r
    return staged


def _index(done: list[dict[str, Any]], settings: dict[str, Any],
           failures: list[dict[str, Any]]) -> dict[str, Any]:
    """The content of `index.json`: per split its shards (name, samples, bytes, labels)."""
    splits: dict[str, dict[str, Any]] = {}
    labels: set[str] = set()
    for d in done:
        failures += d["failures"]
        part = splits.setdefault(d["split"], {"samples": 0, "bytes": 0, "labels": Counter(),
                                              "shards": []})
        part["shards"].append({k: d[k] for k in ("name", "samples", "bytes", "labels")})
        part["samples"] += d["samples"]
        part["bytes"] += d["bytes"]
        part["labels"].update(d["labels"])
        labels |= set(d["labels"])
    for part in splits.values():
        part["labels"] = dict(sorted(part["labels"].items()))
    return {"format": FORMAT, "labels": sorted(labels),
            "samples": sum(p["samples"] for p in splits.values()),
            "splits": splits, "settings": settings, "failures": failures}


def shard_summary(index: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """What `vidlab data shard` reports: `{"index", "samples", "shards", "bytes", "labels",
    "splits": {split: {"samples", "shards", "bytes"}}, "failures"}`."""
    splits = {name: {"samples": p["samples"], "shards": len(p["shards"]), "bytes": p["bytes"]}
              for name, p in index["splits"].items()}
    return {"index": str(Path(out_dir) / INDEX_FILE), "samples": index["samples"],
            "shards": sum(s["shards"] for s in splits.values()),
            "bytes": sum(s["bytes"] for s in splits.values()), "labels": index["labels"],
            "splits": splits, "failures": index["failures"]}
