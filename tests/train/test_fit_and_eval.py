"""`vidlab train` on a folder ends with a complete run dir and bundle; `vidlab eval` reads it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.train.conftest import TINY

from vidlab.bundle import load_bundle
from vidlab.cli import main
from vidlab.errors import OutputExistsError


def _train_cli(data, out, *extra):
    args = ["train", "--data", str(data), "--out", str(out), "--epochs", "2"]
    for item in TINY:
        args += ["--set", item]
    main([*args, *extra])


@pytest.fixture(scope="module")
def trained_run(motion_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    _train_cli(motion_data, out, "--set", "train.tensorboard=true", "--json")
    return out


def test_train_on_a_folder_writes_a_complete_run_and_bundle(trained_run, motion_data):
    run = trained_run
    for name in ("config.yaml", "metrics.jsonl", "manifest.jsonl", "checkpoints/last.pt",
                 "curves.png", "confusion_matrix.png", "best.vidlab/weights.safetensors"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["phase"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["val_top1"] <= 1 for r in epochs)
    assert any(r["phase"] == "test" for r in records)
    # the manifest holds a stratified split of every clip of the folder
    manifest = [json.loads(line) for line in (run / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 24 and {e["split"] for e in manifest} == {"train", "val", "test"}

    bundle = load_bundle(run / "best.vidlab")
    cfg = bundle.config
    assert cfg["task"] == "classify" and cfg["model"]["name"] == "r2plus1d_tiny"
    assert cfg["labels"] == sorted(json.loads((motion_data / "dataset.json").read_text())["labels"])
    assert cfg["preprocess"]["num_frames"] == 4 and cfg["preprocess"]["crop_size"] == 32
    assert cfg["train"]["optim"]["name"] == "adamw" and "versions" in cfg
    assert "test" in bundle.metrics and bundle.metrics["test"]["num_clips"] > 0
    model = bundle.build_model()  # everything `create` needs is in the bundle
    assert model(torch.zeros(1, 3, 4, 32, 32)).shape == (1, 8)
    # the plan: made from the fingerprint of the training clips, kept in the run and bundle
    plan = json.loads((run / "plan.json").read_text())
    by = {s["key"]: s for s in plan["settings"]}
    assert by["data.num_frames"]["by"] == "you" and by["data.sampling"]["by"] == "plan"
    assert by["data.test_views"]["by"] == "you" and by["data.crop_size"]["by"] == "you"
    assert cfg["train"]["data"]["sampling"] == by["data.sampling"]["value"]
    assert cfg["plan"] == plan["settings"]
    assert cfg["fingerprint"] == json.loads((run / "fingerprint.json").read_text())
    assert cfg["fingerprint"]["clips"]["num_clips"] == len([e for e in manifest
                                                            if e["split"] == "train"])


def test_train_refuses_a_non_empty_run_dir(trained_run, motion_data):
    before = sorted(p.name for p in trained_run.iterdir())
    with pytest.raises(SystemExit) as exc:
        _train_cli(motion_data, trained_run)
    assert exc.value.code == 1
    assert sorted(p.name for p in trained_run.iterdir()) == before

    from tests.train.conftest import tiny_config

    from vidlab.train import fit

    with pytest.raises(OutputExistsError, match="not empty"):
        fit(tiny_config(motion_data, trained_run))


def test_eval_cli_json_and_runner_agnostic_evaluate_agree(trained_run, capsys):
    manifest = trained_run / "manifest.jsonl"
    bundle_dir = trained_run / "best.vidlab"
    capsys.readouterr()
    main(["eval", str(bundle_dir), "--data", str(manifest), "--split", "test", "--views", "2x1",
          "--runtime", "torch", "--json"])
    out = json.loads(capsys.readouterr().out)
    for key in ("top1", "top5", "mean_class_acc", "num_clips", "per_class", "confusion_matrix"):
        assert key in out
    test_clips = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert out["num_clips"] == sum(e["split"] == "test" for e in test_clips)
    assert sum(map(sum, out["confusion_matrix"])) == out["num_clips"]
    assert out["confusion_png"] and __import__("pathlib").Path(out["confusion_png"]).is_file()

    # the same evaluation through a plain numpy callable (what ONNX/INT8 runners are)
    from vidlab.train import evaluate
    from vidlab.train.evaluation import data_config_of

    bundle = load_bundle(bundle_dir)
    model = bundle.build_model()
    calls = []

    def runner(batch: np.ndarray) -> np.ndarray:
        assert batch.dtype == np.float32 and batch.ndim == 5
        calls.append(batch.shape[0])
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()

    res = evaluate(runner, str(manifest), views=(2, 1), split="test", labels=bundle.labels,
                   data_config=data_config_of(bundle))
    assert calls and res.num_clips == out["num_clips"]
    assert res.top1 == pytest.approx(out["top1"]) and res.top5 == pytest.approx(out["top5"])
    assert res.loss == pytest.approx(evaluate(model, str(manifest), views=(2, 1), split="test",
                                              labels=bundle.labels,
                                              data_config=data_config_of(bundle)).loss, rel=1e-5)


def test_eval_of_a_missing_bundle_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tmp_path / "nope.vidlab"), "--data", str(tmp_path)])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.vidlab" in err[0]


def test_nan_updates_are_skipped_then_training_stops_with_a_clear_error(motion_manifest, tmp_path,
                                                                        caplog):
    from tests.train.conftest import tiny_config

    from vidlab.errors import TrainingError
    from vidlab.train import fit

    # an absurd learning rate makes the weights overflow after the first update
    config = tiny_config(motion_manifest, tmp_path / "nan", "optim.name=sgd", "optim.lr=1e30",
                         "optim.grad_clip=null", "train.epochs=8", "ema.enabled=false")
    with pytest.raises(TrainingError, match="NaN/inf for 10 steps in a row"):
        fit(config)
    assert "update skipped" in caplog.text
    assert (tmp_path / "nan" / "checkpoints" / "last.pt").is_file()  # earlier epochs were kept
