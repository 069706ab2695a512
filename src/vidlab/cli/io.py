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
    src: Path = typer.Argument(..., help="Input video."),
    dst: Path = typer.Argument(..., help="Output video (extension picks the container)."),
    codec: str = typer.Option("h264", "--codec", help="h264, h265, vp9 or av1."),
    crf: int | None = typer.Option(None, "--crf", help="Quality (lower is better; codec default if unset)."),
    preset: str | None = typer.Option(None, "--preset", help="Speed preset, x264 names for every codec (ultrafast..veryslow)."),
    size: str | None = typer.Option(None, "--size", help="Short side (360) or WIDTHxHEIGHT (640x360)."),
    fps: float | None = typer.Option(None, "--fps", help="Output frame rate (frames dropped/repeated by time)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace DST if it exists."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Re-encode a video (streaming, atomic) and report size, compression ratio and PSNR."""
    from vidlab.io import transcode

    result = transcode(src, dst, codec=codec, crf=crf, preset=preset, size=_parse_size(size),
                       fps=fps, overwrite=overwrite)
    if as_json:
        print_json(result.to_dict())
    else:
        print_table([{"field": k, "value": v} for k, v in result.to_dict().items()],
                    title="transcode")


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
