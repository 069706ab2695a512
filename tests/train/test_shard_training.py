"""`vidlab train --data SHARDS`: training streams the train shards (val/test extracted), and
`--resume` after `kill -9` mid-epoch ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch
from tests.train.conftest import tiny_config
from tests.train.test_resume import EXACT, _kill_mid_run

from vidlab.train import fit
from vidlab.train.checkpoint import load_checkpoint
from vidlab.train.run import load_run_config


@pytest.fixture(scope="module")
def motion_shards(motion_manifest, tmp_path_factory):
    from vidlab.data.shards import shard_dataset

    out = tmp_path_factory.mktemp("motion-shards") / "shards"
    shard_dataset(motion_manifest, out, shard_size="60KB", workers=1, progress=False)
    return out


def test_training_streams_shards_and_resumes_after_sigkill_exactly(motion_shards, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = fit(tiny_config(motion_shards, tmp_path / "ref", *EXACT))
        index = json.loads((motion_shards / "index.json").read_text())
        assert reference.metrics["test"]["num_clips"] == index["splits"]["test"]["samples"]
        batches = -(-index["splits"]["train"]["samples"] // 4)  # every sample, each epoch
        assert reference.metrics["steps"] == 2 * batches
        stats = json.loads((tmp_path / "ref" / "data_stats.json").read_text())
        assert stats["class_counts"] == index["splits"]["train"]["labels"]
        assert reference.config.data.flip_map  # the dataset's flip info came with the index

        killed_at = _kill_mid_run(motion_shards, tmp_path / "run")
        assert 0 < killed_at["step"] < reference.metrics["steps"]
        resumed = fit(load_run_config(tmp_path / "run"), resume=True)
    finally:
        torch.set_num_threads(threads)
    ref_state = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    new_state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert new_state["step"] == ref_state["step"]
    for k, v in ref_state["model"].items():
        assert torch.allclose(v.float(), new_state["model"][k].float(), atol=1e-6, rtol=0), k
    assert resumed.metrics["test"]["top1"] == reference.metrics["test"]["top1"]


@pytest.fixture(scope="module")
def direction_data(tmp_path_factory):
    """A square moving right vs the same clips played backwards (left): 2 × 14 real H.264
    clips (8 train, 6 test per class) a tiny 3D CNN learns in seconds; as a manifest and as
    shards."""
    from tests.conftest import encode_video, moving_square_frames

    from vidlab.data.shards import shard_dataset

    root = tmp_path_factory.mktemp("direction")
    rows = []
    for i in range(14):
        frames = moving_square_frames(24, 48, 64, seed=i)
        for label, clip in (("right", frames), ("left", frames[::-1].copy())):
            path = encode_video(root / f"{label}_{i}.mp4", clip, fps=25)
            rows.append({"path": str(path), "label": label, "split": "train" if i < 8 else "test"})
    manifest = root / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shard_dataset(manifest, root / "shards", shard_size="100KB", workers=1, progress=False)
    return manifest, root / "shards"


def test_training_from_shards_reaches_the_accuracy_of_training_from_files(direction_data,
                                                                         tmp_path):
    manifest, shards = direction_data
    learn = ["train.epochs=8", "data.num_frames=8", "data.stride=2", "data.hflip=0",
             "optim.lr=0.01", "train.plots=false", "model.kwargs.widths=[8,8,8,8]"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        files = fit(tiny_config(manifest, tmp_path / "files", *learn)).metrics["test"]
        streamed = fit(tiny_config(shards, tmp_path / "shards", *learn)).metrics["test"]
    finally:
        torch.set_num_threads(threads)
    assert files["num_clips"] == streamed["num_clips"] == 12
    assert files["top1"] >= 0.75, files  # both learn (else the comparison says nothing) ...
    assert streamed["top1"] >= 0.75, streamed
    assert abs(files["top1"] - streamed["top1"]) <= 0.25  # ... to the same accuracy within noise
