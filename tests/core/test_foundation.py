"""The skeleton's contracts: errors on one line, configs with overrides, atomic bundles."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from vidlab.bundle import load_bundle, save_bundle
from vidlab.config import load_config, parse_override, read_yaml
from vidlab.errors import BundleError, ConfigError, OutputExistsError


class _Opt(BaseModel):
    lr: float = 0.1
    epochs: int = 3


class _Cfg(BaseModel):
    name: str = "x"
    optim: _Opt = _Opt()


def test_config_yaml_then_overrides_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: y\noptim:\n  lr: 0.5\n")
    cfg = load_config(_Cfg, path, ["optim.epochs=7", "optim.lr=1e-3"])
    assert (cfg.name, cfg.optim.lr, cfg.optim.epochs) == ("y", 1e-3, 7)


def test_yaml_values_follow_yaml_1_2_so_off_and_yes_stay_strings(tmp_path):
    assert parse_override("train.amp=off") == (["train", "amp"], "off")
    assert parse_override("a=yes")[1] == "yes"
    assert parse_override("a=true")[1] is True
    assert parse_override("a=1e-3")[1] == pytest.approx(1e-3)
    assert parse_override("a=[1, 2]")[1] == [1, 2]
    path = tmp_path / "c.yaml"
    path.write_text("amp: off\nflag: false\nlr: 2e-3\n")
    assert read_yaml(path) == {"amp": "off", "flag": False, "lr": 2e-3}


def test_bad_config_names_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*optim\.epochs"):
        load_config(_Cfg, path)


def test_bundle_roundtrip_and_refuses_overwrite(tmp_path):
    import torch

    dest = tmp_path / "m.vidlab"
    b = save_bundle(dest, config={"labels": ["a", "b"]}, state_dict={"w": torch.ones(2)},
                    metrics={"val": {"top1": 0.5}})
    assert b.labels == ["a", "b"] and b.metrics["val"]["top1"] == 0.5
    assert torch.equal(load_bundle(dest).state_dict()["w"], torch.ones(2))
    with pytest.raises(OutputExistsError):
        save_bundle(dest, config={})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    save_bundle(dest, config={"labels": ["c"]}, overwrite=True)  # a bundle is replaced
    assert load_bundle(dest).labels == ["c"]
    # --overwrite never replaces what is not a bundle: a user's folder or file stays whole
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "thesis.txt").write_text("important")
    (tmp_path / "notes.vidlab").write_text("a file")
    (folder / "config.json").write_text('{"model_type": "videomae"}')  # e.g. an HF checkpoint
    for user_thing in (folder, tmp_path / "notes.vidlab"):
        with pytest.raises(OutputExistsError, match="not a vidlab bundle"):
            save_bundle(user_thing, config={}, overwrite=True)
    assert (folder / "sub" / "thesis.txt").read_text() == "important"
    assert (tmp_path / "notes.vidlab").read_text() == "a file"
    (tmp_path / "empty").mkdir()
    save_bundle(tmp_path / "empty", config={"labels": ["d"]}, overwrite=True)  # an empty folder


def test_bundle_errors_name_the_problem(tmp_path):
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "missing.vidlab")
    (tmp_path / "x.vidlab").mkdir()
    (tmp_path / "x.vidlab" / "config.json").write_text("{not json")
    with pytest.raises(BundleError, match="config.json"):
        load_bundle(tmp_path / "x.vidlab")
