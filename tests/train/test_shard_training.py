"""`vidlab train --data SHARDS`: training streams the train shards (val/test extracted),
`--resume` after `kill -9` mid-epoch ends with exactly the weights of an uninterrupted run, and
training from shards reaches the accuracy of training from the files on the built-in data."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_training_streams_shards_and_resumes_after_sigkill_exactly(motion_shards, tmp_path,
                                                                    monkeypatch):
    # a preview (the extracted train clips for statistics) smaller than the split: every
    # sample of an epoch can then only come from the stream
    monkeypatch.setattr("vidlab.train.dataset.PREVIEW_SAMPLES", 3)
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


PAIR = ("grow", "shrink")
"""The two classes of the built-in dataset the test learns: one object growing vs shrinking.

A subset, because a test-sized model cannot learn all 8 classes in a test's budget. It is still
a temporal task: the frames of both classes show the same sizes, only in the opposite order."""
TRAIN_PER_CLASS, TEST_PER_CLASS, SHORT_SIDE = 48, 24, 40


def _write_clip(job: tuple[Path, str, int]) -> Path:
    """One clip of the built-in generator (`vidlab.data.synth.render_clip`, seeded per class and
    clip as `vidlab data synth` seeds it), 16 frames, resized (antialiased) to a `SHORT_SIDE` px
    short side — the tiny model's input size, so decoding stays cheap — and encoded as real
    H.264 as `synth` encodes it."""
    import numpy as np
    import torch.nn.functional as F

    from vidlab.data.synth import LABELS, render_clip
    from vidlab.io import write_video

    path, label, index = job
    frames, fps = render_clip(label, np.random.default_rng([0, LABELS.index(label), index]),
                              num_frames=16)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    size = [round(n * SHORT_SIDE / min(x.shape[-2:]) / 2) * 2 for n in x.shape[-2:]]
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    small = x.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy()
    return write_video(path, small, fps, codec="h264", crf=20, preset="veryfast",
                       options={"threads": "1"})


@pytest.fixture(scope="module")
def built_in_pair(tmp_path_factory):
    """`PAIR` from the built-in generator (`_write_clip`), with synth's `dataset.json` flip
    info: 2 × 48 training and 2 × 24 test clips, as a manifest and as shards."""
    from vidlab.data.parallel import parallel_map
    from vidlab.data.shards import shard_dataset
    from vidlab.data.synth import DATASET_FILE, FLIP_MAP

    root = tmp_path_factory.mktemp("built-in-pair")
    jobs = []
    for label in PAIR:
        (root / label).mkdir()
        jobs += [(root / label / f"{label}_{i:04d}.mp4", label, i)
                 for i in range(TRAIN_PER_CLASS + TEST_PER_CLASS)]
    parallel_map(_write_clip, jobs, workers=2)
    rows = [{"path": str(path), "label": label,
             "split": "train" if i < TRAIN_PER_CLASS else "test"} for path, label, i in jobs]
    info = {"flip_map": {k: v for k, v in FLIP_MAP.items() if k in PAIR},
            "direction_sensitive": True}
    (root / DATASET_FILE).write_text(json.dumps(info))
    manifest = root / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shard_dataset(manifest, root / "shards", shard_size="200KB", workers=1, progress=False)
    return manifest, root / "shards"


MIN_TOP1, ORDER_SPREAD = 0.75, 0.2
"""Each source's top-1 must reach `MIN_TOP1` (chance is 0.5) and the two may differ by at most
`ORDER_SPREAD`. Measured here with the test's recipe (5 epochs, train.seed 0-3, 48 test clips):
files 1.0/1.0/1.0/1.0, shards 1.0/0.98/0.98/1.0. With 3 epochs one shards run stayed at 0.5 and
without frame differences (10 epochs, the recipe before them) runs from the same files in
another sample order spread over 0.58-0.96: the margins are for that kind of luck."""


def test_training_from_shards_reaches_the_accuracy_of_training_from_files(built_in_pair,
                                                                         tmp_path):
    """The same recipe from files and from shards of the built-in data (`PAIR`) learns it, and
    the two top-1s agree (`MIN_TOP1`, `ORDER_SPREAD`). Frame differences are pinned on (the
    plan's choice for a video ResNet from scratch, pinned so the test does not hang on the
    plan): with them this 18 k-parameter R3D learns the pair in 5 short epochs. fp32 is pinned
    so a CPU with bf16 units trains the same arithmetic. Time reversal (grow <-> shrink) doubles
    the clips the model sees."""
    manifest, shards = built_in_pair
    learn = ["model.name=r3d_tiny", "model.kwargs.widths=[8,8,8,8]", "model.frame_diff=true",
             "train.epochs=5",
             "data.num_frames=8", "data.stride=2", "data.sampling=clips", "data.num_workers=2",
             "data.time_reverse=0.5", "data.reverse_map={grow: shrink, shrink: grow}",
             "train.batch_size=2", "optim.lr=0.005", "optim.weight_decay=0",
             "regularization.label_smoothing=0",
             "ema.enabled=false", "train.plots=false", "train.amp=off"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        files = fit(tiny_config(manifest, tmp_path / "files", *learn)).metrics["test"]
        streamed = fit(tiny_config(shards, tmp_path / "shards", *learn)).metrics["test"]
    finally:
        torch.set_num_threads(threads)
    n = 2 * TEST_PER_CLASS
    assert files["num_clips"] == streamed["num_clips"] == n
    assert min(files["top1"], streamed["top1"]) >= MIN_TOP1, (files, streamed)
    assert abs(files["top1"] - streamed["top1"]) <= ORDER_SPREAD, (files, streamed)
