"""`--resume` after `kill -9` mid-epoch ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch
from tests.train.conftest import TINY, tiny_config

from vidlab.train import fit
from vidlab.train.checkpoint import load_checkpoint
from vidlab.train.run import load_run_config

EXACT = ["train.deterministic=true", "train.checkpoint_every=1", "train.batch_size=4",
         "train.epochs=2", "data.mixup_alpha=0.4", "ema.warmup_steps=2", "train.plots=false"]


def _kill_mid_run(data, out) -> dict:
    """Start `python -m vidlab train`, SIGKILL it once a mid-epoch checkpoint exists."""
    args = [sys.executable, "-m", "vidlab", "train", "--data", str(data), "--out", str(out)]
    for item in [*TINY, *EXACT]:
        args += ["--set", item]
    # float sums depend on the thread count: every run of this test uses one thread
    env = {**os.environ, "VIDLAB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 240
    state = None
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.is_file():
            state = load_checkpoint(ckpt)
            if state["step"] >= 2 and state["batch_in_epoch"] > 0:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    return load_checkpoint(ckpt)


def test_resume_after_sigkill_mid_epoch_matches_an_uninterrupted_run(motion_manifest, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _check_resume(motion_manifest, tmp_path)
    finally:
        torch.set_num_threads(threads)


def _check_resume(motion_manifest, tmp_path):
    reference = fit(tiny_config(motion_manifest, tmp_path / "ref", *EXACT))
    assert reference.metrics["steps"] >= 4

    killed_at = _kill_mid_run(motion_manifest, tmp_path / "run")
    assert 0 < killed_at["step"] < reference.metrics["steps"]
    assert killed_at["batch_in_epoch"] > 0 or killed_at["epoch"] > 0
    assert not (tmp_path / "run" / "best.vidlab").exists() or killed_at["epoch"] > 0

    cfg = load_run_config(tmp_path / "run")
    resumed = fit(cfg, resume=True)

    ref_state = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    new_state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert new_state["step"] == ref_state["step"]
    for part in ("model",):
        for k, v in ref_state[part].items():
            assert torch.allclose(v.float(), new_state[part][k].float(), atol=1e-6, rtol=0), k
    for k, v in ref_state["ema"]["module"].items():
        assert torch.allclose(v.float(), new_state["ema"]["module"][k].float(), atol=1e-6), k
    assert resumed.metrics["test"]["top1"] == reference.metrics["test"]["top1"]
    # the log of the resumed run reads like the uninterrupted one (no duplicated steps)
    ref_log = [r for r in _records(tmp_path / "ref") if r["phase"] == "train"]
    new_log = [r for r in _records(tmp_path / "run") if r["phase"] == "train"]
    assert [r["step"] for r in new_log] == [r["step"] for r in ref_log]
    assert [round(r["loss"], 5) for r in new_log] == [round(r["loss"], 5) for r in ref_log]


def _records(run):
    import json

    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_with_nothing_to_resume_says_so_and_starts_a_new_run(motion_manifest, tmp_path):
    """Allowed (a scheduler can pass --resume on every launch), but never silently."""
    messages: list[str] = []
    result = fit(tiny_config(motion_manifest, tmp_path / "new", "train.epochs=1"), resume=True,
                 say=messages.append)
    assert any("no checkpoint" in m and "starting a new run" in m for m in messages)
    assert result.metrics["epochs"] == 1 and (tmp_path / "new" / "best.vidlab").is_dir()
