"""Training throughput: clips/s and achieved GFLOP/s against this machine's fp32 matmul peak.

Both are measured in the same run (the peak first, with the same thread count), so the ratio
holds on a busy machine too. Training FLOPs per clip are taken as 3× the forward FLOPs (forward
+ backward for inputs + backward for weights), the usual convention.

    python benchmarks/train.py                       # r2plus1d_tiny, 16x64x64, batch 16
    python benchmarks/train.py --model x3d_tiny --steps 20 --json
    python benchmarks/train.py --data ROOT           # also the full pipeline with real decoding

Phases: `compute` = forward+backward+AdamW step on random clips already in memory (the model's
ceiling); `pipeline` = the same loop fed by the real DataLoader from `--data` (decode + augment).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def train_steps(model, batches, steps: int, memory_format, amp: torch.dtype | None = None) -> float:
    """Clips/s of `steps` optimizer steps (after 2 warm-up steps) over `batches`, in fp32 or
    under `amp` autocast (the trainer's loss in fp32 either way)."""
    from vidlab.train.config import OptimConfig
    from vidlab.train.optim import build_optimizer

    opt = build_optimizer(model, OptimConfig())
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    model.train()
    it = iter(batches)
    clips, start = 0, 0.0
    for i in range(steps + 2):
        if i == 2:
            clips, start = 0, time.perf_counter()
        x, y = next(it)
        x = x.contiguous(memory_format=memory_format)
        with torch.autocast(x.device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        clips += int(y.shape[0])
    return clips / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="r2plus1d_tiny")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--data", default=None, help="dataset folder/manifest for the pipeline phase")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from vidlab.models import create, model_entry
    from vidlab.models.flops import count_gflops
    from vidlab.models.tuning import pick_memory_format
    from vidlab.train.hardware import prepare_cpu
    from vidlab.train.peaks import matmul_peaks

    if args.threads:
        torch.set_num_threads(args.threads)
    prepare_cpu()
    entry = model_entry(args.model)
    frames, size = args.frames or entry.num_frames, args.size or entry.size
    peak = matmul_peaks(dtypes=("fp32",)).fp32
    model = create(args.model, num_classes=8, num_frames=frames)
    fwd = count_gflops(model, frames, size)
    shape = (args.batch_size, 3, frames, size, size)
    fmt = pick_memory_format(model, torch.randn(min(4, args.batch_size), *shape[1:]), train=True,
                             iters=1)
    model = model.to(memory_format=fmt)

    def random_batches():
        g = torch.Generator().manual_seed(0)
        while True:
            yield torch.randn(*shape, generator=g), torch.randint(0, 8, (shape[0],), generator=g)

    rows = []
    cps = train_steps(model, random_batches(), args.steps, fmt)
    rows.append(("compute", cps))
    if args.data:
        from vidlab.data.config import DataConfig
        from vidlab.data.loader import make_loader
        from vidlab.data.manifest import labels_of, load_entries

        entries = load_entries(args.data)
        labels = labels_of(entries)
        cfg = DataConfig(num_frames=frames, crop_size=size, short_side=round(size * 8 / 7))
        loader = make_loader(entries, labels, cfg, train=True, batch_size=args.batch_size)

        def real_batches():
            epoch = 0
            while True:
                loader.set_epoch(epoch)
                yield from loader
                epoch += 1

        rows.append(("pipeline", train_steps(model, real_batches(), args.steps, fmt)))

    result = {"model": args.model, "input": f"{frames}x{size}x{size}", "batch": args.batch_size,
              "threads": torch.get_num_threads(), "memory_format": str(fmt).split(".")[-1],
              "fwd_gflops_per_clip": round(fwd, 3), "matmul_peak_gflops": round(peak, 1),
              "phases": {}}
    for name, clips_per_s in rows:
        achieved = clips_per_s * 3 * fwd
        result["phases"][name] = {"clips_per_s": round(clips_per_s, 2),
                                  "gflops": round(achieved, 1),
                                  "fraction_of_peak": round(achieved / peak, 3)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.model} {result['input']} batch {args.batch_size}, {result['threads']} threads, "
          f"{result['memory_format']}; {fwd:.3f} GFLOP/clip forward; fp32 matmul peak "
          f"{peak:.1f} GFLOP/s")
    print(f"{'phase':<10}{'clips/s':>10}{'GFLOP/s':>10}{'of peak':>10}")
    for name, r in result["phases"].items():
        print(f"{name:<10}{r['clips_per_s']:>10.2f}{r['gflops']:>10.1f}{r['fraction_of_peak']:>10.1%}")


if __name__ == "__main__":
    main()
