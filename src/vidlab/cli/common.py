"""Printing helpers shared by the CLI verbs (JSON output, tables)."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(stderr=True)
"""Human-readable output goes to stderr so that `--json` stdout stays machine-readable."""


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Write `data` as JSON to stdout (NaN/inf become null, so any JSON parser reads it)."""
    sys.stdout.write(json.dumps(_clean(data), indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_table(rows: list[dict[str, Any]], title: str | None = None, columns: list[str] | None = None) -> None:
    """Print rows of dicts as a Rich table on stdout."""
    if not rows:
        Console().print("(nothing)")
        return
    columns = columns or list(rows[0].keys())
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[_fmt(row.get(c)) for c in columns])
    Console().print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
