"""CLI verbs of the library: `index build|search|stats|export|corrections` (thin: parsing and
printing; the work is `vidlab.library`'s)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from vidlab.cli.common import console, print_json

index_app = typer.Typer(help="A searchable video library: index videos with a model, search "
                             "them by label or likeness, export segments and corrections.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `index` verb group to the root app."""
    app.add_typer(index_app, name="index")


@index_app.command("build")
def build(
    source: Path = typer.Argument(..., help="Library folder (every video under it) or a "
                                            "manifest (JSONL with 'path', or one path a line)."),
    bundle: Path = typer.Option(..., "--bundle", help="Model bundle (NAME.vidlab/)."),
    out: Path = typer.Option(..., "-o", "--out", help="The index (NAME.vlx/; updated in place)."),
    window: float = typer.Option(2.0, "--window", min=0.0, help="Window length, s."),
    stride: float = typer.Option(1.0, "--stride", min=0.0, help="Window step, s."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="Labels stored per window."),
    workers: int = typer.Option(0, "--workers", min=0,
                                help="Processes over files (0: one per CPU core)."),
    runtime: str = typer.Option("auto", "--runtime",
                                help="auto (PyTorch when the bundle has weights, for "
                                     "forward_features), torch, onnx or onnx-int8."),
    engine: str = typer.Option("local", "--engine", help="How per-file work is spread: local "
                               "(processes) or ray (Ray Data tasks on a cluster)."),
    address: str = typer.Option(None, "--address", help="Ray cluster address; default: a "
                                "local Ray instance. Implies --engine ray."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Index new and changed videos, drop deleted ones; resumes an interrupted build.

    Bad files are reported (one line each) and skipped; the exit status is 1 if any failed.
    """
    from vidlab.data.parallel import as_engine
    from vidlab.library.build import build_index

    def tick(rel: str, result) -> None:
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
        elif not json_out:
            console.print(f"indexed {rel}: {len(result.start)} windows", highlight=False)

    report = build_index(source, bundle, out, window=window, stride=stride, top_k=top_k,
                         workers=workers or None, runtime=runtime, on_file=tick,
                         engine=as_engine(engine, address))
    data = report.as_dict()
    if json_out:
        print_json(data)
    else:
        console.print(f"{out}: {data['videos']} videos, {data['windows']} windows, "
                      f"{data['hours']:.2f} h — added {len(data['added'])}, updated "
                      f"{len(data['updated'])}, moved {len(data['moved'])}, removed "
                      f"{len(data['removed'])}, unchanged {data['unchanged']}, failed "
                      f"{len(data['failed'])} ({data['wall_s']:.1f} s)", highlight=False)
    if data["failed"]:
        sys.exit(1)


BRIDGE_HELP = ("join two segments of the label separated by at most this many windows of "
               "other labels (a shot cut's window; 0: never; default 1).")


def _bridge(bridge: int | None) -> dict[str, int]:
    """`--bridge` when given (the library's default otherwise, without importing it here)."""
    return {} if bridge is None else {"bridge": bridge}


@index_app.command("search")
def search(
    index: Path = typer.Argument(..., help="The index (NAME.vlx/)."),
    label: str = typer.Option(None, "--label", help="Moments where this label is predicted."),
    like: Path = typer.Option(None, "--like", help="Moments like this clip (a file; indexed "
                                                   "or run through the index's model)."),
    start: float = typer.Option(None, "--start", min=0.0, help="--like: from this second."),
    end: float = typer.Option(None, "--end", min=0.0, help="--like: to this second."),
    exclude_self: bool = typer.Option(False, "--exclude-self",
                                      help="--like: leave out the query's own moments."),
    top: int = typer.Option(10, "--top", min=0, help="Results (0 with --label: all)."),
    min_prob: float = typer.Option(0.0, "--min-prob", min=0.0, max=1.0,
                                   help="--label: only windows at least this confident."),
    bridge: int = typer.Option(None, "--bridge", min=0, help="--label: " + BRIDGE_HELP),
    bundle: Path = typer.Option(None, "--bundle", help="--like with a clip outside the "
                                                       "library: the model (default: the "
                                                       "index's own)."),
    json_out: bool = typer.Option(False, "--json",
                                  help='Print [{"path", "start", "end", "score", "label"}].'),
) -> None:
    """Search by label (segments, merged) or by likeness to a clip (nearest moments)."""
    from vidlab.library.index import open_index
    from vidlab.library.search import search_label, search_like_clip

    if (label is None) == (like is None):
        raise typer.BadParameter("give exactly one of --label or --like")
    lib = open_index(index)
    if label is not None:
        results = search_label(lib, label, top=top or None, min_prob=min_prob,
                               **_bridge(bridge))
    else:
        results = search_like_clip(lib, like, start, end, top=top or 10,
                                   exclude_self=exclude_self, bundle=bundle)
    if json_out:
        print_json([{k: r[k] for k in ("path", "start", "end", "score", "label")}
                    for r in results])
        return
    for r in results:
        print(f"{r['score']:.3f}  {r['label']:<16} {r['start']:8.2f}–{r['end']:8.2f} s  "
              f"{r['path']}")
    if not results:
        console.print("(nothing found)")


@index_app.command("stats")
def stats(
    index: Path = typer.Argument(..., help="The index (NAME.vlx/)."),
    json_out: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Videos, windows, hours and the labels histogram of an index."""
    from vidlab.library.export import index_stats
    from vidlab.library.index import open_index

    data = index_stats(open_index(index))
    if json_out:
        print_json(data)
        return
    print(f"{data['index']}: {data['videos']} videos, {data['windows']} windows, "
          f"{data['hours']:.2f} h; model {data['model']}; {data['failed']} failed files; "
          f"{data['corrections']} corrections")
    for name, count in sorted(data["labels"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<20} {count}")


@index_app.command("export")
def export(
    index: Path = typer.Argument(..., help="The index (NAME.vlx/)."),
    label: str = typer.Option(..., "--label", help="Export the segments of this label."),
    out: Path = typer.Option(..., "-o", "--out", help="Manifest to write (JSONL)."),
    min_prob: float = typer.Option(0.0, "--min-prob", min=0.0, max=1.0),
    bridge: int = typer.Option(None, "--bridge", min=0, help=BRIDGE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """A manifest of the segments where a label is found (path, label, start, end, score)."""
    from vidlab.library.export import export_segments
    from vidlab.library.index import open_index

    data = export_segments(open_index(index), label, out, min_prob=min_prob,
                           overwrite=overwrite, **_bridge(bridge))
    if json_out:
        print_json(data)
    else:
        console.print(f"{data['segments']} segments ({data['seconds']:.1f} s) → {out}",
                      highlight=False)


@index_app.command("corrections")
def corrections(
    index: Path = typer.Argument(..., help="The index (NAME.vlx/)."),
    out: Path = typer.Option(..., "-o", "--out", help="Manifest to write (JSONL)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Every label correction (who/when/old/new) as a manifest for retraining."""
    from vidlab.library.export import export_corrections
    from vidlab.library.index import open_index

    data = export_corrections(open_index(index), out, overwrite=overwrite)
    if json_out:
        print_json(data)
    else:
        console.print(f"{data['corrections']} corrections → {out}", highlight=False)


@index_app.command("correct")
def correct(
    index: Path = typer.Argument(..., help="The index (NAME.vlx/)."),
    video: str = typer.Argument(..., help="An indexed video (its path)."),
    start: float = typer.Option(..., "--start", min=0.0),
    end: float = typer.Option(..., "--end", min=0.0),
    label: str = typer.Option(..., "--label", help="The right label of [start, end]."),
    who: str = typer.Option(..., "--who", help="Who makes the correction."),
    json_out: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Correct the label of a moment (what the page's correction form does)."""
    from vidlab.library.export import add_correction
    from vidlab.library.index import open_index

    lib = open_index(index)
    video_path = str(Path(video).resolve()) if Path(video).exists() else video
    record = add_correction(lib, video_path, start, end, label, who)
    if json_out:
        print_json(record)
    else:
        console.print(f"{record['path']} {start:g}–{end:g} s: {record['old']} → {label} "
                      f"({who}, {record['when']})", highlight=False)
