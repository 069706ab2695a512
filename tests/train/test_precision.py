"""Training precision: bf16 follows fp32's loss trajectory, the start-up probe decides `auto` and
catches a bf16 path that is wrong, the NaN guard works in bf16, resume keeps the precision."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.train.conftest import tiny_config
from torch import nn

from vidlab.train import fit
from vidlab.train.bf16 import Bf16Probe, probe_bf16
from vidlab.train.hardware import cpu_has_bf16, pick_precision

CPU = torch.device("cpu")
COLOURS = {"red": (200, 40, 40), "green": (40, 190, 50), "blue": (40, 50, 200)}
TRAJECTORY = ["train.epochs=3", "train.deterministic=true", "ema.enabled=false",
              "train.plots=false", "optim.name=sgd", "optim.lr=0.05", "schedule.warmup_epochs=0.25",
              "regularization.label_smoothing=0", "data.test_views=[1,1]",
              "model.frame_diff=false"]
"""A run whose loss visibly falls in 9 SGD steps. Frame differences off: on these noise-only
differences the ~3 k-parameter model (2 stem channels) barely learns in as many steps."""


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    """Real H.264 clips whose class is their noisy colour: a tiny model learns it in a few
    steps, so a loss trajectory has a shape to follow (motion classes barely move in as many)."""
    from vidlab.io import write_video

    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    for name, base in COLOURS.items():
        (root / name).mkdir()
        for i in range(8):
            noise = rng.integers(-60, 61, (12, 40, 48, 3))
            frames = np.clip(np.array(base) + noise, 0, 255).astype(np.uint8)
            write_video(root / name / f"{name}_{i}.mp4", frames, fps=10)
    return root


def _losses(run_dir) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r.get("phase") == "train"]


@pytest.mark.timeout(1800)  # three short runs: ~40 s on 2 idle cores, 10 min at load 25
def test_bf16_and_fp32_runs_follow_the_same_loss_trajectory(colour_data, tmp_path):
    runs = {}
    for name, extra in (("fp32", ["train.amp=off"]), ("bf16", ["train.amp=bf16"]),
                        ("fp32_seed1", ["train.amp=off", "train.seed=1"])):
        result = fit(tiny_config(colour_data, tmp_path / name, *TRAJECTORY, *extra))
        assert result.metrics["precision"]["name"] == name[:4]
        runs[name] = np.array(_losses(tmp_path / name))
    a, b, other_seed = runs["fp32"], runs["bf16"], runs["fp32_seed1"]
    assert len(a) == len(b) >= 9 and np.isfinite(b).all()
    # the run learns: its loss falls by more than the gaps compared below
    assert a[:3].mean() - a[-3:].mean() > 0.08, a
    # bf16 follows fp32 step by step, closer than fp32 itself with another seed does (measured:
    # mean gap 0.015 vs 0.055, largest 0.044 vs 0.117). SGD, not AdamW: Adam rescales the
    # rounding noise of near-zero gradients to full-size steps, and the runs part sooner.
    gap, seed_gap = np.abs(b - a), np.abs(other_seed - a)
    assert gap.max() < 0.08 and gap.mean() < 0.6 * seed_gap.mean(), (a, b, other_seed)


def test_auto_is_fp32_without_bf16_units_and_an_explicit_bf16_is_honoured(monkeypatch):
    if not cpu_has_bf16():
        chosen = pick_precision("auto", CPU, probe=lambda: pytest.fail("no units: no probe"))
        assert chosen.name == "fp32" and "no bf16 units" in chosen.reason
    assert pick_precision("bf16", CPU).name == "bf16"
    assert pick_precision("fp16", CPU).name == "bf16"  # CPU autocast's half type
    assert pick_precision("off", CPU).name == "fp32"


@pytest.mark.parametrize(("probe", "expected", "why"), [
    (Bf16Probe(1.0, 0.4, True, 0.004, "fc (Linear)"), "bf16", "2.50x"),
    (Bf16Probe(1.0, 0.95, True, 0.004, "fc (Linear)"), "fp32", "not faster enough"),
    (Bf16Probe(1.0, 0.4, False, float("inf")), "fp32", "not finite"),
    (Bf16Probe(1.0, 0.4, True, 0.9, "layer2.0.conv1 (Conv3d)"), "fp32", "layer2.0.conv1"),
])
def test_auto_on_a_cpu_with_bf16_units_follows_the_probe(monkeypatch, probe, expected, why):
    monkeypatch.setattr("vidlab.train.hardware.cpu_has_bf16", lambda: True)
    chosen = pick_precision("auto", CPU, probe=lambda: probe)
    assert chosen.name == expected and why in chosen.reason
    assert pick_precision("auto", CPU, probe=None).name == "fp32"  # never unmeasured


def _tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv3d(3, 8, 3, padding=1, bias=False), nn.BatchNorm3d(8), nn.ReLU(),
                         nn.Conv3d(8, 8, (3, 1, 1), padding=(1, 0, 0), bias=False),
                         nn.BatchNorm3d(8), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                         nn.Linear(8, 4))


class _WrongConv(nn.Conv3d):
    """A convolution whose bf16 kernel computes something else (as a broken one would)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y.flip(1) if torch.is_autocast_enabled(x.device.type) else y


def test_the_probe_measures_real_bf16_and_catches_a_wrong_bf16_path():
    x = torch.randn(4, 3, 4, 16, 16)
    net = _tiny_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    good = probe_bf16(net, x, num_classes=4, steps=1)
    assert good.finite and good.agrees and good.fp32_s > 0 and good.bf16_s > 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # on a copy
    assert torch.equal(rng, torch.get_rng_state())  # the run's random stream is untouched

    assert good.worst_error < 0.05  # bf16 rounding, layer by layer

    net[3] = _WrongConv(8, 8, (3, 1, 1), padding=(1, 0, 0), bias=False)
    broken = probe_bf16(net, x, num_classes=4, steps=1)
    assert broken.finite and not broken.agrees and broken.worst_layer == "3 (_WrongConv)"


def test_the_nan_guard_stops_a_bf16_run_that_diverges(motion_manifest, tmp_path, caplog):
    from vidlab.errors import TrainingError

    config = tiny_config(motion_manifest, tmp_path / "nan", "train.amp=bf16", "optim.name=sgd",
                         "optim.lr=1e30", "optim.grad_clip=null", "train.epochs=8",
                         "ema.enabled=false")
    with pytest.raises(TrainingError, match="NaN/inf for 10 steps in a row"):
        fit(config)
    assert "update skipped" in caplog.text


def test_resume_keeps_the_precision_the_run_started_in(motion_manifest, tmp_path):
    out = tmp_path / "run"
    fit(tiny_config(motion_manifest, out, "train.amp=bf16", "train.epochs=1", "train.plots=false"))
    resumed = fit(tiny_config(motion_manifest, out, "train.amp=off", "train.epochs=2",
                              "train.plots=false"), resume=True)
    assert resumed.metrics["precision"]["name"] == "bf16"


class _NanInBf16(nn.Module):
    """A layer that fails only in bf16 (as an op or kernel without a sound bf16 path would)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan") if torch.is_autocast_enabled(x.device.type) else x


def test_a_layer_that_fails_only_in_bf16_is_named_and_the_run_goes_on_in_fp32(
        motion_manifest, tmp_path, caplog):
    from vidlab.models import create

    model = create("r2plus1d_tiny", num_classes=8, num_frames=4, widths=[4, 8, 8, 8])
    model.stem.append(_NanInBf16())
    config = tiny_config(motion_manifest, tmp_path / "fault", "train.amp=bf16", "train.epochs=2",
                         "train.plots=false")
    result = fit(config, model=model, write_bundles=False)
    assert "bf16 gave NaN/inf in stem.6 (_NanInBf16)" in caplog.text
    assert result.metrics["precision"]["name"] == "fp32"
    assert "stem.6" in result.metrics["precision"]["reason"]
    assert result.metrics["steps"] >= 3  # one step skipped, the rest trained in fp32
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
