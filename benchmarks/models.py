"""Model zoo speed on this machine: parameters, GFLOPs, forward latency (batch 1) and training
throughput (clips/s, batch 8) at each model's default input, for fp32 eager vs
`channels_last_3d` vs `torch.compile`, with achieved GFLOP/s as a fraction of the fp32 matmul
peak measured in the same run.

    python benchmarks/models.py                       # default subset, eager vs channels_last_3d
    python benchmarks/models.py --compile             # + torch.compile (minutes of compiling)
    python benchmarks/models.py --models x3d_xs,x3d_xs:factorized=true --no-train
    python benchmarks/models.py --models all --json

Training GFLOP/s counts a training step as 3× the forward FLOPs (forward + two backward GEMMs
per layer), the usual convention.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from vidlab.models import create, list_models, model_entry
from vidlab.models.flops import count_gflops

DEFAULT_MODELS = "r2plus1d_tiny,x3d_xs,r3d_18"
MODES = ("eager", "channels_last_3d", "compile")


def matmul_peak() -> float:
    """Best fp32 GFLOP/s of a square matmul: the ceiling the models are compared against."""
    from vidlab.train.peaks import matmul_peaks

    return matmul_peaks(dtypes=("fp32",)).fp32


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """`name[:key=value,...]` → (name, kwargs); values parsed as JSON when they can be."""
    name, _, rest = spec.partition(":")
    kwargs: dict[str, Any] = {}
    for item in filter(None, rest.split(";")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return name, kwargs


def prepare(model: torch.nn.Module, x: torch.Tensor, mode: str, train: bool):
    """The model and input laid out for `mode` (compile: inductor, freezing for inference)."""
    if mode == "channels_last_3d":
        return model.to(memory_format=torch.channels_last_3d), x.contiguous(
            memory_format=torch.channels_last_3d)
    if mode == "compile":
        import torch._inductor.config as inductor_config

        inductor_config.freezing = not train
        return torch.compile(model), x
    return model, x


def forward_latency(spec: str, mode: str, frames: int, size: int, iters: int) -> float:
    name, kwargs = parse_spec(spec)
    model = create(name, num_classes=400, num_frames=frames, **kwargs).eval()
    model, x = prepare(model, torch.randn(1, 3, frames, size, size), mode, train=False)
    with torch.inference_mode():
        model(x)  # warm-up (and compilation)
        return statistics.median(_timed(lambda: model(x)) for _ in range(iters))


def train_throughput(spec: str, mode: str, frames: int, size: int, batch: int, iters: int) -> float:
    name, kwargs = parse_spec(spec)
    model = create(name, num_classes=400, num_frames=frames, **kwargs).train()
    model, x = prepare(model, torch.randn(batch, 3, frames, size, size), mode, train=True)
    y = torch.randint(0, 400, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up (and compilation)
    return batch / statistics.median(_timed(step) for _ in range(iters))


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    peak = matmul_peak()
    log(f"fp32 matmul peak ({args.threads} threads): {peak:.1f} GFLOP/s")
    specs = list_models() if args.models == "all" else args.models.split(",")
    modes = selected_modes(args)
    rows = []
    for spec in specs:
        name, kwargs = parse_spec(spec)
        entry = model_entry(name)
        frames, size = args.frames or entry.num_frames, args.size or entry.size
        model = create(name, num_classes=400, num_frames=frames, **kwargs)
        row: dict[str, Any] = {"model": spec, "frames": frames, "size": size,
                               "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                               "gflops": round(count_gflops(model, frames, size), 3)}
        del model
        for mode in modes:
            try:
                lat = forward_latency(spec, mode, frames, size, args.iters)
                row[f"fwd_ms_{mode}"] = round(lat * 1e3, 1)
                row[f"fwd_peak_{mode}"] = round(row["gflops"] / lat / peak, 3)
                if not args.no_train:
                    cps = train_throughput(spec, mode, frames, size, args.batch, args.train_iters)
                    row[f"train_cps_{mode}"] = round(cps, 2)
                    row[f"train_peak_{mode}"] = round(3 * row["gflops"] * cps / peak, 3)
            except Exception as exc:  # a mode that fails on a model is reported, not fatal
                row[f"error_{mode}"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        log(json.dumps(row))
        rows.append(row)
    # Measured again at the end: on a shared machine the best of both is the fairer ceiling.
    end_peak = matmul_peak()
    if end_peak > peak:
        log(f"fp32 matmul peak at the end: {end_peak:.1f} GFLOP/s; fractions use it")
        for row in rows:
            for key in [k for k in row if "_peak_" in k]:
                row[key] = round(row[key] * peak / end_peak, 3)
        peak = end_peak
    return {"matmul_peak_gflops": round(peak, 1), "threads": args.threads,
            "train_batch": args.batch, "rows": rows}


def selected_modes(args: argparse.Namespace) -> list[str]:
    modes = args.modes.split(",")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    return modes + (["compile"] if args.compile and "compile" not in modes else [])


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def print_table(result: dict[str, Any], modes: list[str], train: bool) -> None:
    print(f"fp32 matmul peak: {result['matmul_peak_gflops']} GFLOP/s "
          f"({result['threads']} threads); fraction of peak in brackets")
    head = ["model", "params M", "GFLOPs", "input"]
    head += [f"fwd ms {m}" for m in modes] + ([f"train clips/s {m}" for m in modes] if train else [])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in result["rows"]:
        cells = [r["model"], str(r["params_m"]), str(r["gflops"]), f"{r['frames']}×{r['size']}²"]
        keys = [("fwd_ms", "fwd_peak")] + ([("train_cps", "train_peak")] if train else [])
        for value_key, frac_key in keys:
            for m in modes:
                v = r.get(f"{value_key}_{m}")
                cells.append(f"{v} ({r[f'{frac_key}_{m}']:.0%})" if v is not None else "failed")
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help="comma-separated names (name:key=value;key=value for kwargs) or 'all'")
    p.add_argument("--modes", default="eager,channels_last_3d", help=f"any of {','.join(MODES)}")
    p.add_argument("--compile", action="store_true",
                   help="add torch.compile (inductor; freezing for inference): slow to build")
    p.add_argument("--no-train", action="store_true", help="forward latency only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8, help="training batch size")
    p.add_argument("--iters", type=int, default=5, help="timed forward iterations (median)")
    p.add_argument("--train-iters", type=int, default=2, help="timed training steps (median)")
    p.add_argument("--frames", type=int, help="override every model's default frame count")
    p.add_argument("--size", type=int, help="override every model's default input size")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result, selected_modes(args), not args.no_train)


if __name__ == "__main__":
    main()
