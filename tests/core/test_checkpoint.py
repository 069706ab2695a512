"""Checkpoints are atomic, safe to load, and restore every RNG so resume is exact."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from vidlab.errors import CheckpointError
from vidlab.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from vidlab.train.runlog import RunLogger


def test_rng_state_roundtrip_through_a_checkpoint_replays_the_same_draws(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    save_checkpoint(tmp_path / "c.pt", {"rng": capture_rng_state(), "step": 3})
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


class _Evil:
    """Pickles to a call of `open(marker, "w")`: loading it unsafely would create `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_load_refuses_pickled_code_without_running_it_or_suggesting_unsafe_loading(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "last.pt"
    if how == "torch.save":
        torch.save({"model": _Evil(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a vidlab checkpoint") and "\n" not in message
    assert "weights_only" not in message and "trust" not in message
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_junk_checkpoint_is_named_unreadable(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        load_checkpoint(path)


def test_runlog_truncates_records_a_resume_will_redo(tmp_path):
    log = RunLogger(tmp_path, tensorboard=False)
    for step in (1, 2, 3, 4):
        log.log({"step": step, "loss": 1.0 / step})
    log.truncate_after(2)
    assert [r["step"] for r in log.records()] == [1, 2]
