"""FSDP2 under `torchrun` with 2 CPU processes (gloo): an hf: model sharded per block, with
activation checkpointing, killed with SIGKILL mid-epoch and resumed from its distributed
(DCP) checkpoint, ends with the weights of a 1-process run with the same global batch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import torch
from tests.foundation.conftest import QUICK

from vidlab.train.checkpoint import load_checkpoint

SAME = ["ema.enabled=false", "train.deterministic=true", "train.checkpoint_every=1",
        "train.early_stopping=null", "train.plots=false", "data.mixup_alpha=0.0",
        "optim.lr=5e-3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(model: str, data, out, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node",
            "2", "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
            "-m", "vidlab", "train", "--model", model, "--data", str(data), "--out", str(out),
            "--epochs", "2", "--json"]
    for item in [*QUICK, *SAME, "train.batch_size=2", "train.strategy=fsdp",
                 "train.activation_checkpointing=true", *extra]:
        args += ["--set", item]
    return args


def _full_weights(run) -> dict[str, torch.Tensor]:
    """The model weights of a run's last FSDP checkpoint, unsharded (DCP → torch.save)."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["model"] is None and state["sharded"]  # no gathered pickle, only shards
    dcp_to_torch_save(run / state["sharded"], run / "full.pt")
    return torch.load(run / "full.pt", weights_only=True)["model"]


def test_fsdp_run_killed_mid_epoch_resumes_to_the_one_process_weights(videomae_dir,
                                                                      motion_manifest, tmp_path):
    from tests.foundation.conftest import train_cli

    env = {**os.environ, "VIDLAB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "fsdp"
    model = f"hf:{videomae_dir}"
    proc = subprocess.Popen(_torchrun(model, motion_manifest, out), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.is_file():
            state = load_checkpoint(ckpt)
            if state["step"] >= 2 and state["batch_in_epoch"] > 0:
                break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    # torchrun starts each rank in its own session: kill the ranks, then the launcher
    for rank in psutil.Process(proc.pid).children(recursive=True):
        rank.send_signal(signal.SIGKILL)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    killed_at = load_checkpoint(ckpt)
    assert killed_at["batch_in_epoch"] > 0 and killed_at["epoch"] < 2  # mid-epoch
    assert killed_at["world_size"] == 2

    resumed = subprocess.run([*_torchrun(model, motion_manifest, out), "--resume"], env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout[resumed.stdout.index("{"):])
    assert summary["steps"] > killed_at["step"]
    assert len(list((out / "checkpoints").glob("last-*.dcp"))) == 1  # older shards cleaned up

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train_cli(model, motion_manifest, tmp_path / "one", *SAME, "train.batch_size=4")
    finally:
        torch.set_num_threads(threads)
    one = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.pt")
    assert one["step"] == summary["steps"] == single["steps"]
    sharded = _full_weights(out)
    assert set(sharded) == set(one["model"])
    for key, value in one["model"].items():
        torch.testing.assert_close(sharded[key], value, atol=2e-4, rtol=1e-3, msg=key)
    # every test clip was evaluated once, by the best weights re-sharded from the bundle
    assert summary["test"]["num_clips"] == single["test"]["num_clips"]
