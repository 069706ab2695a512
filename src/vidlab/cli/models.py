"""CLI verbs of the `models` stage: `models`, `import` (thin: parsing and printing only)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""

    @app.command("models")
    def models_cmd(
        pattern: str = typer.Argument("*", help="Glob over model names, e.g. 'r2plus1d*'."),
        json_out: bool = typer.Option(False, "--json", help="Print a JSON list of model cards."),
    ) -> None:
        """List the model zoo: family, parameters, GFLOPs per clip at the default input."""
        from vidlab.cli.common import print_json, print_table
        from vidlab.models.flops import model_cards

        cards = model_cards(pattern)
        if json_out:
            print_json(cards)
            return
        rows = [{"name": c["name"], "family": c["family"],
                 "params (M)": round(c["params"] / 1e6, 2), "GFLOPs": c["gflops"],
                 "frames": c["num_frames"], "size": c["size"]} for c in cards]
        print_table(rows, title="vidlab models (GFLOPs per clip at the default input, 400 classes)")

    @app.command("import")
    def import_cmd(
        model: str = typer.Argument(..., help="A pretrained checkpoint: hf:PATH (a local "
                                              "save_pretrained directory)."),
        output: str = typer.Option(..., "--output", "-o", help="Bundle to write (NAME.vidlab)."),
        stride: int | None = typer.Option(None, "--stride",
                                          help="Frames between sampled frames, as the model was "
                                               "trained (default 2)."),
        target_fps: float | None = typer.Option(None, "--target-fps",
                                                help="Sample at this rate instead of --stride."),
        data: str | None = typer.Option(None, "--data", help="Videos like those it will see "
                                        "(folder or manifest): the drift-monitoring baseline."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing bundle."),
        json_out: bool = typer.Option(False, "--json", help="Print the bundle summary as JSON."),
    ) -> None:
        """Make a self-contained bundle of a pretrained classifier, as it is (its own labels)."""
        from vidlab.cli.common import console, print_json
        from vidlab.train.pretrained import import_pretrained

        bundle = import_pretrained(model, output, stride=stride, target_fps=target_fps, data=data,
                                   overwrite=overwrite)
        summary = {"bundle": str(bundle.path), "model": model, "labels": len(bundle.labels),
                   "params": bundle.metrics.get("params"), "preprocess": bundle.preprocess_spec}
        if json_out:
            print_json(summary)
            return
        pre = bundle.preprocess_spec
        console.print(f"{bundle.path}: {len(bundle.labels)} labels, {pre['num_frames']} frames "
                      f"at {pre['crop_size']}² (stride {pre['stride']}), "
                      f"{summary['params'] / 1e6:.2f} M params")
