"""CLI verbs of the `io` stage (thin: parsing and printing only)."""

from __future__ import annotations

from pathlib import Path

import typer

from vidlab.cli.common import console, print_json, print_table


def _parse_size(text: str | None) -> int | tuple[int, int] | None:
    """`360` (short side) or `640x360` (width×height, as ffmpeg's -s) → reader size."""
    if not text:
        return None
    if "x" in text.lower():
        w, h = (int(v) for v in text.lower().split("x"))
        return h, w
    return int(text)


def probe_cmd(
    files: list[Path] = typer.Argument(..., help="Video files to describe."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (an object for one file, a list for several)."),
) -> None:
    """Describe videos: codec, size, exact frame count, fps, rotation, audio."""
    from vidlab.io import probe

    infos = [probe(f).to_dict() for f in files]
    if as_json:
        print_json(infos[0] if len(infos) == 1 else infos)
        return
    for info in infos:
        print_table([{"field": k, "value": v} for k, v in info.items() if k != "path"],
                    title=info["path"])


def transcode_cmd(
    src: Path = typer.Argument(..., help="Input video, or a manifest (.jsonl/.csv) or "
                               "folder-per-class tree of videos."),
    dst: Path = typer.Argument(..., help="Output video (extension picks the container); for "
                               "a manifest or folder: the output folder."),
    codec: str = typer.Option("h264", "--codec", help="h264, h265, vp9 or av1."),
    crf: int | None = typer.Option(None, "--crf", help="Quality (lower is better; codec default if unset)."),
    preset: str | None = typer.Option(None, "--preset", help="Speed preset, x264 names for every codec (ultrafast..veryslow)."),
    size: str | None = typer.Option(None, "--size", help="Short side (360) or WIDTHxHEIGHT (640x360)."),
    fps: float | None = typer.Option(None, "--fps", help="Output frame rate (frames dropped/repeated by time)."),
    gop: int | None = typer.Option(None, "--gop", help="Keyframe interval cap (short GOPs keep clip seeks cheap)."),
    workers: int | None = typer.Option(None, "--workers", help="Manifest: processes (default: all cores)."),
    engine: str = typer.Option("local", "--engine", help="Manifest: how the per-file work is "
                               "spread, local (processes) or ray (Ray Data tasks on a cluster)."),
    address: str | None = typer.Option(None, "--address", help="Manifest: Ray cluster address "
                                       "(default: a local Ray instance). Implies --engine ray."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Re-encode a video (streaming, atomic) and report size, compression ratio and PSNR; or
    every video of a manifest/folder into DST (same layout + manifest.jsonl, resumable)."""
    if src.is_dir() or src.suffix.lower() in (".jsonl", ".csv"):
        _transcode_many(src, dst, codec, crf, preset, size, fps, gop, workers, engine,
                        address, overwrite, as_json)
        return
    from vidlab.io import transcode

    result = transcode(src, dst, codec=codec, crf=crf, preset=preset, size=_parse_size(size),
                       fps=fps, overwrite=overwrite, gop=gop)
    if as_json:
        print_json(result.to_dict())
    else:
        print_table([{"field": k, "value": v} for k, v in result.to_dict().items()],
                    title="transcode")


def _transcode_many(src: Path, dst: Path, codec: str, crf: int | None, preset: str | None,
                    size: str | None, fps: float | None, gop: int | None, workers: int | None,
                    engine: str, address: str | None, overwrite: bool, as_json: bool) -> None:
    from vidlab.data.parallel import as_engine
    from vidlab.data.transcoding import TranscodeSpec, transcode_manifest

    if size and not size.isdigit():
        raise typer.BadParameter("a manifest takes --size as a short side (e.g. 256)")
    spec = TranscodeSpec(codec, crf=crf, preset=preset, size=int(size) if size else None,
                         gop=gop, fps=fps)
    summary = transcode_manifest(src, dst, spec, workers=workers,
                                 engine=as_engine(engine, address), overwrite=overwrite,
                                 progress=not as_json)
    if as_json:
        print_json(summary)
        return
    console.print(f"transcoded {summary['transcoded']} of {summary['files']} files → "
                  f"{summary['manifest']} ({summary['input_bytes']} → {summary['output_bytes']} "
                  "bytes)")
    if summary["failures"]:
        print_table(summary["failures"], title=f"{len(summary['failures'])} files failed")


def quality_cmd(
    ref: Path = typer.Argument(..., help="Reference (pristine) video."),
    dist: Path = typer.Argument(..., help="Distorted video, same frame count and size."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON with per-frame values."),
) -> None:
    """PSNR (luma) and SSIM (luma, Gaussian window) per frame and mean, frames aligned by index."""
    from vidlab.io import quality

    result = quality(ref, dist)
    if as_json:
        print_json(result.to_dict())
        return
    print_table([{"field": k, "value": v} for k, v in result.to_dict().items()
                 if not k.endswith("_per_frame")], title="quality")
    console.print("PSNR: luma (Y), identical frames count as 100 dB; SSIM: luma, 11x11 Gaussian σ=1.5")


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.command("probe")(probe_cmd)
    app.command("transcode")(transcode_cmd)
    app.command("quality")(quality_cmd)
