"""Sharded datasets and the Ray engine, measured in one run on this machine:

1. DataLoader training clips/s from files vs from WebDataset shards (the same clips, the same
   workers, batch size and clip settings), as a ratio;
2. `data scan` + `data clean` wall time with the local process pool vs Ray Data on a local
   Ray instance (the same worker count), alternated `--repeat` times, the best of each, as a
   ratio (Ray's start-up reported apart);
3. per-file costs (probe, clean, shard packing, shard re-encode) that `docs/scale.md` turns
   into a paper estimate for 10⁶ clips on N nodes;
4. with `--accuracy` (instead of 1-3): the default recipe trained on the built-in dataset (all
   8 classes) once from the files and once from shards of the same split, with the same budget
   (`--train-epochs`, no time limit, no early stopping), and both test top-1s with the noise
   margin of their difference on that test set.

    python benchmarks/shards.py                          # synth 12 clips/class, 2 workers
    python benchmarks/shards.py --data DIR --workers 2 --json
    python benchmarks/shards.py --no-ray                 # files vs shards only
    python benchmarks/shards.py --accuracy --per-class 40 --train-epochs 20 --keep runs/acc

Each phase prints its figures as soon as it is measured.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def clips_per_second(loader, epochs: int) -> float:
    """Clips per second over `epochs` full passes (worker start-up included, as in training)."""
    clips, t0 = 0, time.perf_counter()
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for x, *_ in loader:
            clips += x.shape[0]
    return clips / (time.perf_counter() - t0)


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def say(results: dict[str, Any], key: str, value: Any, as_json: bool) -> None:
    results[key] = value
    if not as_json:
        print(f"{key}: {value}", flush=True)


def loader_phase(manifest: Path, shards: Path, args, results: dict, as_json: bool) -> None:
    from vidlab.data.config import DataConfig
    from vidlab.data.loader import make_loader
    from vidlab.data.manifest import labels_of, read_manifest
    from vidlab.data.shardset import open_shards
    from vidlab.data.stream import shard_loader

    config = DataConfig(num_frames=args.frames, stride=args.stride, short_side=args.short_side,
                        crop_size=args.crop, num_workers=args.workers,
                        shuffle_buffer=args.shuffle_buffer)
    train = [e for e in read_manifest(manifest) if e.get("split", "train") == "train"]
    labels = labels_of(read_manifest(manifest))
    source = open_shards(shards)
    files = make_loader(train, labels, config, train=True, batch_size=args.batch_size, seed=0,
                        drop_last=False)
    streamed = shard_loader(source.shards("train"), source.labels, config, args.batch_size)
    clips_per_second(files, 1)  # warm the page cache for both, so neither pays first reads
    clips_per_second(streamed, 1)
    f_runs, s_runs = [], []
    for _ in range(args.repeat):  # alternated, the best of each: the machine is shared
        f_runs.append(clips_per_second(files, args.epochs))
        s_runs.append(clips_per_second(streamed, args.epochs))
        if not as_json:
            print(f"  files {f_runs[-1]:.2f} / shards {s_runs[-1]:.2f} clips/s", flush=True)
    f, s = max(f_runs), max(s_runs)
    say(results, "loader_files_clips_per_s", round(f, 2), as_json)
    say(results, "loader_shards_clips_per_s", round(s, 2), as_json)
    say(results, "loader_shards_vs_files", round(s / f, 3), as_json)


def _scan_clean(root: Path, tmp: Path, tag: str, workers: int | None, engine) -> tuple[float, float]:
    from vidlab.data.commands import clean_manifest, scan_to_manifest

    _, scan_s = timed(scan_to_manifest, root, tmp / f"{tag}.jsonl", workers=workers,
                      progress=False, engine=engine, overwrite=True)
    _, clean_s = timed(clean_manifest, tmp / f"{tag}.jsonl", tmp / f"{tag}_clean.jsonl",
                       tmp / f"{tag}_report.json", workers=workers, progress=False,
                       engine=engine, overwrite=True)
    return scan_s, clean_s


def engine_phase(root: Path, tmp: Path, args, results: dict, as_json: bool) -> None:
    """Local pool vs Ray, alternated `--repeat` times (the best of each: the machine is
    shared, so single timings are noisy)."""
    from vidlab.data.parallel import Engine, parallel_map, ray_module

    n = sum(1 for p in root.rglob("*.mp4"))
    say(results, "files", n, as_json)
    local = [_scan_clean(root, tmp, "local", args.workers, None) for _ in range(1)]
    if not args.no_ray:
        import ray

        t0 = time.perf_counter()
        for attempt in range(3):  # Ray gives its raylet 30 s to register: a loaded machine can miss it
            try:
                ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
                break
            except Exception:
                ray.shutdown()
                if attempt == 2:
                    raise
        say(results, "ray_start_s", round(time.perf_counter() - t0, 2), as_json)
        engine = Engine("ray", ray.get_runtime_context().gcs_address)
        ray_module(engine)
        remote = []
        try:
            # the fixed cost of one map: Ray Data plans the dataset and starts an executor
            paths = [str(p) for p in root.rglob("*.mp4")]
            parallel_map(len, paths, chunksize=8, engine=engine)  # workers warm
            _, map_s = timed(parallel_map, len, paths, chunksize=8, engine=engine)
            say(results, "ray_data_trivial_map_s", round(map_s, 2), as_json)
            for _ in range(args.repeat):
                remote.append(_scan_clean(root, tmp, "ray", None, engine))
                local.append(_scan_clean(root, tmp, "local", args.workers, None))
        finally:
            ray.shutdown()
        same = (tmp / "local_clean.jsonl").read_bytes() == (tmp / "ray_clean.jsonl").read_bytes()
        best_ray = min(remote, key=sum)
        say(results, "ray_scan_s", round(best_ray[0], 2), as_json)
        say(results, "ray_clean_s", round(best_ray[1], 2), as_json)
        say(results, "ray_outputs_equal_local", same, as_json)
    best = min(local, key=sum)
    say(results, "local_scan_s", round(best[0], 2), as_json)
    say(results, "local_clean_s", round(best[1], 2), as_json)
    say(results, "probe_ms_per_file_per_core", round(1000 * best[0] * args.workers / n, 1),
        as_json)
    say(results, "clean_ms_per_file_per_core", round(1000 * best[1] * args.workers / n, 1),
        as_json)
    if not args.no_ray:
        say(results, "scan_clean_ray_vs_local_throughput",
            round(sum(best) / sum(best_ray), 3), as_json)


def shard_phase(manifest: Path, tmp: Path, args, results: dict, as_json: bool) -> Path:
    from vidlab.data.shards import shard_dataset
    from vidlab.data.transcoding import TranscodeSpec

    out = tmp / "shards"
    index, seconds = timed(shard_dataset, manifest, out, shard_size=args.shard_size,
                           workers=args.workers, progress=False)
    n = index["samples"]
    say(results, "shard_pack_ms_per_file_per_core", round(1000 * seconds * args.workers / n, 1),
        as_json)
    say(results, "shards", sum(len(p["shards"]) for p in index["splits"].values()), as_json)
    small = tmp / "shards_h264"
    _, seconds = timed(shard_dataset, manifest, small, shard_size=args.shard_size,
                       transcode=TranscodeSpec("h264", size=args.short_side, gop=16),
                       workers=args.workers, progress=False)
    say(results, "shard_transcode_ms_per_file_per_core",
        round(1000 * seconds * args.workers / n, 1), as_json)
    say(results, "mean_clip_bytes", round(sum(p["bytes"] for p in index["splits"].values()) / n),
        as_json)
    return out


def accuracy_phase(manifest: Path, tmp: Path, args, results: dict, as_json: bool) -> None:
    """The default recipe from files and from shards, the same split and epochs; both test
    top-1s and the noise margin of their difference. Runs are resumed from `tmp` (`--keep`)."""
    import math

    from vidlab.config import load_config
    from vidlab.data.shards import shard_dataset
    from vidlab.train import fit
    from vidlab.train.config import TrainConfig

    shards = tmp / "accuracy_shards"
    if not (shards / "index.json").is_file():
        shard_dataset(manifest, shards, shard_size=args.shard_size, workers=args.workers,
                      progress=False)
    # the same clips (no cleaning step), the same number of epochs whatever the machine's speed
    budget = [f"train.epochs={args.train_epochs}", "train.max_minutes=null",
              "train.early_stopping=null", "dataset.clean=false", "train.plots=false",
              "train.tensorboard=false", f"data.num_workers={args.workers}"]
    top1 = {}
    for name, data in (("files", manifest), ("shards", shards)):
        run = tmp / f"accuracy_{name}"
        config = load_config(TrainConfig, None, [f"dataset.path={data}", f"out={run}", *budget])
        metrics, seconds = timed(fit, config, resume=(run / "checkpoints" / "last.pt").is_file())
        test = metrics.metrics["test"]
        top1[name] = test["top1"]
        say(results, f"accuracy_{name}_test_top1", round(test["top1"], 4), as_json)
        say(results, f"accuracy_{name}_train_minutes", round(seconds / 60, 1), as_json)
    n = test["num_clips"]
    p = (top1["files"] + top1["shards"]) / 2
    say(results, "accuracy_test_clips", n, as_json)
    # two standard errors of the difference of two accuracies p on n clips each
    say(results, "accuracy_noise_margin_2se", round(2 * math.sqrt(2 * p * (1 - p) / n), 4),
        as_json)
    say(results, "accuracy_shards_minus_files", round(top1["shards"] - top1["files"], 4),
        as_json)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, help="dataset folder (default: synth into a temp dir)")
    ap.add_argument("--per-class", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--short-side", type=int, default=128)
    ap.add_argument("--crop", type=int, default=112)
    ap.add_argument("--shuffle-buffer", type=int, default=64)
    ap.add_argument("--shard-size", default="64MB")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray phase")
    ap.add_argument("--repeat", type=int, default=2,
                    help="local/Ray scan+clean alternations (the best of each is reported)")
    ap.add_argument("--accuracy", action="store_true",
                    help="only compare test top-1 of the default recipe from files vs shards")
    ap.add_argument("--train-epochs", type=int, default=20, help="epochs of each --accuracy run")
    ap.add_argument("--keep", type=Path,
                    help="keep (and resume) the --accuracy data and runs here (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import torch

    from vidlab.data.manifest import scan, write_manifest
    from vidlab.data.split import split
    from vidlab.data.synth import synth

    results: dict[str, Any] = {"workers": args.workers}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(args.keep or tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        root = args.data or tmp / "synth"
        if not args.data and not (root / "dataset.json").is_file():
            synth(root, per_class=args.per_class, seed=0, overwrite=True)
        manifest = tmp / "split.jsonl"
        if not manifest.is_file():
            write_manifest(split(scan(root, progress=False).entries, seed=0), manifest)
        if args.accuracy:  # training uses the machine's threads, as `vidlab train` does
            accuracy_phase(manifest, tmp, args, results, args.json)
            if args.json:
                print(json.dumps(results, indent=2))
            return
        torch.set_num_threads(1)
        engine_phase(root, tmp, args, results, args.json)
        shards = shard_phase(manifest, tmp, args, results, args.json)
        loader_phase(manifest, shards, args, results, args.json)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
