"""The clip `Dataset` and the `DataLoader` factory used by training and evaluation.

Both branches take clips by the one path of `vidlab.data.clips`: a sampler built once from the
`Preprocess` picks the frames (`train_sampler` in training, `view_sampler` in evaluation),
`read_clips` decodes them, and the transform (`TrainTransform` / `Preprocess.views`) makes the
tensor. The config is used as given: resolve it once first (`DataConfig.for_entries` fills the
flip settings from the dataset's `dataset.json`; training's `resolve_config` does both that and
the model's defaults).

Determinism: every random draw of sample `i` in epoch `e` comes from one generator seeded with
`(seed, e, i)`, so batches are identical for a seed whatever the number of workers, and a run
resumed at epoch `e` (`loader.set_epoch(e, skip_batches=k)`) sees exactly the batches an
uninterrupted run would. Workers are started per epoch (not persistent) so they see the epoch.

Robustness: a clip that fails to decode is logged and replaced by another clip drawn from the
same seeded generator; the epoch goes on. Only a dataset where `max_retries` draws in a row fail
raises `DatasetError`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vidlab.data.cache import ClipCache, default_cache_dir
from vidlab.data.clips import decode_views, open_video, read_clips, sample
from vidlab.data.config import DataConfig
from vidlab.data.parallel import fork_safe
from vidlab.data.samplers import train_sampler, view_sampler
from vidlab.data.transforms import Preprocess, TrainTransform, eval_views
from vidlab.errors import DatasetError

log = logging.getLogger(__name__)


class ClipDataset(Dataset):
    """Entries → `(clip, target)`: train clips `C×T×S×S`; eval `V×C×T×S×S` when `views` has more
    than one view (clips × crops), else `C×T×S×S`.

    Evaluation uses `preprocess` (default: `config.preprocess()`; a bundle's own when
    evaluating a bundle). `decode`: "seek" decodes only the frames a clip needs (default);
    "full" decodes the whole video and then picks frames (the naive approach, kept as a
    benchmark baseline).
    """

    def __init__(self, entries: list[dict[str, Any]], labels: list[str], config: DataConfig,
                 train: bool, seed: int = 0, views: tuple[int, int] = (1, 1),
                 decode: str = "seek", cache: ClipCache | None = None,
                 preprocess: Preprocess | None = None):
        if not entries:
            raise DatasetError("no clips to load (empty entry list)")
        index = {name: i for i, name in enumerate(labels)}
        missing = sorted({str(e["label"]) for e in entries} - set(index))
        if missing:
            raise DatasetError(f"labels not in the label list: {', '.join(missing[:5])}")
        self.entries, self.labels, self.config = entries, list(labels), config
        self.targets = [index[str(e["label"])] for e in entries]
        self.train, self.seed, self.views, self.decode = train, seed, tuple(views), decode
        self.epoch = 0
        self.cache = cache
        self.preprocess = preprocess or config.preprocess()
        self.sampler = (train_sampler(self.preprocess, config.temporal_jitter) if train
                        else view_sampler(self.preprocess, self.views[0]))
        self.transform = TrainTransform(config, config.flip_targets(self.labels), self.labels)
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        j = int(i)
        for _ in range(self.config.max_retries):
            if j not in self._bad:
                try:
                    return self._load(j, rng)
                except Exception as exc:  # any decode failure: log, replace, carry on
                    self._bad.add(j)
                    log.warning("%s: skipped this epoch, cannot load (%s); using another clip",
                                self.entries[j]["path"], exc)
            j = int(rng.integers(0, len(self.entries)))
        raise DatasetError(f"{self.config.max_retries} clips in a row failed to load "
                           f"(last: {self.entries[j]['path']})")

    def _load(self, j: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        if not self.train:
            _, frames = decode_views(self.entries[j]["path"], self.preprocess, self.sampler)
            x = eval_views(frames, self.preprocess, self.views[1])
            return (x[0] if x.shape[0] == 1 else x), self.targets[j]
        video, reader = self._source(j)
        if video is not None:
            plans = self.sampler(len(video), self.entries[j].get("fps"), rng=rng)
        else:
            plans = sample(reader, self.sampler, rng)
        (frames,) = read_clips(video if video is not None else reader, plans)
        return self.transform(frames, self.targets[j], rng)

    def _source(self, j: int):
        """(decoded video array or None, reader or None) for training entry `j`."""
        if self.cache is not None and self.cache.covers(j):
            video = self.cache.get(j)
            if video is None:
                video = self._decode_all(j)
                self.cache.put(j, video)
            return video, None
        reader = self._reader(j)
        if self.decode == "full":
            return _read_all(reader, self.entries[j]["path"]), None
        return None, reader

    def _reader(self, j: int):
        return open_video(self.entries[j]["path"], self.preprocess)

    def _decode_all(self, j: int) -> np.ndarray:
        return _read_all(self._reader(j), self.entries[j]["path"])


def _read_all(reader, path: str) -> np.ndarray:
    frames = [f for f in reader.iter_frames()]
    if not frames:
        raise DatasetError("no frames could be decoded", path)
    return np.stack(frames)


class EpochSampler(Sampler[int]):
    """Shuffles with a generator seeded by `(seed, epoch)`; can skip the first samples of an
    epoch so a run resumed mid-epoch continues with the very next batch."""

    def __init__(self, n: int, shuffle: bool, seed: int = 0):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, self.epoch, 7919]).permutation(self.n)

    def __iter__(self) -> Iterator[int]:
        return iter(int(k) for k in self.order()[self.skip:])

    def __len__(self) -> int:
        return max(0, self.n - self.skip)


class ClipLoader(DataLoader):
    """A `DataLoader` whose epoch can be set (`set_epoch(e, skip_batches=k)`) for resumable,
    reproducible training."""

    def __iter__(self):
        if self.num_workers == 0:
            return super().__iter__()
        with fork_safe():
            return super().__iter__()  # forks the workers

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Select epoch `epoch`'s shuffle and augmentation draws; skip its first batches."""
        self.dataset.epoch = epoch
        if isinstance(self.sampler, EpochSampler):
            self.sampler.set_epoch(epoch, skip_batches * (self.batch_size or 1))
        elif hasattr(self.sampler, "set_epoch"):
            if skip_batches:
                log.warning("skip_batches is ignored with a custom sampler")
            self.sampler.set_epoch(epoch)


def _worker_init(worker_id: int) -> None:
    # One thread per worker: the workers already run in parallel with the training process.
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    seed = int(info.seed % 2**32) if info is not None else worker_id
    np.random.seed(seed)


def make_loader(entries: list[dict[str, Any]], labels: list[str], config: DataConfig,
                train: bool, batch_size: int, seed: int = 0, sampler: Sampler | None = None,
                views: tuple[int, int] = (1, 1), drop_last: bool | None = None,
                decode: str = "seek", preprocess: Preprocess | None = None) -> ClipLoader:
    """A DataLoader of `(clips float B×C×T×H×W, targets int64 B)`; with eval `views` (clips,
    crops) other than (1, 1), clips are `B×V×C×T×H×W` with V = clips × crops (clip-major).

    Train loaders shuffle (seeded by `seed` and the epoch) and drop the last partial batch;
    pass a `DistributedSampler` as `sampler` for DDP. Call `loader.set_epoch(e)` each epoch.
    `preprocess` overrides `config.preprocess()` (evaluating a bundle: the bundle's own).
    """
    cache = None
    if config.cache and train:
        directory = default_cache_dir() if config.cache is True else Path(str(config.cache))
        cache = ClipCache(directory, entries, config.short_side, config.cache_mb)
    dataset = ClipDataset(entries, labels, config, train=train, seed=seed, views=views,
                          decode=decode, cache=cache, preprocess=preprocess)
    if sampler is None:
        sampler = EpochSampler(len(dataset), shuffle=train, seed=seed)
    workers = config.num_workers
    if drop_last is None:  # drop the ragged last batch in training, unless it is the only one
        drop_last = train and len(dataset) >= batch_size
    return ClipLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
        drop_last=drop_last,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=False, prefetch_factor=2 if workers > 0 else None,
    )


def num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    """Batches per epoch for `n` samples."""
    return n // batch_size if drop_last else math.ceil(n / batch_size)
