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
