"""Training from shards: samples stream sequentially through a shuffle buffer, each exactly
once per epoch, split across DDP ranks and DataLoader workers, resumable mid-epoch.

The epoch plan (`epoch_plan`): the shards, in an order shuffled per epoch, are one sequence
of samples; every consumer — a (rank, worker) pair — gets a contiguous slice of it, so it
reads whole shards sequentially (at most the two at its slice's ends in part) and no sample
is read by two consumers. Slice lengths are chosen so that every rank makes the same number
of batches (DDP steps in lockstep) and every sample is used: batches are full except the
last ones, which may be smaller.

Each worker shuffles its slice through a buffer (`webdataset`'s shuffle, seeded by seed,
epoch, rank and worker), then decodes clips from the in-memory bytes with the same reader,
sampler and transform as files (`vidlab.data.clips`), augmentation seeded by the sample's
key. The DataLoader takes batches from its workers round-robin, so the k-th batch of an epoch
is known: a run resumed after k batches skips each worker's share of them (read, never
decoded) and rotates the workers, continuing with exactly the batches an uninterrupted run
would have seen. A sample that fails to decode is logged and left out of its batch.
"""

from __future__ import annotations

import logging
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from vidlab.data.clips import open_video, read_clips, sample
from vidlab.data.config import DataConfig
from vidlab.data.parallel import fork_safe
from vidlab.data.samplers import train_sampler
from vidlab.data.shardset import ShardRef, ShardSample, iter_shard
from vidlab.data.transforms import TrainTransform
from vidlab.errors import DatasetError, VidlabError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slice:
    """What one consumer reads in an epoch: `(shard url, start, stop)` pieces, in order, and
    the sizes of the batches it makes of them."""

    pieces: tuple[tuple[str, int, int], ...]
    batch_sizes: tuple[int, ...]

    @property
    def samples(self) -> int:
        return sum(self.batch_sizes)


def batch_sizes(n: int, k: int, batch_size: int) -> list[int]:
    """`k` batch sizes summing to `n`: full batches first, the last ones smaller (never 0)."""
    sizes = [batch_size] * k
    excess = k * batch_size - n
    for i in range(k - 1, -1, -1):
        take = min(excess, sizes[i] - 1)
        sizes[i] -= take
        excess -= take
    return sizes


def _share(n: int, parts: int) -> list[int]:
    """`n` split into `parts` counts differing by at most one, larger first."""
    return [n // parts + (i < n % parts) for i in range(parts)]


def batches_per_rank(total: int, ranks: int, batch_size: int) -> int:
    """Batches every rank makes per epoch when `total` samples are spread over `ranks`."""
    if total < ranks:
        raise DatasetError(f"{total} training samples cannot be spread over {ranks} processes")
    return math.ceil(-(-total // ranks) / batch_size)


def epoch_plan(shards: list[ShardRef], epoch: int, seed: int, ranks: int, workers: int,
               batch_size: int) -> list[list[Slice]]:
    """`plan[rank][worker]`: the slice each consumer reads in `epoch` (see module doc)."""
    order = np.random.default_rng([seed, epoch, 104729]).permutation(len(shards))
    ordered = [shards[i] for i in order]
    total = sum(s.samples for s in ordered)
    k = batches_per_rank(total, ranks, batch_size)
    plan, offset = [], 0
    for n_rank in _share(total, ranks):
        per_worker = _share(k, workers)
        left = n_rank
        row = []
        for w, k_w in enumerate(per_worker):
            # as many full batches as fit, leaving at least one sample per later batch
            n_w = min(k_w * batch_size, left - sum(per_worker[w + 1:]))
            left -= n_w
            row.append(Slice(_pieces(ordered, offset, offset + n_w),
                             tuple(batch_sizes(n_w, k_w, batch_size))))
            offset += n_w
        plan.append(row)
    return plan


def _pieces(shards: list[ShardRef], start: int, stop: int) -> tuple[tuple[str, int, int], ...]:
    """The parts of the shards that positions `[start, stop)` of their sequence cover."""
    out, base = [], 0
    for s in shards:
        lo, hi = max(start, base), min(stop, base + s.samples)
        if lo < hi:
            out.append((s.url, lo - base, hi - base))
        base += s.samples
    return tuple(out)


def resume_position(done: int, workers: int) -> tuple[list[int], int]:
    """After `done` batches of an epoch: how many each worker made, and the rotation that
    makes physical worker 0 the one whose batch comes next."""
    return [done // workers + (w < done % workers) for w in range(workers)], done % workers


class ShardStream(IterableDataset):
    """Batches `(clips float B×C×T×S×S, targets int64 B)` of one rank's share of the training
    shards (`with_keys=True` adds the samples' keys, for checks). Use with `shard_loader`."""

    def __init__(self, shards: list[ShardRef], labels: list[str], config: DataConfig,
                 batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 with_keys: bool = False):
        if not shards:
            raise DatasetError("no training shards")
        self.shards, self.labels, self.config = list(shards), list(labels), config
        self.index = {name: i for i, name in enumerate(self.labels)}
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world_size
        self.workers = max(1, config.num_workers)
        self.with_keys = with_keys
        self.epoch, self.skip = 0, 0
        self.pre = config.preprocess()
        self.sampler = train_sampler(self.pre, config.temporal_jitter)
        self.transform = TrainTransform(config, config.flip_targets(self.labels), self.labels)
        self.batches = batches_per_rank(sum(s.samples for s in shards), world_size, batch_size)

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Epoch `epoch`'s plan and draws, without its first `skip_batches` batches."""
        self.epoch, self.skip = epoch, skip_batches

    def __len__(self) -> int:
        return self.batches - self.skip

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        info = get_worker_info()
        done, rotation = resume_position(self.skip, self.workers)
        worker = ((info.id if info is not None else 0) + rotation) % self.workers
        plan = epoch_plan(self.shards, self.epoch, self.seed, self.world, self.workers,
                          self.batch_size)[self.rank]
        workers = [worker] if info is not None else [(w + rotation) % self.workers
                                                     for w in range(self.workers)]
        streams = [self._batches(plan[w], w, done[w]) for w in workers]
        yield from _round_robin(streams)

    def _batches(self, part: Slice, worker: int, skip: int) -> Iterator[tuple[Any, ...]]:
        """The batches of one consumer's slice, after its first `skip` batches."""
        import webdataset as wds

        rng = random.Random(zlib.crc32(f"{self.seed}/{self.epoch}/{self.rank}/{worker}".encode()))
        raw = (s for url, a, b in part.pieces for s in iter_shard(url, a, b))
        shuffled = wds.filters.shuffle(self.config.shuffle_buffer, rng=rng,
                                       initial=self.config.shuffle_buffer)(raw)
        _take(shuffled, sum(part.batch_sizes[:skip]), part)  # read past, never decoded
        last_good: tuple[torch.Tensor, int, str] | None = None
        for size in part.batch_sizes[skip:]:
            items = []
            for s in _take(shuffled, size, part):
                item = self._decode(s)
                if item is not None:
                    items.append(item)
            if not items:  # every sample of the batch was bad: the step still has to happen
                if last_good is None:
                    raise DatasetError(f"{part.pieces[0][0]}: every sample so far failed "
                                       "to decode")
                items = [last_good]
            last_good = items[-1]
            clips = torch.stack([x for x, _, _ in items])
            targets = torch.tensor([t for _, t, _ in items], dtype=torch.int64)
            yield (clips, targets, [k for _, _, k in items]) if self.with_keys else (clips, targets)

    def _decode(self, s: ShardSample) -> tuple[torch.Tensor, int, str] | None:
        """A training clip of one sample, or None (logged) when it cannot be used."""
        from vidlab.io import VideoBytes

        label = str(s.meta.get("label"))
        if label not in self.index:
            log.warning("%s: skipped, label %r is not in the label list", s.name, label)
            return None
        rng = np.random.default_rng([self.seed, self.epoch, zlib.crc32(s.key.encode())])
        try:
            with open_video(VideoBytes(s.data, s.name), self.pre) as reader:
                (frames,) = read_clips(reader, sample(reader, self.sampler, rng))
        except VidlabError as exc:
            log.warning("%s: skipped this epoch, cannot load (%s)", s.name, exc)
            return None
        x, target = self.transform(frames, self.index[label], rng)
        return x, target, s.key


def _take(samples: Iterator[ShardSample], n: int, part: Slice) -> list[ShardSample]:
    """The next `n` samples; `DatasetError` when the shards hold fewer than their index says."""
    out = []
    for _ in range(n):
        try:
            out.append(next(samples))
        except StopIteration:
            raise DatasetError("the shards ended early: fewer samples than index.json lists "
                               "(a shard was truncated or replaced?)", part.pieces[-1][0]) from None
    return out


def _round_robin(streams: list[Iterator[Any]]) -> Iterator[Any]:
    """Items from each stream in turn, as the DataLoader takes batches from its workers."""
    active = list(streams)
    while active:
        for stream in list(active):
            try:
                yield next(stream)
            except StopIteration:
                active.remove(stream)


class ShardLoader(DataLoader):
    """The DataLoader of a `ShardStream` (batches are made in the workers); `set_epoch(e,
    skip_batches=k)` as for file datasets."""

    def __iter__(self):
        if self.num_workers == 0:
            return super().__iter__()
        with fork_safe():
            return super().__iter__()

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.dataset.set_epoch(epoch, skip_batches)


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # the workers already run in parallel with training


def shard_loader(shards: list[ShardRef], labels: list[str], config: DataConfig,
                 batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 with_keys: bool = False) -> ShardLoader:
    """A DataLoader streaming this rank's share of `shards` (`config.num_workers` workers)."""
    stream = ShardStream(shards, labels, config, batch_size, seed, rank, world_size, with_keys)
    workers = config.num_workers
    return ShardLoader(stream, batch_size=None, num_workers=workers,
                       worker_init_fn=_worker_init if workers > 0 else None,
                       persistent_workers=False, prefetch_factor=2 if workers > 0 else None)
