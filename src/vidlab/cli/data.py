"""CLI verbs of the `data` stage (thin: parsing and printing only)."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(help="Datasets: scan, clean, split, and the built-in synthetic dataset.",
                       no_args_is_help=True)


def engine_option():
    return typer.Option("local", "--engine", help="How per-file work is spread: local "
                        "(processes on this machine) or ray (Ray Data tasks on a cluster).")


def address_option():
    return typer.Option(None, "--address", help="Ray cluster address (ray://HOST:10001 or "
                        "HOST:6379); default: start a local Ray instance. Implies --engine ray.")


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.add_typer(data_app, name="data")


@data_app.command("scan")
def scan_cmd(
    root: Path = typer.Argument(..., help="Folder-per-class tree: ROOT/<label>/<video files>."),
    out: Path = typer.Option(..., "-o", "--output", help="Manifest to write (JSON Lines)."),
    workers: int = typer.Option(None, "--workers", help="Probe processes (default: all cores)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing manifest."),
    engine: str = engine_option(),
    address: str = address_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Probe every video under ROOT into a manifest; unreadable files are listed, not fatal."""
    from vidlab.cli.common import print_json, print_table
    from vidlab.data.commands import scan_to_manifest
    from vidlab.data.parallel import as_engine

    summary = scan_to_manifest(root, out, workers=workers, overwrite=overwrite,
                               progress=not as_json, engine=as_engine(engine, address))
    if as_json:
        print_json(summary)
        return
    print_table([{"label": k, "clips": v} for k, v in summary["class_counts"].items()],
                title=f"{summary['clips']} clips in {summary['classes']} classes → {out}")
    if summary["failures"]:
        rows = [{**f, "detail": _short(f["detail"])} for f in summary["failures"]]
        print_table(rows, title=f"{len(summary['failures'])} files skipped",
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
    engine: str = engine_option(),
    address: str = address_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Find unreadable, truncated, short, duplicate, blank, frozen and outlier clips."""
    from vidlab.cli.common import console, print_json, print_table
    from vidlab.data.commands import clean_manifest
    from vidlab.data.parallel import as_engine

    result = clean_manifest(manifest, out, report, min_frames=min_frames, workers=workers,
                            keep=keep, overwrite=overwrite, progress=not as_json,
                            engine=as_engine(engine, address))
    summary = result.summary()
    if as_json:
        print_json(summary)
        return
    rows = [{"reason": k, "files": v, "action": "drop" if k in result.drop else "report"}
            for k, v in sorted(result.counts().items())]
    print_table(rows, title=f"kept {summary['kept']} of {summary['total']} clips")
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
    from vidlab.data.commands import split_manifest

    counts = split_manifest(manifest, out, val=val, test=test, seed=seed, overwrite=overwrite)
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
    from vidlab.cli.common import console, print_json
    from vidlab.data.commands import synth_dataset

    summary = synth_dataset(out, per_class=per_class, seed=seed, workers=workers,
                            overwrite=overwrite, progress=not as_json)
    if as_json:
        print_json(summary)
        return
    console.print(f"wrote {summary['clips']} clips in {len(summary['labels'])} classes to "
                  f"{summary['root']} in {summary['seconds']} s")


@data_app.command("shard")
def shard_cmd(
    manifest: Path = typer.Argument(..., help="Manifest (JSONL or CSV) or a dataset folder."),
    out: Path = typer.Option(..., "-o", "--output", help="Folder for the shards and index.json."),
    shard_size: str = typer.Option("1GB", "--shard-size", help="Largest shard (1GB, 500MB, "
                                   "64MiB; a bigger video gets a shard of its own)."),
    transcode: str | None = typer.Option(None, "--transcode", help="Re-encode every video "
                                         "first with this codec (h264, h265, vp9, av1)."),
    size: int | None = typer.Option(None, "--size", help="With --transcode: short side."),
    gop: int | None = typer.Option(None, "--gop", help="With --transcode: keyframe interval "
                                   "(short GOPs keep clip seeks cheap), e.g. 16."),
    crf: int | None = typer.Option(None, "--crf", help="With --transcode: quality (codec "
                                   "default if unset)."),
    seed: int = typer.Option(0, "--seed", help="Order of the samples in the shards."),
    workers: int = typer.Option(None, "--workers", help="Processes (default: all cores)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished dataset "
                                   "or another run's shards in OUT."),
    engine: str = engine_option(),
    address: str = address_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Pack a dataset into WebDataset tar shards per split (+ index.json) for streaming
    training; deterministic, and a rerun keeps the shards already finished."""
    from vidlab.cli.common import print_json, print_table
    from vidlab.data.parallel import as_engine
    from vidlab.data.shards import shard_dataset, shard_summary
    from vidlab.data.transcoding import TranscodeSpec

    if transcode is None and (size or gop or crf is not None):
        raise typer.BadParameter("--size/--gop/--crf re-encode: pass --transcode CODEC too")
    spec = TranscodeSpec(transcode, crf=crf, size=size, gop=gop) if transcode else None
    index = shard_dataset(manifest, out, shard_size=shard_size, transcode=spec, seed=seed,
                          workers=workers, engine=as_engine(engine, address),
                          overwrite=overwrite, progress=not as_json)
    summary = shard_summary(index, out)
    if as_json:
        print_json(summary)
        return
    rows = [{"split": k, **v} for k, v in summary["splits"].items()]
    print_table(rows, title=f"{summary['samples']} samples in {summary['shards']} shards → "
                            f"{summary['index']}")
    if summary["failures"]:
        print_table(summary["failures"], title=f"{len(summary['failures'])} files left out")
