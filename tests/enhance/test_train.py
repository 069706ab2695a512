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
