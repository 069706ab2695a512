"""matplotlib for the PNG plots every stage writes (training curves, bench, monitoring, GAN
quality): headless (`Agg`), imported on first use."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """`matplotlib.pyplot` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
