"""`vidlab generate` writes real, readable video/GIF files; `vidlab gan eval` reports the
contracted figures; a missing or bad I3D file is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from tests.gen.conftest import run_cli

from vidlab.bundle import save_bundle
from vidlab.data.transforms import Preprocess
from vidlab.errors import ModelError
from vidlab.io import probe


def test_generate_writes_an_mp4_grid_with_the_clip_length(tiny_run: Path, tmp_path: Path):
    out = tmp_path / "grid.mp4"
    assert run_cli("generate", str(tiny_run / "generator.vidlab"), "-n", "4", "-o", str(out)) == 0
    info = probe(out)
    assert info.num_frames == 8
    assert info.width >= 2 * 16 and info.height >= 2 * 16  # a 2×2 grid of enlarged tiles


def test_generate_gif_and_separate_files(tiny_run: Path, tmp_path: Path):
    out = tmp_path / "clip.gif"
    code = run_cli("generate", str(tiny_run / "generator.vidlab"), "--label", "left", "-n", "3",
                   "--seed", "7", "--separate", "-o", str(out))
    assert code == 0
    files = sorted(tmp_path.glob("clip_*.gif"))
    assert [f.name for f in files] == ["clip_000.gif", "clip_001.gif", "clip_002.gif"]
    with Image.open(files[0]) as im:
        assert im.n_frames == 8 and im.size == (16, 16)


def test_generate_is_reproducible_and_refuses_to_overwrite(tiny_run: Path, tmp_path: Path,
                                                          capsys):
    from vidlab.gen.sampling import load_generator

    g = load_generator(tiny_run / "generator.vidlab")
    labels = torch.tensor([0, 1])
    assert torch.equal(g.generate(labels, seed=3), g.generate(labels, seed=3))
    out = tmp_path / "a.mp4"
    bundle = str(tiny_run / "generator.vidlab")
    assert run_cli("generate", bundle, "-n", "2", "-o", str(out)) == 0
    assert run_cli("generate", bundle, "-n", "2", "-o", str(out)) == 1
    assert "OutputExistsError" in capsys.readouterr().err
    assert run_cli("generate", bundle, "--label", "sideways", "-o", str(tmp_path / "b.mp4")) == 1
    assert "unknown label 'sideways'" in capsys.readouterr().err


def test_generate_rejects_a_classifier_bundle(tmp_path: Path, capsys):
    cls = _classifier_bundle(tmp_path / "cls.vidlab")
    assert run_cli("generate", str(cls), "-o", str(tmp_path / "x.mp4")) == 1
    assert "not a generator bundle" in capsys.readouterr().err


def _classifier_bundle(path: Path) -> Path:
    """An (untrained) real classifier bundle over the tiny dataset's labels."""
    from vidlab.models import create

    torch.manual_seed(0)
    model = create("r2plus1d_tiny", num_classes=2, num_frames=8)
    pre = Preprocess(num_frames=8, stride=1, short_side=16, crop_size=16)
    save_bundle(path, config={"task": "classify",
                              "model": {"name": "r2plus1d_tiny", "num_classes": 2,
                                        "kwargs": {"num_frames": 8}},
                              "labels": ["left", "right"], "preprocess": pre.to_dict()},
                state_dict=model.state_dict())
    return path


def test_gan_eval_reports_figures_and_baselines_as_json(tiny_run: Path, tiny_data: Path,
                                                        tmp_path: Path, capsys):
    cls = _classifier_bundle(tmp_path / "cls.vidlab")
    capsys.readouterr()
    code = run_cli("gan", "eval", str(tiny_run / "generator.vidlab"), "--classifier", str(cls),
                   "--data", str(tiny_data), "-n", "8", "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_samples"] == 8
    assert result["feature_space"] == "vidlab-classifier:r2plus1d_tiny"
    assert result["frechet_distance"] >= 0
    assert 0 <= result["class_consistency"] <= 1
    for name in ("wrong_class_real", "shuffled_real", "real"):
        b = result["baselines"][name]
        assert b["frechet_distance"] >= 0 and 0 <= b["class_consistency"] <= 1
    # With two classes, a real clip of the wrong class is by construction the other class:
    # wrong-class consistency is the classifier's error rate on it, 1 - its rate on the right one.
    assert result["baselines"]["wrong_class_real"]["class_consistency"] <= 1


def test_eval_rejects_a_generator_as_classifier(tiny_run: Path, tiny_data: Path, capsys):
    bundle = str(tiny_run / "generator.vidlab")
    assert run_cli("gan", "eval", bundle, "--classifier", bundle, "--data", str(tiny_data)) == 1
    assert "must be a classifier bundle" in capsys.readouterr().err


def test_missing_or_bad_i3d_file_is_a_clear_error(tmp_path: Path, tiny_run: Path, capsys):
    from vidlab.gen.fvd import load_i3d

    with pytest.raises(ModelError, match="not found"):
        load_i3d(tmp_path / "i3d_torchscript.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torchscript archive")
    with pytest.raises(ModelError, match="not a loadable TorchScript"):
        load_i3d(bad, trust_code=True)
    code = run_cli("gan", "eval", str(tiny_run / "generator.vidlab"), "--classifier", "x",
                   "--data", "y", "--i3d", str(bad), "--trust-i3d-code")
    assert code == 1
    assert "bad.pt" in capsys.readouterr().err


def test_a_torchscript_detector_is_only_loaded_when_trusted(tmp_path: Path, tiny_run: Path,
                                                            capsys):
    """TorchScript runs code when loaded: a real TorchScript file is refused unless asked."""
    from vidlab.gen.fvd import load_i3d

    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with pytest.raises(ModelError, match="runs the code it holds.*--trust-i3d-code"):
        load_i3d(path)
    assert load_i3d(path, trust_code=True) is not None
    code = run_cli("gan", "eval", str(tiny_run / "generator.vidlab"), "--classifier", "x",
                   "--data", "y", "--i3d", str(path))
    assert code == 1 and "--trust-i3d-code" in capsys.readouterr().err
