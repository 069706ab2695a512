"""The DataLoader: shapes, determinism across workers and resume, a corrupt file mid-epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidlab.data.config import DataConfig
from vidlab.data.loader import make_loader
from vidlab.data.manifest import labels_of, load_entries

CFG = DataConfig(num_frames=4, stride=2, short_side=48, crop_size=40, num_workers=2)


@pytest.fixture
def entries(tiny_dataset):
    return load_entries(tiny_dataset)


def batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_train_batches_have_the_contract_shapes(entries):
    loader = make_loader(entries, labels_of(entries), CFG.model_copy(update={"num_workers": 0}),
                         train=True, batch_size=4)
    got = batches(loader)
    assert len(got) == 2  # 9 clips, drop_last
    x, y = got[0]
    assert x.shape == (4, 3, 4, 40, 40) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_two_workers_survive_a_corrupt_file_mid_epoch(entries, tmp_path, caplog):
    bad = tmp_path / "b_right_9.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    broken = [*entries[:4], {**entries[4], "path": str(bad)}, *entries[5:]]
    single = make_loader(broken, labels_of(broken), CFG.model_copy(update={"num_workers": 0}),
                         train=True, batch_size=3)
    clip, _ = single.dataset[4]
    assert clip.shape == (3, 4, 40, 40)
    assert any(str(bad) in r.getMessage() and "skipped" in r.getMessage() for r in caplog.records)
    loader = make_loader(broken, labels_of(broken), CFG, train=True, batch_size=3,
                         drop_last=False)
    got = batches(loader)
    assert sum(len(y) for _, y in got) == len(broken)  # the bad clip was replaced, not dropped
    assert all(torch.isfinite(x).all() for x, _ in got)


def test_same_seed_same_batches_across_worker_counts_and_epochs(entries):
    labels = labels_of(entries)
    two = make_loader(entries, labels, CFG, train=True, batch_size=3, seed=5)
    none = make_loader(entries, labels, CFG.model_copy(update={"num_workers": 0}), train=True,
                       batch_size=3, seed=5)
    a, b = batches(two), batches(none)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(ya, yb)
        assert torch.allclose(xa, xb, atol=1e-5)  # 1 vs 2 torch threads: float rounding only
    assert all(torch.equal(x, y) for (x, _), (y, _) in zip(a, batches(two), strict=True))
    two.set_epoch(1)
    c = batches(two)
    assert any(not torch.equal(x, y) for (x, _), (y, _) in zip(a, c, strict=True))


def test_resume_mid_epoch_continues_with_the_next_batch(entries):
    labels = labels_of(entries)
    cfg = CFG.model_copy(update={"num_workers": 0})
    full = make_loader(entries, labels, cfg, train=True, batch_size=2, seed=1)
    full.set_epoch(3)
    expected = batches(full)
    resumed = make_loader(entries, labels, cfg, train=True, batch_size=2, seed=1)
    resumed.set_epoch(3, skip_batches=2)
    got = batches(resumed)
    assert len(got) == len(expected) - 2
    for (x, y), (xe, ye) in zip(got, expected[2:], strict=True):
        assert torch.equal(x, xe) and torch.equal(y, ye)


def test_eval_views_are_clips_times_crops(entries):
    loader = make_loader(entries, labels_of(entries), CFG.model_copy(update={"num_workers": 0}),
                         train=False, batch_size=4, views=(2, 3))
    x, y = next(iter(loader))
    assert x.shape == (4, 6, 3, 4, 40, 40)
    assert y.tolist() == [0, 0, 0, 1]  # eval keeps manifest order


def test_cache_gives_the_same_clips_and_respects_its_bound(entries, tmp_path):
    labels = labels_of(entries)
    plain = CFG.model_copy(update={"num_workers": 0})
    cached = plain.model_copy(update={"cache": str(tmp_path / "cache"), "cache_mb": 1})
    want = batches(make_loader(entries, labels, plain, train=True, batch_size=3, seed=2))
    for _ in range(2):  # first pass fills the cache, second reads it
        loader = make_loader(entries, labels, cached, train=True, batch_size=3, seed=2)
        got = batches(loader)
        for (x, y), (xe, ye) in zip(got, want, strict=True):
            assert torch.equal(y, ye) and torch.allclose(x, xe, atol=1e-6)
    files = list((tmp_path / "cache").glob("*.npy"))
    cache = loader.dataset.cache
    assert 0 < len(files) == len(cache.keys) < len(entries)  # 1 MB holds only some videos
    assert sum(f.stat().st_size for f in files) <= 1.05 * 2**20
    assert np.load(files[0], mmap_mode="r").dtype == np.uint8


def test_decode_everything_matches_seeking(entries):
    labels = labels_of(entries)
    cfg = CFG.model_copy(update={"num_workers": 0})
    a = batches(make_loader(entries, labels, cfg, train=True, batch_size=3, decode="full"))
    b = batches(make_loader(entries, labels, cfg, train=True, batch_size=3))
    assert all(torch.allclose(x, y, atol=1e-6) for (x, _), (y, _) in zip(a, b, strict=True))
