"""Library index: build throughput and search latency, against baselines measured in the same run.

    python benchmarks/index.py                         # search at 1e4, 1e5, 1e6 windows + build
    python benchmarks/index.py --sizes 1e4,1e5 --dim 512 --candidates   # + every store installed
    python benchmarks/index.py --skip-build --json

Search: synthetic window embeddings (unit vectors around 200 cluster centres, like the
embeddings of a library of a few hundred kinds of scene), queries perturbed from stored vectors.
For each size: the chosen store (`vidlab.library.vectors.make_index`: exact FAISS up to 50 k
windows, IVF-Flat above) against brute-force NumPy (`x @ q` + argpartition), latency p50/p99 of
one query, recall@10 against the exact answer, build time. `--candidates` adds FAISS Flat/HNSW,
usearch, hnswlib and LanceDB when installed (how the store was chosen).

Build: `vidlab index build` over long videos of the built-in classes (rendered here) with a
bundle (default: a randomly initialised `r2plus1d_tiny` at the default recipe's input —
throughput does not depend on the weights), against `vidlab predict`'s timeline over the same
files (the same windows, nothing stored) in the same run. Each phase reports video-hours per
wall-clock hour and, because wall time on a shared machine measures the neighbours too,
video-hours per 2 core-hours from the CPU time the phase used (this process and its worker
processes: `resource.getrusage`, self + children), with the load average around it.

    python benchmarks/index.py --skip-search --videos 2 --seconds 60
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def unit_vectors(n: int, dim: int, seed: int = 0, clusters: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        out[i:i + m] = centres[rng.integers(0, clusters, m)]
        out[i:i + m] += 0.6 * rng.standard_normal((m, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def queries_from(x: np.ndarray, q: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = x[rng.integers(0, len(x), q)] + 0.1 * rng.standard_normal((q, x.shape[1])).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def numpy_search(x: np.ndarray):
    def search(q: np.ndarray, k: int) -> np.ndarray:
        scores = x @ q
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]
    return search


def vidlab_store(x: np.ndarray):
    from vidlab.library.vectors import make_index, search_index

    index = make_index(x, np.arange(len(x)))
    return lambda q, k: search_index(index, q, k)[1][0]


def candidate_stores() -> dict:
    """Other stores, each `fn(x) -> search(q, k)`; only those importable are measured."""
    def faiss_flat(x):
        import faiss
        ix = faiss.IndexFlatIP(x.shape[1])
        ix.add(x)
        return lambda q, k: ix.search(q[None], k)[1][0]

    def faiss_hnsw(x):
        import faiss
        ix = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        ix.hnsw.efConstruction = 64
        ix.add(x)
        ix.hnsw.efSearch = 64
        return lambda q, k: ix.search(q[None], k)[1][0]

    def usearch(x):
        from usearch.index import Index
        ix = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=16,
                   expansion_add=64, expansion_search=64)
        ix.add(np.arange(len(x)), x)
        return lambda q, k: ix.search(q, k).keys

    def hnswlib(x):
        import hnswlib as h
        ix = h.Index(space="ip", dim=x.shape[1])
        ix.init_index(len(x), ef_construction=64, M=16)
        ix.add_items(x, np.arange(len(x)))
        ix.set_ef(64)
        return lambda q, k: ix.knn_query(q, k)[0][0]

    def lancedb(x):
        import lancedb as ldb
        import pyarrow as pa
        db = ldb.connect(tempfile.mkdtemp(prefix="vidlab-lance-"))
        table = db.create_table("v", pa.table({"id": np.arange(len(x)), "vector":
                                               pa.FixedSizeListArray.from_arrays(
                                                   pa.array(x.ravel()), x.shape[1])}))
        return lambda q, k: (table.search(q).metric("dot").limit(k).select(["id"])
                             .to_arrow()["id"].to_numpy())

    return {"faiss-flat": faiss_flat, "faiss-hnsw": faiss_hnsw, "usearch": usearch,
            "hnswlib": hnswlib, "lancedb": lancedb}


def measure(name: str, make, x: np.ndarray, qs: np.ndarray, truth: list, k: int) -> dict:
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        search = make(x)
    except ImportError as exc:
        return {"store": name, "skipped": f"not installed ({exc.name})"}
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    search(qs[0], k)  # warm-up
    times, found = [], []
    for q in qs:
        t = time.perf_counter()
        found.append(np.asarray(search(q, k)))
        times.append(time.perf_counter() - t)
    recall = float(np.mean([len(set(f.tolist()) & set(t.tolist())) / k
                            for f, t in zip(found, truth, strict=True)]))
    return {"store": name, "build_s": round(build_s, 3), "build_cpu_s": round(build_cpu, 3),
            "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
            "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3), "recall@10": recall}


def search_bench(sizes: list[int], dim: int, queries: int, candidates: bool) -> list[dict]:
    rows = []
    for n in sizes:
        x = unit_vectors(n, dim)
        qs = queries_from(x, queries)
        exact = numpy_search(x)
        truth = [exact(q, 10) for q in qs]
        stores = {"numpy (brute force)": numpy_search, "vidlab (faiss)": vidlab_store}
        if candidates:
            stores.update(candidate_stores())
        base = None
        for name, make in stores.items():
            row = {"windows": n, "dim": dim, **measure(name, make, x, qs, truth, 10)}
            if "p50_ms" in row:
                base = base or row["p50_ms"]
                row["speedup_vs_numpy"] = round(base / max(row["p50_ms"], 1e-6), 1)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        del x
    return rows


def long_videos(out: Path, count: int, seconds: float, fps: int = 20) -> list[Path]:
    """Long real H.264 videos: built-in motion clips of 3 s back to back."""
    from vidlab.data.synth import LABELS, render_clip
    from vidlab.io import write_video

    paths = []
    for v in range(count):
        rng = np.random.default_rng([7, v])
        frames = []
        while len(frames) < seconds * fps:
            clip, _ = render_clip(LABELS[int(rng.integers(len(LABELS)))], rng, num_frames=3 * fps)
            h, w = clip.shape[1:3]
            frames += list(clip[:, :96, :96]) if h >= 96 and w >= 96 else list(clip)
        frames = [f for f in frames if f.shape == frames[0].shape][: int(seconds * fps)]
        paths.append(write_video(out / f"long_{v}.mp4", np.stack(frames), fps=fps, overwrite=True))
    return paths


def cpu_seconds() -> float:
    """CPU time (user + system) of this process's threads and of its finished child processes
    (a build's worker pool is joined before `build_index` returns)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def timed_phase(what: str, hours: float, run, base: dict | None = None) -> dict:
    """Run one phase; its throughput by the wall clock and by CPU time (per 2 cores), and, given
    the baseline's row, both as ratios to it."""
    load0, t, c = os.getloadavg()[0], time.perf_counter(), cpu_seconds()
    extra = run() or {}
    wall, cpu = time.perf_counter() - t, cpu_seconds() - c
    row = {"what": what, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
           "video_hours_per_hour": round(hours * 3600 / wall, 2),
           "video_hours_per_2_core_hours": round(hours * 3600 * 2 / max(cpu, 1e-9), 2),
           "load_1min": [round(load0, 1), round(os.getloadavg()[0], 1)], **extra}
    if base is not None:
        row["vs_predict"] = round(base["wall_s"] / wall, 2)
        row["cpu_vs_predict"] = round(base["cpu_s"] / max(cpu, 1e-9), 2)
    print(json.dumps(row), file=sys.stderr, flush=True)  # each phase as it is measured
    return row


def build_bench(bundle: str | None, videos: int, seconds: float, window: float,
                stride: float) -> list[dict]:
    from vidlab.library.build import build_index
    from vidlab.serve.predict import Predictor

    work = Path(tempfile.mkdtemp(prefix="vidlab-index-bench-"))
    lib = work / "library"
    lib.mkdir()
    paths = long_videos(lib, videos, seconds)
    if bundle is None:
        bundle = str(default_bundle(work / "r2plus1d_tiny.vidlab"))
    hours = videos * seconds / 3600
    predictor = Predictor(bundle, runtime="torch")
    # Warm up outside the timings (imports, thread pools, oneDNN's kernels for these shapes):
    # the baseline runs first and would otherwise pay for what the builds find ready.
    warm = work / "warm-up"
    warm.mkdir()
    predictor.predict_file(long_videos(warm, 1, 2 * window + stride)[0], top_k=5, window=window,
                           stride=stride)

    def predict_all() -> None:
        for p in paths:
            predictor.predict_file(p, top_k=5, window=window, stride=stride)

    base = timed_phase("vidlab predict (timeline, nothing stored)", hours, predict_all)
    rows = [base]
    for workers in (1, 2):
        def build(workers: int = workers) -> dict:
            report = build_index(lib, bundle, work / f"w{workers}.vlx", window=window,
                                 stride=stride, workers=workers)
            return {"windows": report.windows}

        rows.append(timed_phase(f"vidlab index build --workers {workers}", hours, build, base))
    return rows


def default_bundle(path: Path) -> Path:
    import torch

    from vidlab.bundle import save_bundle
    from vidlab.data.synth import LABELS
    from vidlab.data.transforms import Preprocess
    from vidlab.models import create

    torch.manual_seed(0)
    model = create("r2plus1d_tiny", num_classes=len(LABELS), num_frames=16)
    pre = Preprocess(num_frames=16, stride=2, short_side=73, crop_size=64)
    save_bundle(path, config={"task": "classify", "model": {"name": "r2plus1d_tiny",
                                                           "num_classes": len(LABELS),
                                                           "kwargs": {"num_frames": 16}},
                              "labels": list(LABELS), "preprocess": pre.to_dict()},
                state_dict=model.state_dict())
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="windows, comma-separated")
    ap.add_argument("--dim", type=int, default=512, help="embedding size (R(2+1)D-18: 512)")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--candidates", action="store_true", help="also measure other stores")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--bundle", help="bundle for the build benchmark")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each video")
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--stride", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {"cores": len(os.sched_getaffinity(0))}
    if not args.skip_search:
        sizes = [int(float(s)) for s in args.sizes.split(",")]
        out["search"] = search_bench(sizes, args.dim, args.queries, args.candidates)
    if not args.skip_build:
        out["build"] = build_bench(args.bundle, args.videos, args.seconds, args.window,
                                   args.stride)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for row in out.get("search", []):
        if "skipped" in row:
            print(f"{row['windows']:>8} {row['store']:<22} {row['skipped']}")
            continue
        print(f"{row['windows']:>8} {row['store']:<22} p50 {row['p50_ms']:9.3f} ms "
              f"(×{row['speedup_vs_numpy']} vs NumPy)  p99 {row['p99_ms']:9.3f} ms  "
              f"recall@10 {row['recall@10']:.3f}  build {row['build_s']:.1f} s")
    for row in out.get("build", []):
        print(f"{row['what']:<42} {row['video_hours_per_hour']:>7} video-h/h "
              f"({row['wall_s']} s wall), {row['video_hours_per_2_core_hours']:>7} video-h "
              f"per 2 core-h ({row['cpu_s']} CPU-s), load {row['load_1min']}"
              + (f"  ×{row['vs_predict']} wall / ×{row['cpu_vs_predict']} CPU of predict's pace"
                 if "vs_predict" in row else ""))


if __name__ == "__main__":
    main()
