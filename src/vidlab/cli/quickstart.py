"""`vidlab quickstart`: the whole main job on the built-in dataset (thin wrapper)."""

from __future__ import annotations

from pathlib import Path

import typer

from vidlab.cli.common import console, print_json
from vidlab.quickstart import DEFAULT_OUT, DEFAULT_PER_CLASS


def register(app: typer.Typer) -> None:
    """Add `vidlab quickstart` to the root app."""

    @app.command()
    def quickstart(
        out: Path = typer.Option(Path(DEFAULT_OUT), "--out", help="Where everything goes."),
        per_class: int = typer.Option(DEFAULT_PER_CLASS, "--per-class", help="Built-in clips per class."),
        minutes: float = typer.Option(8.0, "--minutes", help="Training time budget."),
        model: str = typer.Option(None, "--model", help="Model name (default: the recipe's)."),
        seed: int = typer.Option(0, "--seed"),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Make data → clean → split → train → evaluate → optimize → bench; re-runs resume."""
        from vidlab.quickstart import run

        result = run(out, per_class=per_class, seed=seed, train_minutes=minutes, model=model,
                     say=lambda msg: console.print(msg, highlight=False))
        if as_json:
            print_json(result.to_dict())
            return
        _print_summary(result)


def _print_summary(result) -> None:
    from vidlab.cli.common import print_table

    test = result.steps["evaluate"]["test"]
    console.print(f"\n[bold]test accuracy[/bold]: top-1 {test['top1']:.1%}, "
                  f"top-5 {test['top5']:.1%}, mean class {test['mean_class_acc']:.1%} "
                  f"on {test['num_clips']} clips")
    rows = result.steps["bench"]["rows"]
    print_table(rows, title="speed and accuracy of each variant",
                columns=["variant", "latency_ms_p50", "throughput_clips_s", "size_mb", "top1",
                         "speedup"])
    console.print(f"\nmade in {result.out}: data/, run/ (training run), model.vidlab (optimized "
                  "bundle), bench.json")
    console.print(f"serve it:  [bold]{result.serve_command}[/bold]   then open "
                  "http://127.0.0.1:8000/")
