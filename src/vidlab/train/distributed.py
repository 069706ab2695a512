"""DDP plumbing for `torchrun`: process group, ranks, the resumable sampler, gathers.

`torchrun` sets RANK/WORLD_SIZE/LOCAL_RANK; without them everything runs as one process and the
helpers are no-ops. Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_dist_info() -> DistInfo:
    """This process's rank and world size as torchrun set them (no process group needed)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device_type: str | None = None) -> DistInfo:
    """Join the process group when launched by torchrun (idempotent)."""
    info = env_dist_info()
    if info.enabled and not dist.is_initialized():
        if device_type is None:
            device_type = "cuda" if torch.cuda.is_available() else "cpu"
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank % torch.cuda.device_count())
        dist.init_process_group(backend=backend)
    return info


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj` (a list with one element when not distributed)."""
    if not (info.enabled and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not (info.enabled and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean(value: float, info: DistInfo) -> float:
    if not (info.enabled and dist.is_initialized()):
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


class ResumableShardSampler(Sampler[int]):
    """DistributedSampler's order (a seeded permutation per epoch, rank r takes every
    world-th index) that can start part-way through an epoch, for exact mid-epoch resume.

    With `world_size` ranks each taking `batch_size`, one global step covers a contiguous chunk
    of the permutation: a 1-process run with the global batch sees the same samples per step.
    """

    def __init__(self, num_samples: int, info: DistInfo, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        self.n, self.info, self.shuffle, self.seed = num_samples, info, shuffle, seed
        self.drop_last = drop_last
        self.epoch, self.start = 0, 0
        if drop_last:
            self.per_rank = num_samples // info.world_size
        else:
            self.per_rank = -(-num_samples // info.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch `epoch`'s order, skipping this rank's first `start` samples."""
        self.epoch, self.start = epoch, start

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.info.world_size
        order = order[:total] if self.drop_last else (order + order[: total - self.n])
        return order[self.info.rank:total:self.info.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start:])

    def __len__(self) -> int:
        return self.per_rank - self.start
