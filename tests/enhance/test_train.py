"""Training: pairs are made and cached, checkpoints and metrics are written, resume is exact."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file
from tests.enhance.conftest import tiny_config

from vidlab.bundle import load_bundle
from vidlab.enhance import train_enhancer
from vidlab.enhance.degrade import CompressionSpec, encode_decode
from vidlab.errors import CheckpointError
from vidlab.io import psnr


def test_degradation_runs_a_real_codec_and_hurts_quality():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 255, (6, 64, 96, 3), dtype=np.uint8)
    strong = encode_decode(clean, CompressionSpec("h264", "qp", 48))
    mild = encode_decode(clean, CompressionSpec("h265", "crf", 20))
    assert strong.shape == mild.shape == clean.shape
    assert psnr(clean[2], strong[2]) < psnr(clean[2], mild[2])
    with pytest.raises(ValueError, match="x265"):
        encode_decode(clean[:, :32, :48], CompressionSpec("h265", "crf", 20))


def test_training_writes_run_and_bundle_and_resume_is_exact(clean_root, tmp_path):
    full = train_enhancer(clean_root, tmp_path / "full", tiny_config(steps=4))
    run = tmp_path / "full"
    assert (run / "checkpoints" / "last.pt").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["phase"] == "train"] == [1, 2, 3, 4]
    assert any(r["phase"] == "val" and "psnr" in r for r in records)
    bundle = load_bundle(full["bundle"])
    assert bundle.config["task"] == "enhance" and bundle.config["enhance_task"] == "restore"
    assert bundle.config["num_frames"] == 3
    assert {"psnr", "psnr_input", "psnr_nlmeans"} <= set(bundle.metrics["val"])

    # the same run, interrupted after 2 steps and resumed (pool reused from the cache)
    split = tmp_path / "split"
    split.mkdir()
    shutil.copytree(run / "pool", split / "pool")
    half = train_enhancer(clean_root, split, tiny_config(steps=4), stop_after=2)
    assert half["step"] == 2 and "bundle" not in half
    with pytest.raises(CheckpointError):
        train_enhancer(clean_root, split, tiny_config(steps=4))  # refuses to clobber a run
    resumed = train_enhancer(clean_root, split, tiny_config(steps=4), resume=True)
    a = load_file(str(run / "enhancer.vidlab" / "weights.safetensors"))
    b = load_file(str(split / "enhancer.vidlab" / "weights.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert resumed["val"]["psnr"] == full["val"]["psnr"]
    assert _train_losses(run) == _train_losses(split)


def _train_losses(run) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["phase"] == "train"]


def test_resume_without_checkpoint_names_the_file(clean_root, tmp_path):
    with pytest.raises(CheckpointError, match="last.pt"):
        train_enhancer(clean_root, tmp_path / "none", tiny_config(), resume=True)


def test_init_copies_fitting_weights_and_refuses_other_bundles(clean_root, tmp_path):
    """`init` starts a grown model (context branch) exactly where the bundle's model was."""
    import torch

    from vidlab.bundle import save_bundle
    from vidlab.enhance import build_enhancer, load_enhancer
    from vidlab.enhance.train import init_from_bundle
    from vidlab.errors import BundleError

    base = train_enhancer(clean_root, tmp_path / "base", tiny_config(steps=2))["bundle"]
    source, _ = load_enhancer(base)
    grown = build_enhancer(num_frames=3, channels=4, num_blocks=1, context_blocks=1)
    copied, total = init_from_bundle(grown, base)
    assert copied == len(source.state_dict()) < total
    x = torch.rand(1, 3, 3, 24, 32)
    assert torch.equal(grown.eval()(x), source(x))
    deeper = build_enhancer(num_frames=3, channels=4, num_blocks=3)  # new trunk blocks
    init_from_bundle(deeper, base)
    assert torch.equal(deeper.eval()(x), source(x))
    assert deeper.trunk[2].conv1.weight.abs().sum() > 0  # only the blocks' outputs start at 0

    wider = build_enhancer(num_frames=3, channels=6, num_blocks=1, scale=2)
    with pytest.raises(BundleError, match="no weight"):
        init_from_bundle(wider, base)
    cls = save_bundle(tmp_path / "cls.vidlab", config={"task": "classify"})
    with pytest.raises(BundleError, match="not an enhancement bundle"):
        init_from_bundle(grown, cls.path)

    run = train_enhancer(clean_root, tmp_path / "grown", tiny_config(
        steps=2, init=str(base), context_blocks=1, luma_weight=0.5))
    assert load_bundle(run["bundle"]).model_spec["kwargs"]["context_blocks"] == 1


def test_mse_loss_is_what_psnr_measures():
    import torch

    from vidlab.enhance.train import enhance_loss

    pred, target = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert enhance_loss(pred, target, kind="mse").item() == pytest.approx(0.25)
    assert enhance_loss(pred, target).item() == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(Exception, match="unknown loss"):
        tiny_config(loss="l3")


def test_luma_weight_moves_the_loss_onto_luma():
    import torch

    from vidlab.enhance.train import enhance_loss

    target = torch.full((1, 3, 4, 4), 0.5)
    chroma_only = target + torch.tensor([0.1, -0.0511, 0.0]).view(1, 3, 1, 1)  # luma unchanged
    assert enhance_loss(chroma_only, target) > 0.05
    assert enhance_loss(chroma_only, target, luma_weight=1.0) < 2e-3
    with pytest.raises(Exception, match="luma_weight"):
        tiny_config(luma_weight=1.5)


def test_batches_fit_windows_smaller_than_the_patch(tmp_path):
    """Small source videos make small windows: every batch's patches share the largest side
    all windows hold, instead of failing to stack."""
    from vidlab.enhance.pool import POOL_DIR, PairPool

    root = tmp_path / POOL_DIR
    root.mkdir()
    records = []
    for i, (h, w) in enumerate([(48, 64), (40, 72)]):
        frames = np.full((5, h, w, 3), 10 * i, np.uint8)
        np.save(root / f"w{i}_clean.npy", frames)
        np.save(root / f"w{i}_degraded.npy", frames)
        records.append({"name": f"w{i}", "split": "train"})
    pool = PairPool(tmp_path, records, "train", num_frames=3, scale=1)
    x, y = pool.batch(6, patch=96)
    assert x.shape == (6, 3, 3, 40, 40) and y.shape == (6, 3, 40, 40)


def test_max_minutes_ends_the_run_with_a_bundle(clean_root, tmp_path):
    """A spent time budget ends the run early, evaluated and bundled, and says so."""
    summary = train_enhancer(clean_root, tmp_path / "timed", tiny_config(steps=500,
                                                                           max_minutes=1e-4))
    assert summary["stopped_by_time_limit"] and 1 <= summary["step"] < 500
    assert load_bundle(summary["bundle"]).metrics["val"]["windows"] >= 1
    assert summary["device"] == "cpu"


def test_time_budget_plans_the_steps_that_fit():
    """The plan follows the measured pace, never past `steps`, always at least one more step."""
    from vidlab.enhance.train import steps_that_fit

    assert steps_that_fit(100, 100, 50.0, 25.0, 1000) == 150  # 0.5 s/step, 25 s left
    assert steps_that_fit(100, 100, 50.0, 5000.0, 1000) == 1000
    assert steps_that_fit(100, 100, 50.0, -3.0, 1000) == 101
    assert steps_that_fit(300, 100, 10.0, 10.0, 1000) == 400  # pace of this call's steps only
