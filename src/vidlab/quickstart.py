"""`vidlab quickstart`: the whole main job on the built-in dataset, with no download.

make the dataset → scan, clean, split → train → evaluate → optimize (ONNX/INT8) → bench → say
how to serve it. Each step records its result in `OUT/steps/<name>.json` when it finishes, so a
re-run reuses finished steps and an interrupted training resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PER_CLASS = 80
"""Built-in clips per class: 448 training clips, enough for the default recipe's ≥ 95 %."""
DEFAULT_OUT = "vidlab-quickstart"


@dataclass
class QuickstartResult:
    out: Path
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def serve_command(self) -> str:
        return f"vidlab serve {self.steps['optimize']['bundle']}"

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "steps": self.steps, "serve_command": self.serve_command,
                "page": "http://127.0.0.1:8000/"}


class StepRunner:
    """Runs named steps once: a finished step's JSON record is reused on the next run."""

    def __init__(self, out: Path, say: Callable[[str], None]):
        self.dir = out / "steps"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.say = say
        self.records: dict[str, dict[str, Any]] = {}

    def run(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        marker = self.dir / f"{name}.json"
        if marker.is_file():
            record = json.loads(marker.read_text())
            self.say(f"[{name}] done earlier, reusing ({marker})")
        else:
            self.say(f"[{name}] ...")
            start = time.perf_counter()
            record = fn()
            record["seconds"] = round(time.perf_counter() - start, 1)
            marker.write_text(json.dumps(record, indent=2, default=str))
            self.say(f"[{name}] finished in {record['seconds']:.0f} s")
        self.records[name] = record
        return record


def run(out: str | Path = DEFAULT_OUT, per_class: int = DEFAULT_PER_CLASS, seed: int = 0,
        train_minutes: float = 8.0, model: str | None = None,
        say: Callable[[str], None] = print, overrides: list[str] | None = None,
        timing_rounds: int = 5, rss: bool = True) -> QuickstartResult:
    """Run (or resume) the main job into `out`; returns what each step made and measured.

    `overrides` are training `KEY=VALUE` settings (as `vidlab train --set`) applied over the
    quickstart's; `timing_rounds` and `rss` go to `optimize`/`bench` (fewer latency rounds, no
    per-variant peak-memory process) for a quicker, rougher speed table.
    """
    from vidlab.accel import bench, optimize
    from vidlab.config import load_config
    from vidlab.data.clean import clean
    from vidlab.data.manifest import scan, write_manifest
    from vidlab.data.samplers import views_label
    from vidlab.data.split import split
    from vidlab.data.synth import synth
    from vidlab.train import evaluate, fit
    from vidlab.train.config import TrainConfig

    out = Path(out)
    steps = StepRunner(out, say)
    data_dir, run_dir = out / "data", out / "run"

    def make_data() -> dict[str, Any]:
        synth(data_dir, per_class=per_class, seed=seed)
        return {"root": str(data_dir)}

    def prepare() -> dict[str, Any]:
        scanned = scan(data_dir)
        write_manifest(scanned.entries, out / "manifest.jsonl")
        cleaned = clean(scanned.entries)
        (out / "clean_report.json").write_text(json.dumps(cleaned.to_dict(), indent=2,
                                                          default=str))
        entries = split(cleaned.entries, val=0.15, test=0.15, seed=seed)
        write_manifest(entries, out / "split.jsonl")
        return {"manifest": str(out / "split.jsonl"), "clips": len(entries),
                "dropped": len(scanned.entries) - len(cleaned.entries)}

    def train() -> dict[str, Any]:
        settings: dict[str, Any] = {"dataset": {"path": str(out / "split.jsonl")},
                                    "out": str(run_dir),
                                    "train": {"max_minutes": train_minutes, "seed": seed},
                                    # decoded once into OUT/cache: the tiny model then trains
                                    # without waiting on the decoder
                                    "data": {"cache": str(out / "cache")}}
        if model:
            settings["model"] = {"name": model}
        config = load_config(TrainConfig, overrides=overrides, base=settings)
        resume = (run_dir / "checkpoints" / "last.pt").is_file()
        if resume:
            say(f"[train] resuming the interrupted run in {run_dir}")
        result = fit(config, resume=resume, overwrite=not resume, say=say)
        return {"bundle": str(result.bundle), "metrics": result.metrics}

    def evaluate_step() -> dict[str, Any]:
        result = evaluate(steps.records["train"]["bundle"], str(out / "split.jsonl"),
                          split="test", confusion_png=out / "test_confusion_matrix.png")
        report = result.to_dict()
        test = {k: report[k] for k in ("top1", "top5", "mean_class_acc", "num_clips")}
        return {"test": {**test, "views": views_label(result.views)}}

    def optimize_step() -> dict[str, Any]:
        bundle = optimize(steps.records["train"]["bundle"], out / "model.vidlab", onnx=True,
                          int8=True, data=str(out / "split.jsonl"), overwrite=True,
                          timing_rounds=timing_rounds)
        return {"bundle": str(bundle.path), "metrics": bundle.metrics}

    def bench_step() -> dict[str, Any]:
        rows = bench([steps.records["train"]["bundle"], steps.records["optimize"]["bundle"]],
                     data=str(out / "split.jsonl"), rounds=timing_rounds, rss=rss)
        (out / "bench.json").write_text(json.dumps(rows, indent=2, default=str))
        return {"rows": rows}

    steps.run("data", make_data)
    steps.run("prepare", prepare)
    steps.run("train", train)
    steps.run("evaluate", evaluate_step)
    steps.run("optimize", optimize_step)
    steps.run("bench", bench_step)
    return QuickstartResult(out=out, steps=steps.records)
