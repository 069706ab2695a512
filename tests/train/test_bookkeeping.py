"""One run bookkeeping for every trainer: the run directory, resume, RNG state, time budget."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from vidlab.errors import CheckpointError, OutputExistsError
from vidlab.train.bookkeeping import RunDir, RunExistsError, TimeBudget, units_that_fit
from vidlab.train.finetune import FINETUNE, finetune_config


def test_a_new_run_never_replaces_another_and_overwrite_removes_only_run_outputs(tmp_path):
    run = RunDir(tmp_path / "run", "training", ("config.yaml", "best.vidlab", "checkpoints"))
    assert run.claim() is False and run.path.is_dir()
    (run.path / "notes.txt").write_text("mine")  # a user's file: never a reason to refuse
    assert run.claim() is False
    run.save({"step": 3})
    (run.path / "best.vidlab").mkdir()
    with pytest.raises(RunExistsError, match="already holds a training run") as exc:
        run.claim(overwrite=False)
    assert isinstance(exc.value, OutputExistsError) and isinstance(exc.value, CheckpointError)
    assert "--overwrite" in str(exc.value)
    assert run.claim(overwrite=True) is False
    assert sorted(p.name for p in run.path.iterdir()) == ["notes.txt"]


def test_resume_needs_a_checkpoint_unless_the_trainer_starts_over(tmp_path):
    gan = RunDir(tmp_path / "gan", "GAN")
    with pytest.raises(CheckpointError, match="last.pt"):
        gan.claim(resume=True)
    assert gan.claim(resume=True, resume_needs_checkpoint=False) is False
    gan.save({"step": 1})
    assert gan.claim(resume=True) is True
    with pytest.raises(RunExistsError, match="GAN run") as exc:
        gan.claim(overwrite=None)  # no --overwrite offered: not suggested either
    assert "--overwrite" not in str(exc.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="not a directory"):
        RunDir(tmp_path / "file").claim()


def test_a_checkpoint_brings_back_every_random_generator(tmp_path):
    run = RunDir(tmp_path)
    run.claim()
    run.save({"weights": torch.arange(3)})
    expected = (torch.rand(2), np.random.rand(2), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    state = run.load()
    assert torch.equal(state["weights"], torch.arange(3))
    assert torch.equal(torch.rand(2), expected[0])
    assert np.array_equal(np.random.rand(2), expected[1]) and random.random() == expected[2]


def test_time_budget_plans_what_fits_at_the_measured_pace():
    assert units_that_fit(100, 0.5, 25.0, 1000, 101) == 150
    assert units_that_fit(100, 0.5, 5000.0, 1000, 101) == 1000
    assert units_that_fit(100, 0.5, -3.0, 1000, 101) == 101
    unlimited = TimeBudget(None)
    assert not unlimited.over() and unlimited.fit(3, 1.0, 60, 4) == 60
    spent = TimeBudget(1.0, spent_s=90.0)  # a resumed run that already used its minute
    assert spent.over() and spent.fit(3, 1.0, 60, 4) == 4
    fresh = TimeBudget(1.0)
    assert not fresh.over() and 40 <= fresh.fit(0, 1.0, 60, 1) <= 60


def test_finetune_settings_are_written_once_and_applied_to_the_base_config():
    from vidlab.data.config import DataConfig
    from vidlab.train.config import TrainConfig

    base = TrainConfig.model_validate({"optim": {"lr": 4e-3}, "train": {"max_minutes": 9}})
    cfg = finetune_config(base, DataConfig(num_frames=8), epochs=2, distill_alpha=0.5)
    assert cfg.optim.lr == pytest.approx(FINETUNE.lr_factor * 4e-3)
    assert cfg.train.epochs == 2 and cfg.train.max_minutes is None
    assert cfg.train.early_stopping is None and cfg.schedule.warmup_epochs == FINETUNE.warmup_epochs
    assert cfg.ema.warmup_steps == FINETUNE.ema_warmup_steps
    assert cfg.regularization.distill_alpha == 0.5 and cfg.data.num_frames == 8
    assert finetune_config(None, DataConfig(), 1, lr=1e-4).optim.lr == 1e-4
