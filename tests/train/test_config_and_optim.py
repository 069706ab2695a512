"""Configs, optimizer groups, schedules and tuning: the parts around the loop (precision:
test_precision.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.train.conftest import tiny_config
from torch import nn

from vidlab.config import load_config
from vidlab.errors import ConfigError
from vidlab.train.config import ScheduleConfig, TrainConfig
from vidlab.train.optim import Schedule, build_optimizer, lr_factor, param_groups

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_example_config_loads_and_names_a_registered_model(path):
    from vidlab.models import list_models

    cfg = load_config(TrainConfig, path)
    # hf:PATH names a checkpoint the user downloads (tests/foundation builds one for it)
    assert cfg.model.name in list_models() or cfg.model.name.startswith("hf:")


def test_unknown_keys_and_bad_values_are_config_errors_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(TrainConfig, None, ["optim.lrr=0.1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  amp: fp8\n")
    with pytest.raises(ConfigError, match="bad.yaml.*train.amp"):
        load_config(TrainConfig, bad)


@pytest.mark.parametrize("override", ["train.batch_size=0", "train.batch_size=-2", "optim.lr=-1",
                                      "train.epochs=0", "optim.weight_decay=-1",
                                      "train.accumulation=0", "train.max_minutes=-1"])
def test_values_a_run_cannot_use_are_config_errors_before_anything_runs(override, tmp_path):
    """Not a ZeroDivisionError deep in the plan, nor an untrained "best" model from 0 epochs."""
    from vidlab.cli import main

    with pytest.raises(ConfigError, match=override.split("=")[0]):
        load_config(TrainConfig, None, [override])
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--set", override])
    assert exc.value.code != 0 and not (tmp_path / "run").exists()


def test_no_weight_decay_on_norms_and_biases():
    model = nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), nn.Flatten(), nn.LazyLinear(2))
    model.eval()(torch.zeros(1, 3, 3, 3, 3))
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {p.ndim for p in decay["params"]} == {5, 2}
    assert len(no_decay["params"]) == 4  # conv bias, BN weight+bias, linear bias


def test_warmup_then_cosine_reaches_the_floor_and_plateau_decays():
    cfg = ScheduleConfig(name="cosine", warmup_epochs=1, warmup_start_factor=0.1, min_lr_factor=0.01)
    f = [lr_factor(s, 100, 10, cfg) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[100] == pytest.approx(0.01)
    step = ScheduleConfig(name="step", warmup_epochs=0, step_size=2, gamma=0.5)
    assert [lr_factor(s, 100, 10, step) for s in (0, 19, 20, 40)] == [1, 1, 0.5, 0.25]

    model = nn.Linear(2, 2)
    opt = build_optimizer(model, TrainConfig().optim.model_copy(update={"name": "sgd", "lr": 1.0}))
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"]
    sched = Schedule(opt, ScheduleConfig(name="plateau", warmup_epochs=0, patience=1, gamma=0.1),
                     10, 100)
    for metric in (0.5, 0.4, 0.4):
        sched.observe(metric)
    assert sched.lr() == pytest.approx(0.1)
    restored = Schedule(opt, sched.cfg, 10, 100)
    restored.load_state_dict(sched.state_dict())
    assert restored.lr() == pytest.approx(0.1)


def test_tune_runs_trials_and_resumes_its_sqlite_study(motion_manifest, tmp_path):
    import yaml

    from vidlab.train.search import tune

    base = tiny_config(motion_manifest, tmp_path / "unused").model_dump(mode="json")
    base["train"].update({"plots": False})
    base["search"] = {"space": {"optim.lr": {"low": 1e-3, "high": 1e-2, "log": True},
                                "train.batch_size": {"choices": [2, 4]}}, "epochs": 1}
    cfg_path = tmp_path / "tune.yaml"
    cfg_path.write_text(yaml.safe_dump(base))
    out = tmp_path / "study"
    first = tune(cfg_path, trials=1, out=out)
    assert first["trials"] == 1 and (out / "study.db").is_file()
    second = tune(cfg_path, trials=1, out=out)  # same storage: the study continues
    assert second["trials"] == 2
    best = load_config(TrainConfig, second["best_config"])
    assert best.optim.lr == pytest.approx(second["best_params"]["optim.lr"])
    assert best.train.batch_size == second["best_params"]["train.batch_size"]
    assert (out / "trial_0000" / "best.vidlab").is_dir()
    assert second["importance_png"] is None or Path(second["importance_png"]).is_file()
