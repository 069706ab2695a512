"""CLI verbs of the `train` stage: `train`, `eval`, `tune` (thin: parsing and printing only)."""

from __future__ import annotations

from pathlib import Path

import typer

from vidlab.cli.common import console, print_json


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.command("train")(train)
    app.command("eval")(eval_)
    app.command("tune")(tune)
    app.command("plan")(plan)


def train(
    config: Path | None = typer.Argument(None, help="YAML training config (defaults otherwise)."),
    data: str | None = typer.Option(None, "--data", help="Folder-per-class tree or manifest."),
    model: str | None = typer.Option(None, "--model", help="Model name (see `vidlab models`)."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Clips per step per process."),
    lr: float | None = typer.Option(None, "--lr", help="Peak learning rate."),
    set_: list[str] = typer.Option([], "--set", help="Override any setting: key.path=value."),
    out: Path = typer.Option(..., "--out", help="Run directory."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in a --out that holds a run (only the run's own outputs are removed)."),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Train a model; writes RUN_DIR with metrics, plots, checkpoints and best.vidlab."""
    from vidlab.train.distributed import env_dist_info
    from vidlab.train.run import fit
    from vidlab.train.search import build_train_config

    overrides = list(set_)
    for key, value in (("dataset.path", data), ("model.name", model), ("train.epochs", epochs),
                       ("train.batch_size", batch_size), ("optim.lr", lr)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if epochs is not None and not any(o.startswith("train.max_minutes=") for o in overrides):
        overrides.append("train.max_minutes=null")  # an explicit epoch count wins over the budget
    overrides.append(f"out={out}")
    cfg = build_train_config(config, overrides, resume_dir=out if resume else None)
    info = env_dist_info()
    say = console.print if info.is_main else (lambda _msg: None)
    result = fit(cfg, resume=resume, overwrite=overwrite, say=say)
    if not info.is_main:
        return
    m = result.metrics
    summary = {"run_dir": str(result.run_dir), "bundle": str(result.bundle) if result.bundle else None,
               **m}
    if as_json:
        print_json(summary)
        return
    test = m.get("test") or m.get("val") or {}
    console.print(f"[bold]done[/bold]: {m.get('epochs')} epochs in {m.get('train_minutes', 0):.1f} "
                  f"min; best val at epoch {m.get('best_epoch')}")
    if test:
        console.print(f"test top-1 {test['top1']:.4f}  top-5 {test['top5']:.4f}  mean class acc "
                      f"{test['mean_class_acc']:.4f}  ({test['num_clips']} clips, "
                      f"{test['views']} views)")
    console.print(f"bundle: {result.bundle}")


def eval_(
    bundle: Path = typer.Argument(..., help="A NAME.vidlab bundle."),
    data: str = typer.Option(..., "--data", help="Manifest or folder-per-class tree."),
    split: str | None = typer.Option("test", "--split", help="Split to evaluate (manifests with splits)."),
    views: str = typer.Option("1x1", "--views", help="Test views: CLIPSxCROPS, e.g. 3x1."),
    runtime: str = typer.Option("auto", "--runtime", help="torch, onnx, onnx-int8 or auto."),
    batch_size: int = typer.Option(8, "--batch-size"),
    confusion: Path | None = typer.Option(None, "--confusion-png",
                                          help="Where to write the confusion matrix PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Evaluate a bundle: top-1/top-5, mean class accuracy, per-class precision/recall."""
    from vidlab.cli.common import print_table
    from vidlab.data.samplers import parse_views
    from vidlab.train.evaluation import evaluate

    try:
        clips, crops = parse_views(views)
    except ValueError as exc:  # a bad value is a usage mistake: usage line, exit 2
        raise typer.BadParameter(str(exc), param_hint="'--views'") from None
    png = confusion or Path(bundle).with_name(f"{Path(bundle).name.removesuffix('.vidlab')}"
                                              f"_confusion_{split or 'all'}.png")
    result = evaluate(bundle, data, views=(clips, crops), runtime=runtime, split=split,
                      batch_size=batch_size, confusion_png=png)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"{result.num_clips} clips, views {clips}x{crops}, runtime {result.runtime}: "
                  f"top-1 {result.top1:.4f}  top-5 {result.top5:.4f}  "
                  f"mean class acc {result.mean_class_acc:.4f}")
    print_table([{"class": k, **v} for k, v in result.per_class.items()],
                columns=["class", "precision", "recall", "support"])
    console.print(f"confusion matrix: {result.confusion_png}")


def tune(
    config: Path = typer.Argument(..., help="YAML training config with a `search:` section."),
    trials: int = typer.Option(10, "--trials", help="Trials to run (added to the study)."),
    storage: str | None = typer.Option(None, "--storage",
                                       help="Optuna storage URL (default sqlite in --out)."),
    out: Path = typer.Option(Path("tune"), "--out", help="Directory for trials and results."),
    data: str | None = typer.Option(None, "--data", help="Folder-per-class tree or manifest."),
    set_: list[str] = typer.Option([], "--set", help="Override any setting: key.path=value."),
    as_json: bool = typer.Option(False, "--json", help="Print the best trial as JSON."),
) -> None:
    """Hyper-parameter search (Optuna TPE + median pruning); resumable via SQLite."""
    from vidlab.train.search import tune as run_tune

    overrides = list(set_) + ([f"dataset.path={data}"] if data else [])
    result = run_tune(config, trials=trials, storage=storage, out=out, overrides=overrides,
                      say=console.print)
    if as_json:
        print_json(result)
        return
    console.print(f"best trial #{result['best_trial']}: {result['metric']} = "
                  f"{result['best_value']:.4f}")
    for k, v in result["best_params"].items():
        console.print(f"  {k} = {v}")
    console.print(f"best config: {result['best_config']}")
    if result.get("importance_png"):
        console.print(f"parameter importance: {result['importance_png']}")


def plan(
    config: Path | None = typer.Argument(None, help="YAML training config (defaults otherwise)."),
    data: str = typer.Option(..., "--data", help="Folder-per-class tree or manifest."),
    model: str | None = typer.Option(None, "--model", help="Model name (see `vidlab models`)."),
    set_: list[str] = typer.Option([], "--set", help="Override any setting: key.path=value."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan and fingerprint as JSON."),
) -> None:
    """Show the plan `vidlab train` would follow for a dataset (each setting and why), without
    training."""
    from vidlab.train.run import plan_dataset
    from vidlab.train.search import build_train_config

    overrides = [*set_, f"dataset.path={data}", *([f"model.name={model}"] if model else [])]
    report = plan_dataset(build_train_config(config, overrides))
    if as_json:
        print_json(report.to_dict())
        return
    for line in report.plan.lines():
        console.print(line, markup=False, highlight=False, soft_wrap=True)
