"""Weights: torchvision's video ResNet layout (from a key/shape listing written down once from
torchvision's source), strict loading, head replacement for fine-tuning, safe loading only."""

from __future__ import annotations

import pickle
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vidlab.errors import ModelError
from vidlab.models import create
from vidlab.models.weights import load_pretrained

FIXTURE = Path(__file__).parent / "fixtures" / "torchvision_video_resnet_keys.txt"
TORCHVISION = ("r3d_18", "mc3_18", "r2plus1d_18")


def torchvision_listing() -> dict[str, dict[str, tuple[int, ...]]]:
    listing: dict[str, dict[str, tuple[int, ...]]] = defaultdict(dict)
    for line in FIXTURE.read_text().splitlines():
        if line and not line.startswith("#"):
            model, key, shape = line.split(" ")
            listing[model][key] = () if shape == "scalar" else tuple(map(int, shape.split(",")))
    return listing


def fake_checkpoint(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's exact keys/shapes for `name` and random values."""
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.tensor(7) if k.endswith("num_batches_tracked")
                else torch.randn(shape, generator=gen))
            for k, shape in torchvision_listing()[name].items()}


@pytest.fixture(scope="module")
def listing():
    return torchvision_listing()


@pytest.mark.parametrize("name", TORCHVISION)
def test_state_dict_matches_torchvision_layout(name, listing):
    ours = {k: tuple(v.shape) for k, v in create(name, num_classes=400).state_dict().items()}
    assert list(ours) == list(listing[name])
    assert ours == listing[name]


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_checkpoint_loads_strictly(name, tmp_path):
    state = fake_checkpoint(name)
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    model = create(name, num_classes=400, weights=path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    # and it is the strict load torchvision users do
    model.load_state_dict(state, strict=True)


def test_fine_tuning_from_400_classes_replaces_only_the_head(tmp_path):
    state = fake_checkpoint("r2plus1d_18", seed=1)
    path = tmp_path / "k400.pt"
    torch.save({"state_dict": state, "epoch": 45}, path)  # a wrapped training checkpoint
    model = create("r2plus1d_18", num_classes=8, weights=path)
    assert model.fc.weight.shape == (8, 512)
    for key, value in model.state_dict().items():
        if key.startswith("fc."):
            assert not torch.equal(value[:8], state[key][:8])
        else:
            assert torch.equal(value, state[key]), key


def test_safetensors_and_module_prefix_load(tmp_path):
    source = create("r3d_tiny", num_classes=4)
    path = tmp_path / "w.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in source.state_dict().items()}, str(path))
    target = load_pretrained(create("r3d_tiny", num_classes=4), path)
    for key, value in source.state_dict().items():
        assert torch.equal(value, target.state_dict()[key])


def test_weights_of_another_architecture_are_refused_with_the_keys(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(create("r3d_tiny", num_classes=4).state_dict(), path)
    with pytest.raises(ModelError, match=r"other\.pth.*(missing|shape)"):
        create("r2plus1d_tiny", num_classes=4, weights=path)


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled arbitrary code",))


def test_pickles_that_are_not_plain_tensors_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"fc.weight": _Payload()}, f)
    with pytest.raises(ModelError, match=r"evil\.pth.*never loads") as info:
        load_pretrained(create("r3d_tiny", num_classes=4), path)
    assert "weights_only" not in str(info.value)  # never the advice to load it unsafely
    assert "unpickled arbitrary code" not in capsys.readouterr().out


def test_missing_and_garbage_files_are_model_errors(tmp_path):
    model = create("r3d_tiny", num_classes=4)
    with pytest.raises(ModelError, match="not found"):
        load_pretrained(model, tmp_path / "nope.pth")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="junk.safetensors"):
        load_pretrained(model, junk)
