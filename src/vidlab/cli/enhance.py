"""CLI verbs of the `enhance` stage (thin: parsing and printing only).

`vidlab enhance` is both a group (`vidlab enhance train ...`) and a command
(`vidlab enhance BUNDLE IN OUT`): anything that is not a sub-command name goes to the hidden
`run` sub-command.
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from vidlab.enhance.gate import HEADROOM


class _EnhanceGroup(TyperGroup):
    """Dispatch `enhance BUNDLE IN OUT ...` to `run`, `enhance train ...` to `train`."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


enhance_app = typer.Typer(
    cls=_EnhanceGroup, no_args_is_help=True,
    help="Restore compressed video or upscale it 2x with a small trained network.\n\n"
         "vidlab enhance BUNDLE IN OUT [--json] [--codec h264] [--crf 18] [--overwrite]\n\n"
         "vidlab enhance train --data ROOT_OR_MANIFEST --task restore|sr2x --out RUN")


def register(app: typer.Typer) -> None:
    """Add this stage's verbs to the root app."""
    app.add_typer(enhance_app, name="enhance")


@enhance_app.command("run", hidden=True)
def run_cmd(
    bundle: Path = typer.Argument(..., help="Enhancement bundle (RUN/enhancer.vidlab)."),
    src: Path = typer.Argument(..., metavar="IN", help="Video to enhance."),
    dst: Path = typer.Argument(..., metavar="OUT", help="Video to write."),
    codec: str = typer.Option("h264", "--codec", help="h264, h265, vp9, av1 or an encoder name."),
    crf: int = typer.Option(18, "--crf", help="Output quality (lower is better)."),
    preset: str = typer.Option(None, "--preset", help="Encoder speed preset (x264 names)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists."),
    threads: int = typer.Option(None, "--threads", help="Torch threads (default: torch's)."),
    ensemble: bool = typer.Option(None, "--ensemble/--no-ensemble",
                                  help="Average over input flips (4x the compute; default: on "
                                       "CUDA, off on the CPU)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, "
                                                      "cuda:1, ..."),
    reference: Path = typer.Option(None, "--reference",
                                   help="The clean video: also measure the PSNR gain."),
    no_gate: bool = typer.Option(False, "--no-gate",
                                 help="Full strength on every frame, whatever the input QP."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Enhance every frame of IN into OUT (frame count, timestamps and audio kept)."""
    from vidlab.cli.common import print_json, print_table
    from vidlab.enhance import enhance_video

    result = enhance_video(bundle, src, dst, codec=codec, crf=crf, overwrite=overwrite,
                           preset=preset, threads=threads, ensemble=ensemble,
                           reference=reference, gate=not no_gate, device=device)
    if as_json:
        print_json(result)
        return
    row = {**result, "input_qp": result["input_qp"]["estimate"],
           "action": result["model"]["action"],
           "gain_db": result.get("measured", {}).get("psnr_gain_db")}
    print_table([row], columns=["task", "frames", "input_qp", "action", "gain_db", "seconds",
                                "frames_per_s", "dst"], title="enhanced")
    typer.echo(result["model"]["message"])


@enhance_app.command("calibrate")
def calibrate_cmd(
    bundle: Path = typer.Argument(..., help="Enhancement bundle to calibrate (gets gate.json)."),
    data: Path = typer.Option(None, "--data", help="Clean clips neither trained nor tested on."),
    clips: int = typer.Option(8, "--clips", help="Clips to use."),
    frames: int = typer.Option(10, "--frames", help="Frames per clip."),
    qps: str = typer.Option(None, "--qps",
                            help="Constant QPs to calibrate at (comma-separated; default "
                                 "12,18,22,27,32,37,42,47,51, or those of --from-frames)."),
    floor: float = typer.Option(0.0, "--floor-db",
                                help="Least gain (dB) any calibration clip may get."),
    headroom: float = typer.Option(HEADROOM, "--headroom",
                                   help="Margin in strength: a kept strength must make no "
                                        "calibration clip worse even at (1 + HEADROOM) times "
                                        "it."),
    min_gain: float = typer.Option(0.1, "--min-gain-db",
                                   help="Least mean gain (dB) worth correcting for; below it "
                                        "the frames are passed through."),
    lowcut: int = typer.Option(None, "--lowcut",
                               help="Set the model's low-cut first (odd px: the residual's "
                                    "box mean is removed; 0: off); written with the gate."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Measure only; do not write gate.json."),
    save_frames: Path = typer.Option(None, "--save-frames",
                                     help="Write the per-frame measurements here (JSON), to "
                                          "derive gates with other thresholds later."),
    from_frames: list[Path] = typer.Option(None, "--from-frames",
                                           help="Fit the gate from measurements saved with "
                                                "--save-frames (repeat to pool several clip "
                                                "sets) instead of measuring --data."),
    threads: int = typer.Option(None, "--threads", help="Torch threads (default: torch's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Measure how much of the model's correction to keep per codec and input QP, so that it
    makes no calibration clip worse; writes BUNDLE/gate.json."""
    import torch

    from vidlab.cli.common import print_json, print_table
    from vidlab.enhance.calibrate import CALIBRATION_QPS, calibrate_bundle, refit_bundle
    from vidlab.errors import ConfigError

    try:
        qp_list = None if qps is None else tuple(int(q) for q in qps.split(","))
    except ValueError:
        raise ConfigError(f"--qps must be comma-separated integers, got {qps!r}") from None
    if (data is None) == (not from_frames):
        raise ConfigError("give either --data (clips to measure) or --from-frames (saved "
                          "measurements)")
    if from_frames:
        if lowcut is not None or save_frames:
            raise ConfigError("--lowcut and --save-frames belong to a measurement: the saved "
                              "measurements carry their low-cut")
        result = refit_bundle(bundle, from_frames, qps=qp_list, floor_db=floor,
                              min_gain_db=min_gain, headroom=headroom, write=not dry_run)
    else:
        if threads:
            torch.set_num_threads(threads)
        result = calibrate_bundle(bundle, data, num_clips=clips, num_frames=frames,
                                  qps=qp_list or CALIBRATION_QPS, floor_db=floor,
                                  min_gain_db=min_gain, write=not dry_run, lowcut=lowcut,
                                  headroom=headroom)
        measurements = result.pop("measurements")
        if save_frames:
            from vidlab.bundle import write_json_atomic

            write_json_atomic(save_frames, measurements)
    if as_json:
        print_json(result)
        return
    print_table([{"condition": k, **v} for k, v in result["gain_db"].items()],
                title="calibration: gain (dB) at full strength and gated")
    print_table([{"codec": k, **{f"QP{q:g}": a for q, a in t}}
                 for k, t in result["gate"]["tables"].items()], title="gate strength")


@enhance_app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Clean clips: folder tree or manifest."),
    task: str = typer.Option("restore", "--task", help="restore (compression) or sr2x."),
    out: Path = typer.Option(..., "--out", help="Run directory (checkpoints, log, bundle)."),
    steps: int = typer.Option(2000, "--steps", help="Optimizer steps in total."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN/checkpoints/last.pt."),
    batch_size: int = typer.Option(16, "--batch-size"),
    patch: int = typer.Option(64, "--patch", help="Training patch side (output pixels)."),
    frames: int = typer.Option(5, "--frames", help="Input frames (odd)."),
    channels: int = typer.Option(48, "--channels"),
    blocks: int = typer.Option(8, "--blocks", help="Residual blocks."),
    context_blocks: int = typer.Option(0, "--context-blocks",
                                       help="Residual blocks of a quarter-resolution context "
                                            "branch (0: none)."),
    align: bool = typer.Option(False, "--align", help="Warp neighbour frames' features onto the "
                                                      "centre frame's before fusing them."),
    lowcut: int = typer.Option(0, "--lowcut",
                               help="Remove the residual's box mean over this odd width (px; 0: "
                                    "off): the codec keeps low frequencies."),
    qp_cond: bool = typer.Option(False, "--qp-cond",
                                 help="restore: condition the model on each frame's QP as the "
                                      "decoder reports it (blind where a stream has none)."),
    luma_weight: float = typer.Option(0.0, "--luma-weight",
                                      help="Share of the loss on luma rather than RGB (0-1)."),
    loss: str = typer.Option("charbonnier", "--loss",
                             help="charbonnier (smooth L1) or mse (what PSNR measures; for a "
                                  "short final fine-tune)."),
    init: Path = typer.Option(None, "--init", help="Start from this enhancement bundle's "
                                                   "weights (those whose names/shapes fit)."),
    lr: float = typer.Option(1e-3, "--lr"),
    windows: int = typer.Option(192, "--windows",
                                help="Degraded/clean training windows in the pool (+1/8 for "
                                     "validation, at most 16)."),
    quality: str = typer.Option("30:51", "--quality",
                                help="Compression strength range MIN:MAX (crf or qp)."),
    h265_share: float = typer.Option(0.2, "--h265-share",
                                     help="restore: share of windows encoded with x265 (0-1)."),
    low_delay_share: float = typer.Option(0.0, "--low-delay-share",
                                          help="restore: share of windows encoded low-delay "
                                               "(no B-frames; 0-1)."),
    tone_share: float = typer.Option(0.0, "--tone-share",
                                     help="Share of windows re-toned dark and/or low-contrast "
                                          "before degrading (0-1)."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(None, "--threads", help="Torch threads (default: torch's)."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, "
                                                      "cuda:1, ..."),
    max_minutes: float = typer.Option(None, "--max-minutes",
                                      help="Time budget: the steps are cut to what fits and "
                                           "the cosine re-fitted; the bundle is written."),
    workers: int = typer.Option(None, "--workers", help="Processes making the training pairs "
                                                        "(default: one per core, at most 8)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train an enhancer on degraded/clean pairs made from clean clips; writes RUN/enhancer.vidlab."""
    from vidlab.cli.common import print_json, print_table
    from vidlab.enhance import EnhanceTrainConfig, train_enhancer
    from vidlab.errors import ConfigError

    try:
        qmin, qmax = (int(v) for v in quality.split(":"))
    except ValueError:
        raise ConfigError(f"--quality must be MIN:MAX, got {quality!r}") from None
    cfg = EnhanceTrainConfig(
        task=task, steps=steps, batch_size=batch_size, patch=patch, num_frames=frames,
        channels=channels, num_blocks=blocks, context_blocks=context_blocks, align=align,
        qp_cond=qp_cond, lowcut=lowcut, luma_weight=luma_weight, loss=loss,
        init=str(init) if init else None, lr=lr,
        seed=seed, threads=threads,
        device=device, pool_workers=workers, max_minutes=max_minutes,
        eval_every=max(1, min(100, steps // 4)), checkpoint_every=max(1, min(100, steps // 4)),
        pool={"windows": windows, "val_windows": max(1, min(16, windows // 8)),
              "quality_range": (qmin, qmax), "h265_share": h265_share,
              "low_delay_share": low_delay_share, "tone_share": tone_share})
    summary = train_enhancer(data, out, cfg, resume=resume)
    if as_json:
        print_json(summary)
    else:
        row = {k: summary.get(k) for k in ("task", "step", "seconds", "bundle")}
        row.update({k: summary.get("val", {}).get(k) for k in ("psnr_input", "psnr",
                                                                "psnr_gain_db")})
        print_table([row], title="enhance train")
