"""CLI verbs of the `accel` stage (thin: parsing and printing only): `optimize`, `bench`."""

from __future__ import annotations

from pathlib import Path

import typer

from vidlab.accel.finetune import DEFAULT_DISTILL

_HEADERS = {"variant": "variant", "latency_ms_p50": "p50 ms", "latency_ms_p95": "p95 ms",
            "throughput_clips_s": "clips/s @8", "speedup": "speed-up", "size_mb": "MB",
            "top1": "top-1", "peak_rss_mb": "peak RSS MB", "achieved_gflops": "GFLOP/s @8",
            "of_peak": "of peak", "chosen": "chosen"}


def _table(rows: list[dict], title: str) -> None:
    """Rows with short column headers (the JSON keys are long for a terminal)."""
    from vidlab.cli.common import print_table

    short = [{**({"bundle": Path(r["bundle"]).name} if "bundle" in r else {}),
              **{_HEADERS[k]: r.get(k) for k in _HEADERS if any(k in x for x in rows)}} for r in rows]
    print_table(short, title=title)


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""

    @app.command("optimize")
    def optimize_cmd(
        bundle: Path = typer.Argument(..., help="Source bundle (NAME.vidlab)."),
        output: Path = typer.Option(..., "-o", "--output", help="Output bundle to write."),
        onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Export ONNX fp32 (model.onnx)."),
        int8: bool = typer.Option(False, "--int8", help="Add INT8 ONNX (model.int8.onnx)."),
        int8_method: str = typer.Option(
            "auto", "--int8-method",
            help="auto (measure and pick), qdq-per-tensor, qdq-per-channel, qoperator, dynamic, dynamic-matmul (convolutions stay fp32)."),
        prune: float = typer.Option(None, "--prune", help="Fraction of channels (or weights) to remove."),
        prune_mode: str = typer.Option("structured", "--prune-mode", help="structured or unstructured."),
        finetune_epochs: int = typer.Option(0, "--finetune-epochs", help="Fine-tune epochs after pruning."),
        finetune_lr: float = typer.Option(None, "--finetune-lr", help="Peak fine-tune learning rate (default: half the bundle's)."),
        distill: float = typer.Option(DEFAULT_DISTILL, "--distill", help="Weight of distillation from the unpruned model while fine-tuning (0: labels only)."),
        data: Path = typer.Option(None, "--data", help="Dataset folder/manifest (default: the bundle's)."),
        calib_clips: int = typer.Option(32, "--calib-clips", help="Training clips for INT8 calibration."),
        eval_clips: int = typer.Option(256, "--eval-clips", help="Validation clips for top-1 (at most)."),
        max_drop: float = typer.Option(1.0, "--max-drop", help="Top-1 points the kept variant may lose against the source (default 1)."),
        bf16: bool = typer.Option(None, "--bf16/--no-bf16", help="Measure PyTorch bf16 as a candidate (default: where bf16 is native)."),
        device: str = typer.Option(None, "--device", help="cpu or cuda (default: CUDA when present)."),
        threads: int = typer.Option(None, "--threads", help="Intra-op threads for every variant (default: all cores)."),
        rounds: int = typer.Option(5, "--rounds", help="Interleaved latency rounds (4 runs each), INT8 formats too."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUTPUT if it exists."),
        as_json: bool = typer.Option(False, "--json", help="Print the output's variants as JSON."),
    ) -> None:
        """Prune, fine-tune, export to ONNX and quantize a bundle; measure every variant and
        keep the fastest within --max-drop top-1 points."""
        from vidlab.accel import optimize
        from vidlab.cli.common import print_json

        out = optimize(bundle, output, onnx=onnx, int8=int8, prune=prune,
                       finetune_epochs=finetune_epochs, finetune_lr=finetune_lr,
                       distill=distill, data=data, prune_mode=prune_mode,
                       int8_method=int8_method, calib_clips=calib_clips, eval_clips=eval_clips,
                       max_drop=max_drop, bf16=bf16, device=device, threads=threads,
                       timing_rounds=rounds, overwrite=overwrite)
        variants = out.metrics.get("variants", {})
        if as_json:
            print_json({"bundle": str(out.path), "variants": variants,
                        "optimize": out.metrics.get("optimize", {})})
            return
        info = out.metrics["optimize"]
        rows = [{"variant": rt, **v, "speedup": v.get("speedup_vs_source_torch"),
                 "chosen": "yes" if rt == info.get("chosen") else ""} for rt, v in variants.items()]
        rows.insert(0, {"variant": "source torch", **info["source_torch"], "speedup": 1.0})
        budget = {True: "within", False: "none within", None: "accuracy unknown:"}[
            info.get("within_budget")]
        _table(rows, title=f"{out.path} (speed-up vs the source bundle's PyTorch eager; runs "
                           f"{info.get('chosen')}: fastest {budget} {max_drop:g} top-1 points)")

    @app.command("bench")
    def bench_cmd(
        bundles: list[Path] = typer.Argument(..., help="Bundles; the first one's PyTorch model is the baseline."),
        data: Path = typer.Option(None, "--data", help="Dataset folder/manifest for top-1 (validation split)."),
        plot: Path = typer.Option(None, "--plot", help="Write a speed-vs-accuracy PNG here."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --plot file."),
        rounds: int = typer.Option(5, "--rounds", help="Interleaved timing rounds (4 runs each)."),
        rss: bool = typer.Option(True, "--rss/--no-rss", help="Measure peak RSS (one process per variant)."),
        eval_clips: int = typer.Option(256, "--eval-clips", help="Validation clips for top-1 (at most)."),
        device: str = typer.Option(None, "--device", help="cpu or cuda (default: CUDA when present)."),
        threads: int = typer.Option(None, "--threads", help="Intra-op threads for every variant (default: all cores)."),
        as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
    ) -> None:
        """Batch-1 latency, batch-8 throughput, GFLOP/s against the fp32/bf16/INT8 matmul peaks
        measured in the same run, peak RSS, size and top-1 of every variant."""
        from vidlab.accel import bench, plot_bench
        from vidlab.cli.common import console, print_json
        from vidlab.data.commands import check_output

        if plot is not None:  # before minutes of timing, not after
            check_output(plot, overwrite)
        rows = bench(bundles, data=data, eval_clips=eval_clips, rounds=rounds, rss=rss,
                     threads=threads, device=device)
        if plot is not None:
            plot_bench(rows, plot)
            if not as_json:
                console.print(f"plot: {plot}")
        if as_json:
            print_json(rows)
        else:
            peaks = rows[0].get("peaks") or {}
            _table(rows, title="vidlab bench (speed-up vs the first row; of peak: of the matmul "
                               f"peak of its arithmetic, fp32 {_g(peaks.get('fp32'))}, bf16 "
                               f"{_g(peaks.get('bf16'))}, INT8 {_g(peaks.get('int8'))} GFLOP/s)")


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"
