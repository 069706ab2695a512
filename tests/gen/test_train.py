"""`vidlab gan train`: a few real steps write checkpoints, metrics, samples and a bundle; resume
continues to the same weights as an uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.gen.conftest import TINY, run_cli

from vidlab.bundle import load_bundle
from vidlab.train.checkpoint import load_checkpoint


def _train(data: Path, run: Path, steps: int, *extra: str) -> int:
    overrides = [a for item in TINY for a in ("--set", item)]
    return run_cli("gan", "train", "--data", str(data), "--out", str(run), "--steps", str(steps),
                   *overrides, *extra)


def test_training_writes_run_files_and_a_generator_bundle(tiny_run: Path):
    records = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["phase"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    for key in ("loss_d_video", "loss_d_image", "loss_g", "loss_d_cls"):
        values = [r[key] for r in train]
        assert all(isinstance(v, float) for v in values) and len(set(values)) > 1
    assert load_checkpoint(tiny_run / "checkpoints" / "last.pt")["step"] == 4
    for step in (2, 4):
        for suffix in (".mp4", ".gif"):
            assert (tiny_run / "samples" / f"step_{step:06d}{suffix}").stat().st_size > 0
    assert (tiny_run / "config.yaml").is_file()
    bundle = load_bundle(tiny_run / "generator.vidlab")
    assert bundle.task == "generate"
    assert bundle.labels == ["left", "right"]
    assert bundle.config["clip"]["num_frames"] == 8 and bundle.config["clip"]["size"] == 16
    assert bundle.config["model"]["kwargs"]["width"] == 16


def test_training_changes_the_generator(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    from vidlab.gen.sampling import load_generator

    ema = load_generator(tiny_run / "generator.vidlab").state_dict()
    state = load_checkpoint(tiny_run / "checkpoints" / "last.pt")["models"]
    assert _train(tiny_data, tmp_path / "zero", 1) == 0  # one step from the same seed
    one = load_checkpoint(tmp_path / "zero" / "checkpoints" / "last.pt")["models"]["g"]
    assert any(not torch.equal(state["g"][k], one[k]) for k in one)
    assert set(ema) == set(state["g"])


def test_resume_reproduces_an_uninterrupted_run(tiny_run: Path, tiny_data: Path, tmp_path: Path):
    assert _train(tiny_data, tmp_path / "split", 2) == 0  # tiny_run: the same 4 steps in one go
    assert _train(tiny_data, tmp_path / "split", 4, "--resume") == 0
    a = load_checkpoint(tiny_run / "checkpoints" / "last.pt")["models"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["models"]
    for net in ("g", "dv", "di"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    steps = [json.loads(x)["step"] for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_existing_run_is_not_overwritten_and_resume_needs_a_checkpoint(tiny_run: Path,
                                                                       tiny_data: Path,
                                                                       tmp_path: Path, capsys):
    assert _train(tiny_data, tiny_run, 2) == 1
    assert "already holds a GAN run" in capsys.readouterr().err
    assert _train(tiny_data, tmp_path / "fresh", 2, "--resume") == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_bad_data_path_is_one_clear_error(tmp_path: Path, capsys):
    assert _train(tmp_path / "missing", tmp_path / "run", 2) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing" in err


@pytest.mark.parametrize("bad", ["size=24", "diffaug=zoom", "batch_size=1"])
def test_bad_settings_are_one_clear_config_error(tiny_data: Path, tmp_path: Path, bad: str,
                                                 capsys):
    assert _train(tiny_data, tmp_path / "run", 2, "--set", bad) == 1
    assert "ConfigError" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
