"""`vidlab quickstart` runs the whole main job, and a re-run reuses every finished step."""

from __future__ import annotations

import json
import subprocess
import sys

from vidlab.bundle import load_bundle
from vidlab.quickstart import run

# what the steps measure is tested in tests/accel and tests/train: here, one latency round, no
# peak-memory processes and no memory-format probe keep the whole job quick
QUICK = {"overrides": ["train.memory_format=contiguous"], "timing_rounds": 1, "rss": False}


def test_quickstart_runs_every_step_then_reuses_them(tmp_path):
    out = tmp_path / "qs"
    messages: list[str] = []
    result = run(out, per_class=3, train_minutes=0.05, say=messages.append, **QUICK)

    assert list(result.steps) == ["data", "prepare", "train", "evaluate", "optimize", "bench"]
    optimized = load_bundle(result.steps["optimize"]["bundle"])
    assert optimized.has("model.onnx")
    assert 0.0 <= result.steps["evaluate"]["test"]["top1"] <= 1.0
    rows = json.loads((out / "bench.json").read_text())
    assert rows[0]["variant"].startswith("pytorch") and len(rows) >= 3
    assert result.serve_command == f"vidlab serve {optimized.path}"
    assert "memory_format: contiguous" in (out / "run" / "config.yaml").read_text()  # overrides

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
