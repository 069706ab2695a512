"""Does the self-configured default fit each dataset? Test top-1 of `vidlab train`'s plan next
to today's fixed defaults (and other fixed settings), trained on the same split with the same
budget, one dataset after the other.

    python benchmarks/recipe.py --out /tmp/recipe                    # all six datasets, seed 0
    python benchmarks/recipe.py --out /tmp/recipe --datasets camera,long --budget time

Settings compared (each a plain `vidlab train` run; `--set` lists in SETTINGS):
  default   today's fixed defaults: `plan.auto=false` (16 frames at stride 2, 64 px, 3x1 views)
  whole     one fixed alternative: 16 frames spread over the whole clip (TSN-style segments)
  plan      the self-configured default (nothing set: the plan decides)
  flip      the plan with the label-aware flip of name-read mirror pairs turned on
  nodiff    the plan without frame differences beside the frames (`model.frame_diff=false`)
  + the well-chosen fixed setting of a dataset (FIXED), where one is needed

Budget. `--budget work` (default) gives every run the training work that the default 9-minute
budget did on an idle machine of this kind (the quickstart measurement, docs/train.md: 8960
clips at 16x64x64 in 8.2 min of training), i.e. `REFERENCE_CLIPS` clips at the default input,
divided by each setting's compute per clip (FLOPs of its input relative to 16x64x64): a run
with 3x the compute per clip gets a third of the epochs. This keeps the comparison fair on a
machine shared with other jobs, where a wall-clock budget gives whoever runs during a busy
minute fewer steps. `--budget time` uses `train.max_minutes` (`--minutes`, default 9) instead:
the real default, fair only on an idle machine. `--work-scale F` gives every run F times the
work and `--per-class N` makes every dataset with N clips per class (quick comparisons on a busy
machine; not the default budget); `--train-seed N` trains every run with `train.seed=N` (same
data and split: the run-to-run spread of a setting). Results go to OUT/results.jsonl as they come
(an interrupted benchmark resumes after the last finished run).

Held out: the rules were developed on `--seed 1` datasets; the published table is seed 0.
A split's test set is small (36-81 clips: one clip is 1-3 points), so `--fresh N` also makes N
clips per class of each dataset with another seed (`seed + 2`, never trained or tuned on) and
evaluates every run's best bundle on them with the run's own test views (`fresh_top1`); it can
be added after the runs (finished rows are evaluated, not retrained).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_data import DATASETS, make_dataset  # noqa: E402

REFERENCE_CLIPS = 9800
"""Training clips (16x64x64) of the default 9-minute budget on an idle 2-core machine:
the quickstart trained 20 epochs x 448 clips = 8960 in 8.2 minutes, so 9 minutes ~ 9800."""
SETTINGS: dict[str, list[str]] = {
    "default": ["plan.auto=false"],
    "whole": ["plan.auto=false", "data.sampling=segments"],
    "plan": [],
    "flip": ["data.hflip=0.5"],
    "nodiff": ["model.frame_diff=false"],
}
FIXED: dict[str, tuple[str, list[str]]] = {
    "small": ("16x2 clips at 128 px", ["plan.auto=false", "data.crop_size=128",
                                       "data.short_side=146"]),
}
"""Further fixed settings where the ones above may not be the best a person would pick."""


def input_cost(model: str, frames: int, size: int, **kwargs: Any) -> float:
    """FLOPs per clip of `model` (built with `kwargs`) at frames×size² relative to the plain
    model at 16×64×64."""
    from vidlab.models import create
    from vidlab.models.flops import count_gflops

    net = create(model, num_classes=2, num_frames=frames, **kwargs)
    ref = create(model, num_classes=2, num_frames=16)
    return count_gflops(net, frames, size) / count_gflops(ref, 16, 64)


def run_one(name: str, setting: str, overrides: list[str], manifest: Path, out: Path,
            budget: str, minutes: float, work_scale: float = 1.0) -> dict[str, Any]:
    """Train one setting on one dataset; returns the row of the results table."""
    from vidlab.config import load_config
    from vidlab.data.fingerprint import FINGERPRINT_FILE
    from vidlab.train import fit
    from vidlab.train.config import TrainConfig
    from vidlab.train.plan import apply_plan, plan_for
    from vidlab.train.run import model_kwargs, resolve_config

    run_dir = _run_dir(out, name, setting)
    base = [f"dataset.path={manifest}", f"out={run_dir}", f"data.cache={out / 'cache'}",
            "train.tensorboard=false", *overrides]
    cfg = load_config(TrainConfig, None, base)
    data = _split(manifest)
    run_dir.mkdir(parents=True, exist_ok=True)
    shared_fp = out / "fingerprints" / f"{name}.json"
    if shared_fp.is_file() and not (run_dir / FINGERPRINT_FILE).is_file():
        (run_dir / FINGERPRINT_FILE).write_text(shared_fp.read_text())
    planned = cfg
    if cfg.plan.auto:  # the input size decides the work budget, so plan first
        plan = plan_for(cfg, data["train"], data["labels"], run_dir / FINGERPRINT_FILE)
        planned = apply_plan(cfg, plan)
        shared_fp.parent.mkdir(parents=True, exist_ok=True)
        shared_fp.write_text(json.dumps(plan.fingerprint))
    resolved = resolve_config(planned, data["train"])
    d = resolved.data
    shape = {k: v for k, v in model_kwargs(resolved).items() if k != "num_frames"}
    cost = input_cost(resolved.model.name, d.num_frames, d.crop_size, **shape)
    if budget == "work":
        epochs = max(1, round(work_scale * REFERENCE_CLIPS / (cost * len(data["train"]))))
        cfg = load_config(TrainConfig, None, [*base, f"train.epochs={epochs}",
                                              "train.max_minutes=null"])
    else:
        cfg = load_config(TrainConfig, None, [*base, f"train.max_minutes={minutes}"])
    start = time.perf_counter()
    result = fit(cfg, overwrite=True, say=lambda _m: None)
    m = result.metrics
    test = m.get("test") or m.get("val") or {}
    return {"dataset": name, "setting": setting, "overrides": overrides,
            "test_top1": test.get("top1"), "test_clips": test.get("num_clips"),
            "views": test.get("views"), "epochs": m.get("epochs"), "steps": m.get("steps"),
            "train_minutes": round(m.get("train_minutes", 0.0), 2),
            "wall_minutes": round((time.perf_counter() - start) / 60, 2),
            "cost_per_clip": round(cost, 2),
            "input": {"sampling": d.sampling, "frames": d.num_frames, "stride": d.stride,
                      "target_fps": d.target_fps, "crop": d.crop_size,
                      "hflip": d.hflip, "flip_pairs": _pairs(d.flip_map),
                      "frame_diff": resolved.model.frame_diff}}


def _run_dir(out: Path, name: str, setting: str) -> Path:
    return out / "runs" / name / setting


def fresh_manifest(name: str, out: Path, seed: int, per_class: int) -> Path:
    """`per_class` clips per class of dataset `name` made with `seed`, every one a test clip."""
    return _dataset_manifest(name, out / "fresh" / f"{name}-seed{seed}-{per_class}", seed,
                             per_class, split="test")


def fresh_top1(run_dir: Path, manifest: Path) -> tuple[float, int]:
    """Test top-1 of the run's best bundle on `manifest`, with the run's own test views."""
    from vidlab.bundle import load_bundle
    from vidlab.data.manifest import read_manifest
    from vidlab.train.evaluation import data_config_of, evaluate

    bundle = load_bundle(run_dir / "best.vidlab")
    views = tuple(data_config_of(bundle).test_views)
    result = evaluate(bundle, read_manifest(manifest), views)
    return float(result.top1), int(result.num_clips)


def _pairs(fmap: dict[str, str] | None) -> int | None:
    return None if fmap is None else sum(1 for k, v in fmap.items() if k != v) // 2


def _split(manifest: Path) -> dict[str, Any]:
    from vidlab.data.manifest import labels_of, read_manifest

    entries = read_manifest(manifest)
    return {"train": [e for e in entries if e.get("split") == "train"],
            "labels": labels_of(entries)}


def prepare(name: str, out: Path, seed: int, per_class: int | None = None) -> Path:
    """Make the dataset and split it once (scan, clean, 70/15/15): every setting uses it."""
    count = min(per_class, DATASETS[name].per_class) if per_class else None
    return _dataset_manifest(name, out / "data" / name, seed, count)


def _dataset_manifest(name: str, root: Path, seed: int, per_class: int | None,
                      split: str | None = None) -> Path:
    """`root.jsonl`: dataset `name` made under `root`, scanned and cleaned, split 70/15/15 —
    or every clip in `split` when given. Made once; later calls return the file."""
    from vidlab.data.manifest import write_manifest
    from vidlab.train.dataset import prepare_data

    manifest = root.with_suffix(".jsonl")
    if not manifest.is_file():
        data = prepare_data(make_dataset(name, root, seed=seed, per_class=per_class),
                            say=lambda _m: None)
        entries = data.all_entries()
        write_manifest([dict(e, split=split) for e in entries] if split else entries, manifest)
    return manifest


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per dataset, test top-1 per setting (split test / fresh held-out)."""
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    names = list(dict.fromkeys(r["dataset"] for r in rows))
    lines = ["| dataset | test clips (split / fresh) | " + " | ".join(settings) + " |",
             "|---|---|" + "---|" * len(settings)]
    for name in names:
        mine = [r for r in rows if r["dataset"] == name]
        fresh = next((r["fresh_clips"] for r in mine if "fresh_clips" in r), "-")
        cells = [f"{mine[0]['test_clips']} / {fresh}"]
        for s in settings:
            r = next((r for r in mine if r["setting"] == s), None)
            cells.append("-" if r is None else f"{r['test_top1']:.3f} / "
                         f"{_score(r.get('fresh_top1'))} ({r['epochs']} ep)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _score(top1: float | None) -> str:
    return "-" if top1 is None else f"{top1:.3f}"


def add_fresh(rows: list[dict[str, Any]], name: str, args: argparse.Namespace,
              results: Path) -> None:
    """Evaluate dataset `name`'s finished runs on a fresh held-out set; rewrite the results."""
    todo = [r for r in rows if r["dataset"] == name and "fresh_top1" not in r
            and (_run_dir(args.out, name, r["setting"]) / "best.vidlab").exists()]
    if not todo:
        return
    manifest = fresh_manifest(name, args.out, args.seed + 2, args.fresh)
    for r in todo:
        r["fresh_top1"], r["fresh_clips"] = fresh_top1(_run_dir(args.out, name, r["setting"]),
                                                       manifest)
        r["fresh_seed"] = args.seed + 2
        results.write_text("".join(json.dumps(x) + "\n" for x in rows))
        print(f"{name:7s} {r['setting']:8s} fresh top-1 {r['fresh_top1']:.3f} "
              f"({r['fresh_clips']} clips, seed {args.seed + 2})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--settings", default=None, help="comma list (default: all that apply)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-seed", type=int, default=None,
                    help="`train.seed` of every run (data and split unchanged): repeat a "
                         "setting to see the run-to-run spread (use another --out)")
    ap.add_argument("--budget", choices=("work", "time"), default="work")
    ap.add_argument("--minutes", type=float, default=9.0)
    ap.add_argument("--work-scale", type=float, default=1.0,
                    help="fraction of the default budget's work (quick, less accurate runs)")
    ap.add_argument("--per-class", type=int, default=None,
                    help="at most this many clips per class (default: each dataset's own; "
                         "fewer: a quicker, noisier benchmark)")
    ap.add_argument("--fresh", type=int, default=0, metavar="N",
                    help="also evaluate every run on N clips per class made with seed + 2")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] \
        if results.is_file() else []
    for name in args.datasets.split(","):
        manifest = prepare(name, args.out, args.seed, args.per_class)
        settings = dict(SETTINGS)
        if name in FIXED:
            settings["fixed"] = FIXED[name][1]
        for setting, overrides in settings.items():
            if args.settings and setting not in args.settings.split(","):
                continue
            if any(r["dataset"] == name and r["setting"] == setting for r in rows):
                continue
            if args.train_seed is not None:
                overrides = [*overrides, f"train.seed={args.train_seed}"]
            row = run_one(name, setting, overrides, manifest, args.out, args.budget,
                          args.minutes, args.work_scale)
            row.update(work_scale=args.work_scale, per_class=args.per_class,
                       train_seed=args.train_seed)
            rows.append(row)
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row) if args.json else
                  f"{name:7s} {setting:8s} test top-1 {row['test_top1']:.3f}  "
                  f"{row['epochs']} epochs, {row['train_minutes']:.1f} min", flush=True)
        if args.fresh:
            add_fresh(rows, name, args, results)
    if not args.json:
        print(table(rows))


if __name__ == "__main__":
    main()
