"""CLI verbs of the `data` stage (thin: parsing and printing only)."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(help="Datasets: scan, clean, split, and the built-in synthetic dataset.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.add_typer(data_app, name="data")


def _check_out(path: Path, overwrite: bool) -> None:
    from vidlab.errors import OutputExistsError

    if path.exists() and not overwrite:
        raise OutputExistsError("exists (pass --overwrite)", path)


@data_app.command("scan")
def scan_cmd(
    root: Path = typer.Argument(..., help="Folder-per-class tree: ROOT/<label>/<video files>."),
    out: Path = typer.Option(..., "-o", "--output", help="Manifest to write (JSON Lines)."),
    workers: int = typer.Option(None, "--workers", help="Probe processes (default: all cores)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing manifest."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Probe every video under ROOT into a manifest; unreadable files are listed, not fatal."""
    from vidlab.cli.common import print_json, print_table
    from vidlab.data.manifest import scan, write_manifest

    _check_out(out, overwrite)
    result = scan(root, workers=workers, progress=not as_json)
    write_manifest(result.entries, out, overwrite=overwrite)
    counts: dict[str, int] = {}
    for e in result.entries:
        counts[e["label"]] = counts.get(e["label"], 0) + 1
    summary = {"manifest": str(out), "clips": len(result.entries), "classes": len(counts),
               "class_counts": dict(sorted(counts.items())), "failures": result.failures}
    if as_json:
        print_json(summary)
        return
    print_table([{"label": k, "clips": v} for k, v in sorted(counts.items())],
                title=f"{len(result.entries)} clips in {len(counts)} classes → {out}")
    if result.failures:
        rows = [{**f, "detail": _short(f["detail"])} for f in result.failures]
        print_table(rows, title=f"{len(result.failures)} files skipped",
                    columns=["path", "reason", "detail"])


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@data_app.command("clean")
def clean_cmd(
    manifest: Path = typer.Argument(..., help="Manifest (JSONL or CSV) or a dataset folder."),
    out: Path = typer.Option(..., "-o", "--output", help="Clean manifest to write."),
    report: Path = typer.Option(..., "--report", help="Per-file JSON report to write."),
    min_frames: int = typer.Option(16, "--min-frames", help="Shorter clips are `too_short`."),
    workers: int = typer.Option(None, "--workers", help="Processes (default: all cores)."),
    keep: list[str] = typer.Option([], "--keep", help="Reason code to report but not drop "
                                   "(repeatable), e.g. --keep too_short."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Find unreadable, truncated, short, duplicate, blank, frozen and outlier clips."""
    import json

    from vidlab.cli.common import console, print_json, print_table
    from vidlab.data.clean import DEFAULT_DROP, clean
    from vidlab.data.manifest import load_entries, scan, write_manifest

    _check_out(out, overwrite)
    _check_out(report, overwrite)
    if manifest.is_dir():  # a folder: files that cannot even be probed are reported too
        scanned = scan(manifest, workers=workers, progress=not as_json)
        entries = scanned.entries + [{"path": f["path"], "label": f["label"]}
                                     for f in scanned.failures]
    else:
        entries = load_entries(manifest, workers=workers)
    result = clean(entries, min_frames=min_frames, workers=workers, progress=not as_json,
                   drop=set(DEFAULT_DROP) - set(keep))
    write_manifest(result.entries, out, overwrite=overwrite)
    report.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if as_json:
        print_json(result.summary())
        return
    rows = [{"reason": k, "files": v, "action": "drop" if k in result.drop else "report"}
            for k, v in sorted(result.counts().items())]
    print_table(rows, title=f"kept {len(result.entries)} of {len(entries)} clips")
    console.print(f"clean manifest: {out}  report: {report}")


@data_app.command("split")
def split_cmd(
    manifest: Path = typer.Argument(..., help="Manifest (JSONL or CSV) or a dataset folder."),
    out: Path = typer.Option(..., "-o", "--output", help="Manifest with a `split` per clip."),
    val: float = typer.Option(0.15, "--val", help="Fraction of clips for validation."),
    test: float = typer.Option(0.15, "--test", help="Fraction of clips for testing."),
    seed: int = typer.Option(0, "--seed", help="Shuffle seed (same seed, same split)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Stratified, group-aware train/val/test split (groups never straddle splits)."""
    from vidlab.cli.common import print_json, print_table
    from vidlab.data.manifest import load_entries, write_manifest
    from vidlab.data.split import split, split_counts

    _check_out(out, overwrite)
    entries = split(load_entries(manifest), val=val, test=test, seed=seed)
    write_manifest(entries, out, overwrite=overwrite)
    counts = split_counts(entries)
    if as_json:
        print_json(counts)
        return
    rows = [{"label": k, **v} for k, v in counts["per_label"].items()]
    print_table(rows, title=f"train {counts['train']} / val {counts['val']} / test "
                            f"{counts['test']} → {out}")


@data_app.command("synth")
def synth_cmd(
    out: Path = typer.Argument(..., help="Folder to create (folder-per-class tree)."),
    per_class: int = typer.Option(40, "--per-class", help="Clips per class (8 classes)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same files)."),
    workers: int = typer.Option(None, "--workers", help="Processes (default: all cores)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into a non-empty folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write the built-in moving-shapes dataset: real H.264 clips, 8 motion classes."""
    import json
    import time

    from vidlab.cli.common import console, print_json
    from vidlab.data.synth import DATASET_FILE, synth

    t0 = time.perf_counter()
    root = synth(out, per_class=per_class, seed=seed, workers=workers, overwrite=overwrite,
                 progress=not as_json)
    info = json.loads((root / DATASET_FILE).read_text())
    summary = {"root": str(root), "clips": info["num_clips"], "labels": info["labels"],
               "seconds": round(time.perf_counter() - t0, 2)}
    if as_json:
        print_json(summary)
        return
    console.print(f"wrote {summary['clips']} clips in {len(info['labels'])} classes to {root} "
                  f"in {summary['seconds']} s")
