"""CLI verbs of the `gen` stage: `gan train`, `gan eval`, `generate` (thin: parsing and printing)."""

from __future__ import annotations

from pathlib import Path

import typer

from vidlab.cli.common import console, print_json

gan_app = typer.Typer(help="Train and evaluate a conditional video GAN.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.add_typer(gan_app, name="gan")
    app.command("generate")(generate)


@gan_app.command("train")
def train(
    data: str = typer.Option(..., "--data", help="Folder-per-class tree or manifest."),
    out: Path = typer.Option(..., "--out", help="Run directory."),
    steps: int | None = typer.Option(None, "--steps", help="Training steps (default 2000)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    config: Path | None = typer.Option(None, "--config", help="YAML GAN config."),
    classifier: Path | None = typer.Option(
        None, "--classifier", help="Classifier bundle for periodic quality evaluation."),
    max_minutes: float | None = typer.Option(None, "--max-minutes",
                                             help="Stop (and write the bundle) after this long."),
    set_: list[str] = typer.Option([], "--set", help="Override any setting: key=value."),
    as_json: bool = typer.Option(False, "--json", help="Print the final figures as JSON."),
) -> None:
    """Train the GAN; writes RUN with samples/, metrics.jsonl, checkpoints and generator.vidlab."""
    from vidlab.bundle import load_bundle
    from vidlab.config import load_config
    from vidlab.gen.config import GanConfig
    from vidlab.gen.trainer import train_gan

    overrides = list(set_)
    for key, value in (("steps", steps), ("classifier", classifier), ("max_minutes", max_minutes)):
        if value is not None:
            overrides.append(f"{key}={value}")
    overrides += [f"data={data}", f"out={out}"]
    cfg = load_config(GanConfig, config, overrides)
    bundle = load_bundle(train_gan(cfg, resume=resume))
    summary = {"bundle": str(bundle.path), "steps": bundle.config["train"]["steps"],
               **bundle.metrics}
    if as_json:
        print_json(summary)
        return
    console.print(f"[bold]done[/bold]: {summary['steps']} steps; bundle: {bundle.path}")
    if bundle.metrics:
        _print_quality(bundle.metrics)


@gan_app.command("eval")
def eval_(
    bundle: Path = typer.Argument(..., help="A generator bundle (generator.vidlab)."),
    classifier: Path = typer.Option(..., "--classifier", help="Classifier bundle (features)."),
    data: str = typer.Option(..., "--data", help="Real videos: folder-per-class tree or manifest."),
    num_samples: int = typer.Option(256, "--num-samples", "-n", help="Clips per set."),
    seed: int = typer.Option(0, "--seed"),
    i3d: Path | None = typer.Option(None, "--i3d", help="I3D TorchScript file for FVD. "
                                    "Loading it EXECUTES the code in the file: refused "
                                    "unless --trust-i3d-code is given too."),
    trust_i3d_code: bool = typer.Option(False, "--trust-i3d-code",
                                        help="Allow loading (running) the --i3d file."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Fréchet distance (classifier features) and class consistency, with real baselines."""
    from vidlab.data.manifest import load_entries
    from vidlab.gen.eval import evaluate_generator

    fvd_detector = None
    if i3d is not None:
        from vidlab.gen.fvd import load_i3d

        fvd_detector = load_i3d(i3d, trust_code=trust_i3d_code)  # fail fast
    entries = load_entries(data)
    result = evaluate_generator(bundle, classifier, entries, num_samples=num_samples, seed=seed)
    if fvd_detector is not None:
        from vidlab.gen.fvd import fvd_of_generator

        result["fvd"] = fvd_of_generator(fvd_detector, bundle, entries, num_samples, seed=seed)
    if as_json:
        print_json(result)
        return
    _print_quality(result)


def generate(
    bundle: Path = typer.Argument(..., help="A generator bundle (generator.vidlab)."),
    out: Path = typer.Option(..., "-o", "--out", help="OUT.mp4 or OUT.gif."),
    label: str | None = typer.Option(None, "--label", help="Class to generate (default: all)."),
    n: int = typer.Option(8, "-n", help="Number of clips."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (same seed, same clips)."),
    separate: bool = typer.Option(False, "--separate", help="One file per clip (OUT_000.mp4…)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Generate clips with a trained GAN: one grid file, or one file per clip."""
    from vidlab.gen.sampling import generate as run

    paths = run(bundle, out, label=label, n=n, seed=seed, separate=separate, overwrite=overwrite)
    for p in paths:
        console.print(f"wrote {p}")


def _print_quality(m: dict) -> None:
    from vidlab.cli.common import print_table

    rows = [{"set": "generated", "frechet_distance": m.get("frechet_distance"),
             "class_consistency": m.get("class_consistency")}]
    for name, b in (m.get("baselines") or {}).items():
        rows.append({"set": name, **b})
    print_table(rows, title=f"{m.get('feature_space', '')} ({m.get('num_samples')} clips per set)")
    if "fvd" in m:
        console.print(f"FVD (I3D): {m['fvd']:.2f}")
