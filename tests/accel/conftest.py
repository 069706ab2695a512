"""Fixtures for the accel tests: a tiny labelled dataset of real H.264 clips and small bundles.

Two classes — a square moving right, and the same clips played backwards (moving left) — so a
tiny 3D CNN learns them in a few seconds and INT8/pruning effects on accuracy are visible.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.conftest import encode_video, moving_square_frames

# One intra-op thread: on a shared 2-core machine, two spinning OpenMP threads per test process
# made eager PyTorch ~8× slower; these tests check correctness, never speed.
torch.set_num_threads(1)

LABELS = ["left", "right"]
PREPROCESS = {"num_frames": 8, "stride": 2, "short_side": 32, "crop_size": 32}


QUICK_TRAIN = {"data": {"num_workers": 0}, "train": {"memory_format": "contiguous"}}
"""The bundles' training settings, which fine-tuning starts from: 12 tiny clips decode in the
training process (a worker pool per epoch, forked after a full garbage collection of the test
process, costs more than the decoding) and no memory-format timing probe."""


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """A JSONL manifest of 18 real videos (6 train + 3 val per class), splits given."""
    root = tmp_path_factory.mktemp("accel-data")
    rows = []
    for i in range(9):
        frames = moving_square_frames(24, 48, 64, seed=i)
        for label, clip in (("right", frames), ("left", frames[::-1].copy())):
            path = encode_video(root / f"{label}_{i}.mp4", clip, fps=25)
            rows.append({"path": str(path), "label": label, "split": "train" if i < 6 else "val"})
    manifest = root / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def make_bundle(path: Path, model_name: str, dataset: Path | None = None, epochs: int = 0):
    """Save a bundle of `model_name` (8 frames, 32²), trained `epochs` on the dataset's train split."""
    from vidlab.accel.finetune import finetune
    from vidlab.accel.inputs import dataset_splits
    from vidlab.bundle import save_bundle
    from vidlab.data.transforms import Preprocess
    from vidlab.models import create

    torch.manual_seed(0)
    model = create(model_name, num_classes=len(LABELS), num_frames=8)
    config = {"model": {"name": model_name, "num_classes": len(LABELS), "kwargs": {"num_frames": 8}},
              "labels": LABELS, "preprocess": Preprocess(**PREPROCESS).to_dict(),
              "train": QUICK_TRAIN}
    bundle = save_bundle(path, config=config, state_dict=model.state_dict())
    if epochs:
        finetune(bundle, model, dataset_splits(bundle, dataset), epochs, lr=3e-3, batch_size=4)
        bundle = save_bundle(path, config=config, state_dict=model.eval().state_dict(),
                             overwrite=True)
    return bundle


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory, dataset) -> Path:
    """An r3d_tiny bundle trained for a few epochs on the dataset (learns left vs right)."""
    return make_bundle(tmp_path_factory.mktemp("accel-b") / "r3d.vidlab", "r3d_tiny", dataset,
                       epochs=6).path
