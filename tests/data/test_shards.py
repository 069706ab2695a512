"""Sharded datasets: `vidlab data shard` round-trips every sample bit-identically, is
deterministic and resumable; streaming from shards sees each sample exactly once per epoch
across 2 ranks × 2 DataLoader workers, resumes mid-epoch, and skips a corrupt sample."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from data_helpers import distinct_frames, write

from vidlab.data.config import DataConfig
from vidlab.data.manifest import read_manifest, write_manifest
from vidlab.data.shards import parse_size, shard_dataset
from vidlab.data.shardset import iter_shard, open_shards
from vidlab.data.split import split
from vidlab.data.stream import epoch_plan, shard_loader
from vidlab.errors import DatasetError, OutputExistsError

LABELS = ("a_left", "b_right", "c_still")
SMALL = DataConfig(num_frames=4, crop_size=32, short_side=36, shuffle_buffer=4, num_workers=2)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """18 real clips in 3 labels, split train/val/test, as a manifest."""
    root = tmp_path_factory.mktemp("shardsrc") / "ds"
    for c, label in enumerate(LABELS):
        for i in range(6):
            write(root / label / f"{label}_{i}.mp4", distinct_frames(c * 10 + i, 12))
    from vidlab.data.manifest import scan

    entries = split(scan(root, workers=2, progress=False).entries, val=0.2, test=0.2, seed=0)
    return write_manifest(entries, root.parent / "split.jsonl")


@pytest.fixture(scope="module")
def shards(manifest, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards") / "out"
    shard_dataset(manifest, out, shard_size="60KB", workers=2, progress=False)
    return out


def test_every_sample_comes_back_bit_identical_with_its_label(manifest, shards):
    entries = {e["path"]: e for e in read_manifest(manifest)}
    index = json.loads((shards / "index.json").read_text())
    source = open_shards(shards)
    seen = {}
    for split_name, refs in source.splits.items():
        assert all(Path(r.url).name.startswith(f"{split_name}-") for r in refs)  # shards per split
        for ref in refs:
            samples = list(iter_shard(ref.url))
            assert len(samples) == ref.samples
            for s in samples:
                original = entries[s.meta["source"]]
                assert Path(original["path"]).read_bytes() == s.data
                assert s.meta["label"] == original["label"] and s.meta["split"] == split_name
                assert s.meta["num_frames"] == original["num_frames"]
                seen[s.meta["source"]] = s.key
    assert sorted(seen) == sorted(entries) and len(set(seen.values())) == len(entries)
    assert index["samples"] == len(entries) and source.labels == sorted(LABELS)
    assert sum(index["splits"]["train"]["labels"].values()) == index["splits"]["train"]["samples"]
    assert max(s["bytes"] for p in index["splits"].values() for s in p["shards"]) <= 60_000 or \
        min(s["samples"] for p in index["splits"].values() for s in p["shards"]) == 1


def test_sharding_is_deterministic_and_keeps_finished_shards(manifest, shards, tmp_path):
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    names = sorted(p.name for p in shards.glob("*.tar"))
    for name in names[1:]:  # an interrupted run: every shard but the first finished
        shutil.copy(shards / name, resumed / name)
    kept = {n: (resumed / n).stat().st_mtime_ns for n in names[1:]}
    shard_dataset(manifest, resumed, shard_size="60KB", workers=2, progress=False)
    assert {n: (resumed / n).stat().st_mtime_ns for n in names[1:]} == kept
    for name in names:
        assert (resumed / name).read_bytes() == (shards / name).read_bytes()
    assert (resumed / "index.json").read_text() == (shards / "index.json").read_text()
    with pytest.raises(OutputExistsError):
        shard_dataset(manifest, resumed, shard_size="60KB", progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / ".plan.json").write_text('{"digest": "another run"}')
    with pytest.raises(OutputExistsError, match="another manifest"):
        shard_dataset(manifest, other, shard_size="60KB", progress=False)


def test_shard_sizes_parse():
    assert parse_size("1GB") == 10**9 and parse_size("64MiB") == 64 * 2**20
    with pytest.raises(DatasetError):
        parse_size("lots")


def _keys(loader, epoch: int, skip: int = 0) -> list[list[str]]:
    loader.set_epoch(epoch, skip_batches=skip)
    return [list(keys) for _, _, keys in loader]


def test_two_ranks_two_workers_see_each_sample_exactly_once_per_epoch(shards):
    source = open_shards(shards)
    train = source.shards("train")
    loaders = [shard_loader(train, source.labels, SMALL, batch_size=3, seed=1, rank=r,
                            world_size=2, with_keys=True) for r in range(2)]
    orders = []
    for epoch in range(2):
        per_rank = [_keys(loader, epoch) for loader in loaders]
        assert len(per_rank[0]) == len(per_rank[1]) == loaders[0].dataset.batches  # DDP lockstep
        seen = Counter(k for batches in per_rank for b in batches for k in b)
        assert len(seen) == source.count("train") and set(seen.values()) == {1}
        orders.append([k for b in per_rank[0] for k in b])
    assert orders[0] != orders[1]  # shards and buffer are shuffled per epoch


def test_a_resumed_epoch_continues_with_the_very_next_batches(shards):
    source = open_shards(shards)
    loader = shard_loader(source.shards("train"), source.labels, SMALL, batch_size=2, seed=3,
                          with_keys=True)
    loader.set_epoch(1)
    full = [(x, keys) for x, _, keys in loader]
    for done in (1, 2, 3):
        loader.set_epoch(1, skip_batches=done)
        rest = [(x, keys) for x, _, keys in loader]
        assert [k for _, k in rest] == [k for _, k in full[done:]]
        assert torch.equal(rest[0][0], full[done][0])  # the same clips, the same augmentation


def test_the_plan_uses_every_sample_with_equal_batches_per_rank():
    from vidlab.data.shardset import ShardRef

    refs = [ShardRef(f"s{i}.tar", n) for i, n in enumerate((5, 1, 7, 4))]  # 17 samples
    for ranks, workers, batch in ((2, 2, 8), (3, 2, 4), (2, 3, 1), (1, 1, 5)):
        if 17 % ranks and batch == 1:
            continue  # one-sample batches cannot give ranks equal steps over 17 samples
        plan = epoch_plan(refs, 0, 0, ranks, workers, batch)
        steps = {sum(len(s.batch_sizes) for s in row) for row in plan}
        assert len(steps) == 1
        assert sum(s.samples for row in plan for s in row) == 17
        assert all(0 < b <= batch for row in plan for s in row for b in s.batch_sizes)


def test_a_corrupt_sample_is_reported_and_skipped(tmp_path, caplog):
    root = tmp_path / "ds"
    for i in range(4):
        write(root / "a" / f"a{i}.mp4", distinct_frames(i, 12))
    bad = root / "a" / "bad.mp4"
    bad.write_bytes((root / "a" / "a0.mp4").read_bytes()[:900])  # cut inside the video data
    entries = [{"path": str(p), "label": "a", "num_frames": 12, "fps": 25.0, "width": 128,
                "height": 96, "codec": "h264", "duration": 0.48}
               for p in sorted((root / "a").glob("*.mp4"))]
    manifest = write_manifest(entries, tmp_path / "m.jsonl")
    shard_dataset(manifest, tmp_path / "shards", progress=False)
    source = open_shards(tmp_path / "shards")
    config = SMALL.model_copy(update={"num_workers": 0})
    loader = shard_loader(source.shards("train"), source.labels, config, batch_size=5,
                          with_keys=True)
    loader.set_epoch(0)
    with caplog.at_level(logging.WARNING):
        batches = list(loader)
    assert len(batches) == 1 and batches[0][0].shape[0] == 4
    assert any("skipped" in r.message and ".mp4" in r.message for r in caplog.records)


def test_shards_are_read_through_fsspec_urls_and_brace_patterns(shards):
    source = open_shards(shards)
    names = sorted(Path(r.url).name for r in source.shards("train"))
    last = int(names[-1].split("-")[1].split(".")[0])
    pattern = f"file://{shards}/train-{{000000..{last:06d}}}.tar"
    by_url = open_shards(pattern)
    assert by_url.count("train") == source.count("train") and by_url.labels == source.labels
    loader = shard_loader(by_url.shards("train"), by_url.labels,
                          SMALL.model_copy(update={"num_workers": 0}), batch_size=4,
                          with_keys=True)
    loader.set_epoch(0)
    assert sum(len(k) for _, _, k in loader) == source.count("train")


def test_shards_without_an_index_are_counted_in_one_pass(shards):
    import fsspec

    memory = fsspec.filesystem("memory")
    for tar in shards.glob("train-*.tar"):
        memory.pipe(f"/vidlab-test/{tar.name}", tar.read_bytes())
    urls = [f"memory://vidlab-test/{tar.name}" for tar in sorted(shards.glob("train-*.tar"))]
    source = open_shards(urls)
    assert source.count("train") == open_shards(shards).count("train")
    assert set(source.labels) <= set(LABELS)


def test_shard_cli_reencodes_to_a_short_gop_and_reports(manifest, tmp_path):
    import subprocess
    import sys

    import av

    out = tmp_path / "small"
    cmd = [sys.executable, "-m", "vidlab", "data", "shard", str(manifest), "-o", str(out),
           "--shard-size", "1MB", "--transcode", "h264", "--size", "32", "--gop", "4",
           "--workers", "2", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["samples"] == 18 and set(summary["splits"]) == {"train", "val", "test"}
    assert summary["shards"] == 3 and not summary["failures"]  # one shard per split
    assert not (out / ".staging").exists() and not (out / ".plan.json").exists()
    (sample, *_) = iter_shard(str(out / "train-000000.tar"))
    assert min(sample.meta["width"], sample.meta["height"]) == 32
    with av.open(__import__("io").BytesIO(sample.data)) as c:
        keys = [p.pts for p in c.demux(video=0) if p.is_keyframe and p.size]
    assert len(keys) == 3  # 12 frames, a keyframe every 4
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "overwrite" in again.stderr
