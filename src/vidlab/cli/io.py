"""CLI verbs of the `io` stage (thin: parsing and printing only)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
