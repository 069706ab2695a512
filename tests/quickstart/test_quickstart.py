"""`vidlab quickstart` runs the whole main job, and a re-run reuses every finished step."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from vidlab.bundle import load_bundle
from vidlab.quickstart import run

# what the steps measure is tested in tests/accel and tests/train: here, one latency round, no
# peak-memory processes and no memory-format probe keep the whole job quick, and a ~10 k-parameter
# R(2+1)D on 4×32² clips (the training tests' size, in place of the plan's 0.8 M on 16×64²) keeps
# every step's forward passes (training, evaluation, ONNX export, INT8 calibration, the
# latency rounds) cheap
QUICK = {"overrides": ["train.memory_format=contiguous", "model.kwargs.widths=[4,8,8,8]",
                       "data.num_frames=4", "data.stride=3", "data.crop_size=32",
                       "data.short_side=36", "data.test_views=[1,1]"],
         "timing_rounds": 1, "rss": False}


def test_quickstart_runs_every_step_then_reuses_them(tmp_path):
    out = tmp_path / "qs"
    messages: list[str] = []
    # one PyTorch thread: on a small machine shared with other work, two threads on this tiny
    # model wait on each other far longer than they compute
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run(out, per_class=3, train_minutes=0.05, say=messages.append, **QUICK)
    finally:
        torch.set_num_threads(threads)

    assert list(result.steps) == ["data", "prepare", "train", "evaluate", "optimize", "bench"]
    optimized = load_bundle(result.steps["optimize"]["bundle"])
    assert optimized.has("model.onnx")
    assert 0.0 <= result.steps["evaluate"]["test"]["top1"] <= 1.0
    rows = json.loads((out / "bench.json").read_text())
    assert rows[0]["variant"].startswith("pytorch") and len(rows) >= 3
    assert result.serve_command == f"vidlab serve {optimized.path}"
    config = (out / "run" / "config.yaml").read_text()
    assert "memory_format: contiguous" in config and "crop_size: 32" in config  # overrides

    again: list[str] = []
    run(out, per_class=3, train_minutes=0.05, say=again.append, **QUICK)
    assert sum("reusing" in m for m in again) == 6


def test_quickstart_cli_json_reports_the_reused_run(tmp_path):
    out = tmp_path / "qs"
    steps = out / "steps"
    steps.mkdir(parents=True)
    # a finished run is only read back, so fake step records are enough to drive the CLI
    records = {"data": {}, "prepare": {}, "train": {"bundle": "b"},
               "evaluate": {"test": {"top1": 1.0, "top5": 1.0, "mean_class_acc": 1.0,
                                     "num_clips": 4}},
               "optimize": {"bundle": str(out / "model.vidlab")}, "bench": {"rows": []}}
    for name, record in records.items():
        (steps / f"{name}.json").write_text(json.dumps(record))
    proc = subprocess.run([sys.executable, "-m", "vidlab", "quickstart", "--out", str(out),
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["serve_command"] == f"vidlab serve {out / 'model.vidlab'}"
    assert summary["steps"]["evaluate"]["test"]["top1"] == 1.0
