"""`enhance_video`: a whole video through an enhancer, streamed, timestamps and audio kept."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from vidlab.enhance.infer import TILE, enhance_stream, load_enhancer
from vidlab.errors import VideoWriteError
from vidlab.io.reader import EXACT_RGB
from vidlab.io.writer import check_output, temp_path_for
from vidlab.progress import progress

DEFAULT_CRF = 18
"""Visually near-transparent for H.264/H.265, so the output does not undo the enhancement."""


def enhance_video(bundle: str | Path, src: str | Path, dst: str | Path, codec: str = "h264",
                  crf: int | None = DEFAULT_CRF, overwrite: bool = False,
                  preset: str | None = None, tile: int = TILE,
                  threads: int | None = None, ensemble: bool | None = None,
                  reference: str | Path | None = None,
                  gate: bool = True, device: str = "auto") -> dict[str, Any]:
    """Enhance every frame of `src` into `dst` (atomic write; `OutputExistsError` unless
    `overwrite`). Frame count and timestamps are kept; audio is copied through.

    Each frame's quantiser is read from the stream (H.264 QP maps, else x264/x265 settings)
    and the bundle's quality gate (`vidlab.enhance.gate`) decides how much of the model's
    correction to keep — none on near-lossless input, where the frame is passed through
    (`gate=False` runs the model at full strength). Memory is bounded: a sliding window of
    `num_frames` decoded frames, and frames with a side above `tile` are processed in
    overlapping tiles. `device`: `auto` runs the model on CUDA when present, else the CPU.
    `ensemble` averages over input flips (4x the compute, a few hundredths of a dB better);
    None: on for CUDA, where the compute is cheap, off on the CPU. With `reference` (the clean
    video) the result also holds the measured luma PSNR gain. Returns what was done, why, and
    how fast.
    """
    import torch

    from vidlab.enhance.gate import load_gate
    from vidlab.io import VideoReader

    src, dst = Path(src), check_output(dst, overwrite, source=src)
    if reference is not None:  # a bad reference fails before the work, not after it
        from vidlab.io import probe

        probe(reference)
    if threads:
        torch.set_num_threads(threads)
    from vidlab.train.hardware import pick_device

    model, b = load_enhancer(bundle)
    run_on = pick_device(device)
    model.to(run_on)
    if ensemble is None:
        ensemble = run_on.type == "cuda"
    quality_gate = load_gate(b.path) if gate else None
    reader = VideoReader(src, pixel_format=EXACT_RGB)
    h, w = reader.shape
    in_codec = reader.info.codec
    qps, qp_source = read_qps(reader, src)
    alphas = [1.0 if quality_gate is None else quality_gate.alpha(q, in_codec) for q in qps]
    report = describe(qps, alphas, in_codec, quality_gate is not None, qp_source)
    report["model"]["qp_conditioned"] = model.qp_conditioned  # told each frame's QP, or blind
    s = model.scale
    started = time.perf_counter()
    if s == 1 and alphas and not any(alphas):
        # nothing to improve: hand back the input's own stream, bit for bit
        copy_streams(src, dst, overwrite)
        report["model"]["message"] += "; the output is the input's stream, copied (not re-encoded)"
        frames_written, codec, crf = len(qps), in_codec, None
    else:
        frames_written = _enhance_frames(model, reader, dst, alphas, qps, codec, crf, preset,
                                         overwrite, tile, ensemble,
                                         f"enhance ({b.config.get('enhance_task')})")
    elapsed = time.perf_counter() - started
    reader.close()
    if reference is not None:
        try:
            report["measured"] = measured_gain(reference, src, dst, s)
        except Exception:  # the command failed: leave nothing behind to block a corrected re-run
            dst.unlink(missing_ok=True)
            raise
    return {
        "bundle": str(b.path), "task": b.config.get("enhance_task"), "src": str(src),
        "dst": str(dst), "frames": frames_written, "fps": round(float(reader.fps), 3),
        "width": w * s, "height": h * s, "input_width": w, "input_height": h,
        "codec": codec, "crf": crf, "device": str(run_on), "ensemble": ensemble,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(frames_written / max(elapsed, 1e-9), 2),
        "skipped_corrupt": reader.num_corrupt, **report,
    }


def _enhance_frames(model, reader, dst: Path, alphas: list[float], qps: list[float | None],
                    codec: str, crf: int | None, preset: str | None, overwrite: bool, tile: int,
                    ensemble: bool, desc: str) -> int:
    """Stream `reader`'s frames through the model at their strengths (and, for a QP-conditioned
    model, their QPs) into `dst`; frames written."""
    from vidlab.io import VideoWriter

    h, w = reader.shape
    s = model.scale
    odd = (w * s) % 2 or (h * s) % 2  # 4:2:0 needs even sizes; 4:4:4 keeps odd ones exact
    writer = VideoWriter(dst, fps=reader.fps, codec=codec, crf=crf, preset=preset,
                         pix_fmt="yuv444p" if odd else None, overwrite=overwrite,
                         audio_from=reader.path)
    times: list[float] = []

    def frames():
        for _, seconds, frame in reader.iter_frames_with_time():
            times.append(seconds)
            yield frame

    # a frame the first pass did not see (damage decodes differently) keeps the last strength
    strengths, quants = _then_last(alphas, 1.0), _then_last(qps, None)
    with writer:
        bar = progress(total=len(reader), desc=desc)
        for i, out in enumerate(enhance_stream(model, frames(), tile, ensemble, strengths,
                                               quants, reader.info.codec)):
            writer.write(out, times[i])
            bar.update(1)
        bar.close()
    return writer.frames_written


def _then_last(values: list, empty):
    """`values`, then its last item forever (`empty` if there is none)."""
    return itertools.chain(values, itertools.repeat(values[-1] if values else empty))


def read_qps(reader, src: Path) -> tuple[list[float | None], str]:
    """Every frame's QP (a decode-only pass: H.264 QP maps, else the x264/x265 settings in the
    stream, else None) and where it came from."""
    from vidlab.enhance.coded import frame_qps

    maps = [m for *_, m in reader.iter_frames_with_qp()]
    return frame_qps(maps, src)


def copy_streams(src: Path, dst: Path, overwrite: bool = False) -> None:
    """Write `src`'s video and audio packets into `dst` unchanged (atomic; `OutputExistsError`
    unless `overwrite`): the lossless way to hand back a video there is nothing to improve in."""
    import os

    import av

    check_output(dst, overwrite, source=src)
    tmp = temp_path_for(dst)
    try:
        with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
            streams = [st for st in inp.streams if st.type in ("video", "audio")]
            mapping = {st.index: out.add_stream_from_template(st) for st in streams}
            for packet in inp.demux(*streams):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
        os.replace(tmp, dst)
    except av.error.FFmpegError as exc:  # first: some of PyAV's are ValueErrors too
        raise VideoWriteError(f"cannot copy the input's streams into this container ({exc}); "
                              "choose an output with the input's extension", dst) from exc
    except ValueError as exc:  # PyAV: no container format for this name, or not for this codec
        raise VideoWriteError(f"cannot write the input's streams to this file name ({exc}); "
                              "choose an output with the input's extension", dst) from exc
    finally:
        tmp.unlink(missing_ok=True)


def describe(qps: list[float | None], alphas: list[float], codec: str, gated: bool,
             qp_source: str) -> dict[str, Any]:
    """What the input's quality was and what the model did about it, for the summary."""
    known = [q for q in qps if q is not None]
    est = round(float(sum(known) / len(known)), 2) if known else None
    applied = sum(a > 0 for a in alphas)
    full = sum(a >= 1 for a in alphas)
    mean_alpha = round(float(sum(alphas) / len(alphas)), 3) if alphas else 0.0
    if not gated:
        action, message = "enhanced", "no quality gate (turned off, or the bundle has none): full strength on every frame"
    elif applied == 0:
        action = "passed through"
        message = (f"input QP ~{est:g} ({codec}): the quality gate gives this quality strength 0 "
                   "(near-lossless, or where this model was measured not to help): frames were "
                   "passed through unchanged" if est is not None else
                   "the input's quantiser is unknown and this model's blind strength is 0: "
                   "frames were passed through unchanged")
    elif full == len(alphas):
        action, message = "enhanced", f"full strength on every frame (input QP ~{est})"
    else:
        action = "enhanced (gated)"
        message = (f"{applied} of {len(alphas)} frames corrected, mean strength {mean_alpha} "
                   f"(input QP ~{est})")
    return {"input_codec": codec,
            "input_qp": {"estimate": est, "source": qp_source,
                         "min": round(min(known), 2) if known else None,
                         "max": round(max(known), 2) if known else None},
            "model": {"action": action, "message": message, "frames_enhanced": applied,
                      "frames_passed_through": len(alphas) - applied,
                      "mean_strength": mean_alpha, "gated": gated}}


def measured_gain(reference: str | Path, src: str | Path, dst: str | Path,
                  scale: int = 1) -> dict[str, Any]:
    """PSNR of the input and of the output against `reference`, the clean video, frame by
    frame. Restore: `vidlab quality`'s luma (the decoded Y planes). sr2x: BT.601 luma of the
    RGB frames, the input upscaled 2x bicubically (the baseline sr2x must beat)."""
    from vidlab.io.quality import quality

    if scale == 1:
        before, after = quality(reference, src), quality(reference, dst)
        psnr_in, psnr_out, baseline = before.psnr, after.psnr, "input"
    else:
        psnr_in, psnr_out = _sr_psnrs(reference, src, dst)
        baseline = "bicubic"
    return {"reference": str(reference), "baseline": baseline,
            f"psnr_{baseline}": round(psnr_in, 3), "psnr_output": round(psnr_out, 3),
            "psnr_gain_db": round(psnr_out - psnr_in, 3)}


def _sr_psnrs(reference: str | Path, src: str | Path, dst: str | Path) -> tuple[float, float]:
    """Mean luma PSNR of `src` upscaled 2x bicubically and of `dst` against `reference`."""
    import numpy as np

    from vidlab.enhance.degrade import upscale2x_bicubic
    from vidlab.io import VideoReader, psnr
    from vidlab.io.quality import QualityMismatchError

    base, out = [], []
    with VideoReader(reference, pixel_format=EXACT_RGB) as ref, \
            VideoReader(src, pixel_format=EXACT_RGB) as low, \
            VideoReader(dst, pixel_format=EXACT_RGB) as high:
        if ref.shape != high.shape:
            raise QualityMismatchError(f"frame size {high.shape} differs from the reference's "
                                       f"{ref.shape}", dst)
        for a, b, c in zip(ref.iter_frames(), low.iter_frames(), high.iter_frames(),
                           strict=False):
            base.append(psnr(a, upscale2x_bicubic(b[None])[0]))
            out.append(psnr(a, c))
    return float(np.mean(base)), float(np.mean(out))
