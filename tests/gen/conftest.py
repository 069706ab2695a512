"""Fixtures for the gen tests: a tiny two-class motion dataset (real H.264) and a tiny GAN run."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import encode_video, moving_square_frames

TINY = ["num_frames=8", "size=16", "batch_size=4", "g_width=16", "d_width=8", "content_dim=8",
        "motion_dim=4", "hidden_dim=8", "embed_dim=4", "clips_per_video=2", "image_frames=2",
        "log_every=1", "checkpoint_every=1", "sample_every=2", "samples_per_class=2",
        "target_fps=null", "stride=1", "threads=1"]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`root/right/*.mp4` (a square moving right) and `root/left/*.mp4` (the same, reversed)."""
    root = tmp_path_factory.mktemp("gen_data")
    for label in ("left", "right"):
        (root / label).mkdir()
        for i in range(3):
            frames = moving_square_frames(12, 24, 32, seed=i)
            frames = frames[::-1].copy() if label == "left" else frames
            encode_video(root / label / f"{label}_{i}.mp4", frames, fps=10)
    return root


def run_cli(*args: str) -> int:
    """Run `vidlab ARGS…` in-process; returns the exit code."""
    from vidlab.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="session")
def tiny_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step GAN run on `tiny_data` (its directory, holding generator.vidlab)."""
    run = tmp_path_factory.mktemp("gan") / "run"
    overrides = [a for item in TINY for a in ("--set", item)]
    code = run_cli("gan", "train", "--data", str(tiny_data), "--out", str(run), "--steps", "4",
                   *overrides)
    assert code == 0
    return run
