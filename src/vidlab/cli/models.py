"""CLI verbs of the `models` stage (thin: parsing and printing only)."""

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
