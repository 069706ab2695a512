"""Foundation-model figures in one run: LoRA vs full fine-tuning speed, INT8 ONNX vs fp32 eager.

A small VideoMAE-shaped model (16 frames at 112², 16² patches, tubelets of 2, ViT-tiny width
by default) is built with `transformers` from a random init — nothing is downloaded — and:

1. `throughput`: training clips/s of full fine-tuning vs LoRA (r=8 on query/value, plus the
   head), forward + backward + AdamW step on the same in-memory clips, interleaved rounds;
   with the trainable-parameter fraction of each;
2. `train`: trained on the built-in dataset (`vidlab.data.synth`) with `vidlab.train.fit` for
   `--minutes` (full fine-tuning, the time budget fits the cosine schedule);
3. `accelerate`: `vidlab.accel.optimize` exports it to ONNX and picks an INT8 format by
   measurement; latencies are measured against fp32 eager PyTorch in the same interleaved run;
4. `heldout`: top-1 of fp32 eager, ONNX fp32 and ONNX INT8 on a held-out set generated with
   another seed (never trained or tuned on), and on the run's own test split, 1×1 views.

The bar of issue 19: INT8 ONNX ≥ 2× faster than fp32 eager at ≤ 1 point top-1 lost.

    nice -n 10 python benchmarks/foundation.py --out /tmp/foundation            # ~15 min
    python benchmarks/foundation.py --out /tmp/foundation --minutes 4 --json     # reuses data
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def write_videomae(path: Path, labels: list[str], hidden: int, layers: int, heads: int,
                   frames: int, size: int, patch: int) -> Path:
    """A random-init VideoMAE video classifier saved like a downloaded checkpoint."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    if (path / "config.json").is_file():
        return path
    config = VideoMAEConfig(image_size=size, patch_size=patch, num_frames=frames, tubelet_size=2,
                            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * hidden, use_mean_pooling=True, qv_bias=True,
                            num_labels=len(labels), id2label=dict(enumerate(labels)),
                            label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(0)
    VideoMAEForVideoClassification(config).save_pretrained(path)
    pre = {"image_processor_type": "VideoMAEImageProcessor",
           "size": {"shortest_edge": size * 8 // 7},
           "crop_size": {"height": size, "width": size}, "do_rescale": True,
           "rescale_factor": 1 / 255, "do_normalize": True,
           "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
    (path / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    return path


def throughput(name: str, batch: int, steps: int, rounds: int, lora_r: int) -> dict:
    """Training clips/s of full fine-tuning and LoRA on the same clips, interleaved rounds."""
    from vidlab.models import create
    from vidlab.models.lora import apply_lora, parameter_counts
    from vidlab.train.config import OptimConfig
    from vidlab.train.optim import build_optimizer

    models = {"full": create(name, num_classes=8)}
    models["lora"] = apply_lora(create(name, num_classes=8), r=lora_r, alpha=2 * lora_r)
    spec = models["full"].input_spec()
    clips = torch.randn(batch, 3, spec["num_frames"], spec["size"], spec["size"])
    targets = torch.randint(0, 8, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    optims = {k: build_optimizer(m.train(), OptimConfig(lr=1e-4)) for k, m in models.items()}

    def step(kind: str) -> None:
        loss_fn(models[kind](clips), targets).backward()
        optims[kind].step()
        optims[kind].zero_grad(set_to_none=True)

    for kind in models:  # warm-up
        step(kind)
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for kind in models:
            t = time.perf_counter()
            for _ in range(steps):
                step(kind)
            times[kind].append((time.perf_counter() - t) / (steps * batch))
    out = {}
    for kind, model in models.items():
        best = min(times[kind])
        out[kind] = {"clips_per_s": 1 / best, **parameter_counts(model)}
    out["lora_speedup"] = out["lora"]["clips_per_s"] / out["full"]["clips_per_s"]
    out["setup"] = {"batch": batch, "steps_per_round": steps, "rounds": rounds, "lora_r": lora_r,
                    "clip": list(clips.shape[1:]), "threads": torch.get_num_threads()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("foundation-bench"))
    ap.add_argument("--per-class", type=int, default=40, help="Built-in training clips per class.")
    ap.add_argument("--heldout-per-class", type=int, default=20,
                    help="Held-out clips per class (another seed; never trained on).")
    ap.add_argument("--minutes", type=float, default=8.0, help="Training time budget.")
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3, help="Optimizer steps per throughput round.")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from vidlab.accel import optimize
    from vidlab.bundle import load_bundle
    from vidlab.config import load_config
    from vidlab.data.manifest import load_entries
    from vidlab.data.synth import LABELS, synth
    from vidlab.train import TrainConfig, evaluate, fit

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    say = (lambda *_: None) if args.json else print
    report: dict = {"model": {k: getattr(args, k) for k in
                              ("hidden", "layers", "heads", "frames", "size", "patch")}}

    data = args.out / "data"
    if not (data / "dataset.json").is_file():
        synth(data, per_class=args.per_class, seed=0, overwrite=True)
    heldout = args.out / "heldout"
    if not (heldout / "dataset.json").is_file():
        synth(heldout, per_class=args.heldout_per_class, seed=12345, overwrite=True)
    ckpt = write_videomae(args.out / "videomae-small", list(LABELS), args.hidden, args.layers,
                          args.heads, args.frames, args.size, args.patch)
    name = f"hf:{ckpt}"

    say("[throughput] full fine-tuning vs LoRA ...")
    report["throughput"] = throughput(name, args.batch, args.steps, args.rounds, args.lora_r)

    run = args.out / "run"
    bundle = run / "best.vidlab"
    if not bundle.is_dir():
        say(f"[train] {args.minutes:g} min on {data} ...")
        cfg = load_config(TrainConfig, None, [
            f"model.name={name}", f"dataset.path={data}", f"out={run}", "train.epochs=200",
            f"train.max_minutes={args.minutes}", f"train.batch_size={args.batch}",
            "optim.lr=1e-3", "schedule.warmup_epochs=2", "train.early_stopping=null",
            "train.tensorboard=false", "data.test_views=[1,1]"])
        fit(cfg, overwrite=True, say=say)
    trained = load_bundle(bundle)
    report["train"] = {k: trained.metrics.get("train", {}).get(k) for k in
                       ("epochs", "steps", "train_minutes")}

    say("[accelerate] ONNX export + INT8 chosen by measurement ...")
    fast = optimize(bundle, args.out / "int8.vidlab", onnx=True, int8=True, data=run /
                    "manifest.jsonl", threads=args.threads, overwrite=True)
    variants = fast.metrics["variants"]
    base = fast.metrics["optimize"]["source_torch"]
    report["latency"] = {"fp32_eager": base, **variants,
                         "int8_method": fast.metrics["optimize"]["int8"]["chosen"]}

    say("[heldout] top-1 per runtime ...")
    manifest = load_entries(run / "manifest.jsonl")
    sets = {"heldout": load_entries(heldout),
            "test": [e for e in manifest if e.get("split") == "test"]}
    report["top1"] = {}
    for set_name, entries in sets.items():
        row = {"clips": len(entries)}
        for label, (b, rt) in {"fp32_eager": (bundle, "torch"), "onnx_fp32": (fast.path, "onnx"),
                               "onnx_int8": (fast.path, "onnx-int8")}.items():
            row[label] = evaluate(b, entries, views=(1, 1), runtime=rt).top1
        row["int8_points_lost"] = 100 * (row["fp32_eager"] - row["onnx_int8"])
        report["top1"][set_name] = row

    speedup = base["latency_ms_p50"] / variants["onnx-int8"]["latency_ms_p50"]
    lost = max(r["int8_points_lost"] for r in report["top1"].values())
    report["bar"] = {"int8_speedup_vs_fp32_eager": speedup, "max_points_lost": lost,
                     "met": speedup >= 2.0 and lost <= 1.0}
    (args.out / "report.json").write_text(json.dumps(report, indent=2, default=float))
    if args.json:
        print(json.dumps(report, indent=2, default=float))
        return
    t = report["throughput"]
    print(f"\nmodel: VideoMAE-shaped {args.hidden}-d × {args.layers} blocks, {args.frames}×"
          f"{args.size}², {trained.metrics.get('params', 0) / 1e6:.2f} M params; "
          f"{args.threads} threads")
    full, lora = t["full"], t["lora"]
    print(f"training (batch {args.batch}): full {full['clips_per_s']:.2f} clips/s "
          f"({100 * full['trainable_fraction']:.1f} % trainable) | LoRA r={args.lora_r} "
          f"{lora['clips_per_s']:.2f} clips/s ({100 * lora['trainable_fraction']:.2f} % "
          f"trainable) → {t['lora_speedup']:.2f}×")
    int8 = variants["onnx-int8"]
    print(f"latency batch 1 (p50 ms): fp32 eager {base['latency_ms_p50']:.1f} | ONNX fp32 "
          f"{variants['onnx']['latency_ms_p50']:.1f} | ONNX INT8 "
          f"({report['latency']['int8_method']}) {int8['latency_ms_p50']:.1f} → {speedup:.2f}×; "
          f"size {base['size_mb']:.1f} → {int8['size_mb']:.1f} MB")
    for set_name, row in report["top1"].items():
        print(f"top-1 {set_name} ({row['clips']} clips, 1×1 view): fp32 eager "
              f"{row['fp32_eager']:.4f} | ONNX fp32 {row['onnx_fp32']:.4f} | ONNX INT8 "
              f"{row['onnx_int8']:.4f} ({row['int8_points_lost']:+.2f} points lost)")
    print(f"bar (INT8 ≥ 2× fp32 eager, ≤ 1 point top-1 lost): "
          f"{'met' if report['bar']['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
