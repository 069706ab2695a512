"""`torchrun --nproc-per-node 2 -m vidlab train` (gloo on CPU): replicas stay identical and
match a 1-process run with the same global batch.

BatchNorm would make the comparison meaningless (each rank normalises with its own half batch,
and SyncBatchNorm is CUDA-only), so both runs keep BN frozen (`regularization.freeze_bn`), and
dropout, mixup and EMA are off. Every sample's augmentation is seeded by (seed, epoch, index),
and the sharded sampler gives the two ranks together exactly the 1-process run's batch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch
from tests.train.conftest import TINY, tiny_config

from vidlab.train import fit
from vidlab.train.checkpoint import load_checkpoint

SAME = ["regularization.freeze_bn=true", "regularization.drop_rate=0.0", "ema.enabled=false",
        "train.epochs=2", "train.plots=false", "train.deterministic=true"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(motion_manifest, tmp_path):
    out = tmp_path / "ddp"
    args = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node",
            "2", "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
            "-m", "vidlab", "train", "--data", str(motion_manifest), "--out", str(out), "--json"]
    for item in [*TINY, *SAME, "train.batch_size=2"]:
        args += ["--set", item]
    env = {**os.environ, "VIDLAB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    digests = summary["param_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # both ranks: identical parameters

    single = fit(tiny_config(motion_manifest, tmp_path / "one", *SAME, "train.batch_size=4"))
    ddp_state = load_checkpoint(out / "checkpoints" / "last.pt")
    one_state = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.pt")
    assert ddp_state["step"] == one_state["step"] == single.metrics["steps"]
    assert ddp_state["world_size"] == 2
    for k, v in one_state["model"].items():
        assert torch.allclose(v.float(), ddp_state["model"][k].float(), atol=2e-4, rtol=1e-3), k
    # evaluation was gathered over both ranks: every test clip counted once
    manifest = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert summary["test"]["num_clips"] == sum(e["split"] == "test" for e in manifest)
    assert summary["test"]["top1"] == single.metrics["test"]["top1"]
