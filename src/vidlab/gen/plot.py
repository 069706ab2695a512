"""`quality.png`: the generator's Fréchet distance and class consistency over training."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_quality(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Two panels from the run's `phase: "eval"` records, baselines as dashed lines."""
    from vidlab.plotting import pyplot

    plt = pyplot()
    evals = [r for r in records if r.get("phase") == "eval"]
    fig, (ax_fd, ax_cc) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [r["step"] for r in evals]
    for ax, key, title in ((ax_fd, "frechet_distance", "Fréchet distance (classifier features)"),
                           (ax_cc, "class_consistency", "class consistency")):
        ax.plot(steps, [r.get(key) for r in evals], marker="o", label="generator (EMA)")
        for base, style in (("shuffled_real", "--"), ("wrong_class_real", ":"), ("real", "-.")):
            values = [r.get(f"{base}_{key}") for r in evals if r.get(f"{base}_{key}") is not None]
            if values:
                ax.axhline(values[-1], linestyle=style, color="grey", label=base)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    ax_fd.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
