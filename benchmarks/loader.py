"""Training clips/s through the DataLoader on the built-in dataset: seek-decode (uncached) vs
the decoded-clip cache vs decoding every frame of each video, as ratios from one run.

    python benchmarks/loader.py                 # 8 clips/class, 2 workers, 2 epochs per mode
    python benchmarks/loader.py --per-class 40 --epochs 3 --json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def run_epochs(entries, labels, config, epochs: int, batch_size: int, decode: str) -> float:
    """Clips per second over `epochs` full passes (worker start-up included, as in training)."""
    from vidlab.data.loader import make_loader

    loader = make_loader(entries, labels, config, train=True, batch_size=batch_size, seed=0,
                         decode=decode)
    clips, t0 = 0, time.perf_counter()
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for x, _ in loader:
            clips += x.shape[0]
    return clips / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, help="dataset folder (default: synth into a temp dir)")
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--short-side", type=int, default=128)
    ap.add_argument("--crop", type=int, default=112)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from vidlab.data.config import DataConfig
    from vidlab.data.manifest import labels_of, load_entries
    from vidlab.data.synth import synth

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or synth(Path(tmp) / "synth", per_class=args.per_class, seed=0)
        entries = load_entries(root)
        labels = labels_of(entries)
        config = DataConfig(num_frames=args.frames, stride=args.stride,
                            short_side=args.short_side, crop_size=args.crop,
                            num_workers=args.workers)
        cached = config.model_copy(update={"cache": str(Path(tmp) / "cache"), "cache_mb": 4096})
        results = {}
        results["uncached"] = run_epochs(entries, labels, config, args.epochs, args.batch_size,
                                         "seek")
        results["cache_fill"] = run_epochs(entries, labels, cached, 1, args.batch_size, "seek")
        results["cached"] = run_epochs(entries, labels, cached, args.epochs, args.batch_size,
                                       "seek")
        results["decode_everything"] = run_epochs(entries, labels, config, args.epochs,
                                                  args.batch_size, "full")
        cache_mb = sum(f.stat().st_size for f in (Path(tmp) / "cache").glob("*.npy")) / 2**20
    base = results["uncached"]
    report = {
        "setup": {"clips": len(entries), "workers": args.workers, "batch_size": args.batch_size,
                  "epochs": args.epochs, "clip": f"{args.frames}x{args.crop}x{args.crop} "
                  f"stride {args.stride}, decoded at short side {args.short_side}",
                  "cache_mb": round(cache_mb, 1)},
        "clips_per_s": {k: round(v, 2) for k, v in results.items()},
        "ratio_vs_uncached": {k: round(v / base, 2) for k, v in results.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{len(entries)} clips, {args.workers} workers, batch {args.batch_size}, "
          f"{report['setup']['clip']}; cache {cache_mb:.0f} MB")
    print(f"{'mode':<20}{'clips/s':>10}{'× uncached':>12}")
    for k, v in results.items():
        print(f"{k:<20}{v:>10.1f}{v / base:>12.2f}")


if __name__ == "__main__":
    main()
