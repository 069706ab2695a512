"""Fixtures for the training tests: one tiny real-H.264 dataset per session, tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = [
    "model.name=r2plus1d_tiny", "model.kwargs.widths=[4,8,8,8]", "data.num_frames=4",
    "data.stride=3", "data.crop_size=32", "data.short_side=36", "data.num_workers=0",
    "train.memory_format=contiguous", "train.max_minutes=null", "train.batch_size=4",
    "train.log_every=1", "dataset.clean=false", "train.tensorboard=false",
    "data.test_views=[2,1]",
]
"""Overrides that make a run take seconds: a ~3 k-parameter R(2+1)D on 4×32×32 clips."""


@pytest.fixture(scope="session")
def motion_data(tmp_path_factory) -> Path:
    """The built-in motion dataset, 3 clips per class (8 classes, 24 real H.264 clips)."""
    from vidlab.data.synth import synth

    return synth(tmp_path_factory.mktemp("motion") / "ds", per_class=3, seed=0, workers=1)


@pytest.fixture(scope="session")
def motion_manifest(motion_data, tmp_path_factory) -> Path:
    """`motion_data` scanned and split once into a JSONL manifest (runs then skip the scan)."""
    from vidlab.data.manifest import write_manifest
    from vidlab.train.dataset import prepare_data

    data = prepare_data(motion_data, clean=False)
    return write_manifest(data.all_entries(), tmp_path_factory.mktemp("manifest") / "m.jsonl")


def tiny_config(data: Path, out: Path, *extra: str):
    from vidlab.config import load_config
    from vidlab.train.config import TrainConfig

    return load_config(TrainConfig, None, [*TINY, f"dataset.path={data}", f"out={out}", *extra])
