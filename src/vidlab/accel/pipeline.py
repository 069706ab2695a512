"""`optimize`: turn a bundle into a faster bundle — prune, fine-tune, export, quantize — and
measure every variant (latency, throughput, size, top-1 on the validation split) in one run,
then keep the fastest within the accuracy budget as the bundle's runtime.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from vidlab.accel.finetune import DEFAULT_DISTILL
from vidlab.accel.inputs import bundle_clips, dataset_splits, top1
from vidlab.accel.measure import size_mb, time_runners
from vidlab.bundle import (
    ONNX_FILE,
    ONNX_INT8_FILE,
    WEIGHTS_FILE,
    Bundle,
    check_bundle_output,
    load_bundle,
    save_bundle,
)
from vidlab.errors import BundleError, ConfigError, DatasetError

log = logging.getLogger(__name__)



def optimize(bundle_path: str | Path, out_path: str | Path, onnx: bool = True, int8: bool = False,
             prune: float | None = None, finetune_epochs: int = 0, data: str | Path | None = None,
             prune_mode: str = "structured", int8_method: str = "auto", calib_clips: int = 32,
             eval_clips: int | None = 256, finetune_lr: float | None = None,
             distill: float = DEFAULT_DISTILL, max_drop: float = 1.0, bf16: bool | None = None,
             timing_rounds: int = 5, threads: int | None = None, device: str | None = None,
             overwrite: bool = False) -> Bundle:
    """Write `out_path`: the bundle's model pruned/fine-tuned/exported/quantized as asked.

    Variants compose in this order: prune (`prune` ratio, "structured" or "unstructured") →
    fine-tune (`finetune_epochs` on the training split, distilling from the unpruned model
    with weight `distill`) → ONNX fp32 (`onnx`) → ONNX INT8
    (`int8`; INT8 is calibrated on training clips through the pruned, fine-tuned model;
    `int8_method` "auto" measures the candidate formats and keeps the fastest one within
    `max_drop`). PyTorch bf16 (autocast over the same weights, runtime `torch-bf16`) is a
    candidate too: `bf16` None measures it where bf16 is native on `device` (a GPU with bf16, a
    CPU with AMX/AVX512-BF16), True/False always/never.

    The output's metrics.json gets `variants[runtime] = {latency_ms_p50, latency_ms_p95,
    throughput_clips_s, size_mb, top1, views, precision, gflops_per_clip, achieved_gflops, ...}`
    for every runtime it holds (top-1 on the validation split, one centred view per video:
    `views` "1x1"), plus `optimize` (what was done, measured against the source bundle's
    PyTorch eager in the same run) whose `chosen` runtime, the fastest at batch 1 whose top-1
    is at most `max_drop` points below the source's, is what `load_runner` runs by default.
    `device` (default: CUDA when present) runs PyTorch there and ONNX Runtime through its
    TensorRT/CUDA providers when installed; `threads` (default: all cores) applies to PyTorch
    and ONNX Runtime alike. Raises `OutputExistsError` if `out_path` exists and not `overwrite`.
    """
    import torch

    from vidlab.accel import prune as pruning
    from vidlab.accel.finetune import finetune
    from vidlab.accel.onnx_export import export_verified
    from vidlab.accel.quantize import quantize_best
    from vidlab.models.flops import count_gflops
    from vidlab.models.tuning import bf16_is_fast
    from vidlab.runtime import PRECISIONS, OnnxRunner, TorchRunner

    src = load_bundle(bundle_path)
    out = check_bundle_output(out_path, overwrite)
    if out.resolve() == src.path.resolve():
        raise BundleError("output must differ from the input bundle", out)
    if not 0.0 <= distill <= 1.0:
        raise ConfigError(f"--distill must be in [0, 1], got {distill}")
    if not 0.0 <= max_drop <= 100.0:
        raise ConfigError(f"--max-drop is in top-1 points, 0 to 100, got {max_drop}")
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with_bf16 = bf16_is_fast(dev) if bf16 is None else bf16
    if prune_mode not in ("structured", "unstructured"):
        raise BundleError(f"unknown prune mode {prune_mode!r} (structured or unstructured)")
    started = time.time()
    if threads:
        torch.set_num_threads(threads)
    splits = dataset_splits(src, data)
    if not splits.val:
        raise DatasetError("has no validation clips to measure accuracy on", data or src.path)
    pre = src.preprocess()
    val = bundle_clips(src, splits.val, eval_clips)
    train = bundle_clips(src, splits.train, calib_clips, seed=1) if int8 else None
    source_model = src.build_model()
    model = src.build_model()
    info: dict[str, Any] = {"source": str(src.path), "data": str(data), "val_clips": len(val),
                            "ort": {"intra_op_threads": threads or len(os.sched_getaffinity(0)),
                                    "graph_optimization_level": "ORT_ENABLE_ALL"}}
    model_spec = src.model_spec
    if prune:
        if prune_mode == "structured":
            info["prune"] = {"mode": "structured", **pruning.prune_structured(model, prune)}
            model_spec["pruned_channels"] = pruning.channel_spec(model)
            reapply = None
        else:
            report = pruning.prune_unstructured(model, prune)
            masks = {n: (p != 0) for n, p in model.named_parameters() if n in _masked(model)}
            info["prune"] = {"mode": "unstructured", **report}

            def reapply(m, masks=masks):
                with torch.no_grad():
                    for n, p in m.named_parameters():
                        if n in masks:
                            p.mul_(masks[n])
        if finetune_epochs > 0:
            info["finetune"] = finetune(src, model, splits, finetune_epochs, lr=finetune_lr,
                                        on_epoch=reapply, distill_alpha=distill,
                                        teacher=source_model if distill > 0 else None)
            if prune_mode == "unstructured":
                info["prune"]["compressed_mb_after"] = pruning.compressed_mb(model)
        model.eval()
    tmp = Path(tempfile.mkdtemp(prefix="vidlab-optimize-"))
    try:
        extra: dict[str, Path] = {}
        if onnx or int8:
            extra[ONNX_FILE] = tmp / ONNX_FILE
            info["onnx"] = export_verified(model, extra[ONNX_FILE], val, pre.num_frames, pre.crop_size)
        if int8:
            extra[ONNX_INT8_FILE] = tmp / ONNX_INT8_FILE
            assert train is not None
            methods = None if int8_method == "auto" else [int8_method]
            info["int8"] = quantize_best(extra[ONNX_FILE], extra[ONNX_INT8_FILE], train, val,
                                         methods=methods, max_top1_loss=max_drop / 100,
                                         timing_rounds=timing_rounds, threads=threads)
        state = model.state_dict()
        weights = tmp / WEIGHTS_FILE
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
        runners = {"source": TorchRunner(model=source_model, device=dev),
                   "torch": TorchRunner(model=model, device=dev)}
        if with_bf16:
            runners["torch-bf16"] = TorchRunner(model=model, device=dev, bf16=True)
        runners.update({rt: OnnxRunner(str(p), name=rt, threads=threads, device=dev) for rt, p in
                        (("onnx", extra.get(ONNX_FILE)), ("onnx-int8", extra.get(ONNX_INT8_FILE))) if p})
        timing = time_runners(runners, val.clips[:1], rounds=timing_rounds,
                              throughput_iters=min(2, timing_rounds))
        files = {"source": src.file(WEIGHTS_FILE), "torch": weights, "torch-bf16": weights,
                 "onnx": extra.get(ONNX_FILE), "onnx-int8": extra.get(ONNX_INT8_FILE)}
        gflops = {"source": count_gflops(source_model, pre.num_frames, pre.crop_size),
                  "model": count_gflops(model, pre.num_frames, pre.crop_size)}
        variants = {}
        for rt, run in runners.items():
            per_clip = gflops["source" if rt == "source" else "model"]
            variants[rt] = {**timing[rt], "size_mb": size_mb(files[rt]), **top1(run, val),
                            "precision": PRECISIONS.get(rt, "fp32"), "gflops_per_clip": per_clip,
                            "achieved_gflops": per_clip * (timing[rt]["throughput_clips_s"] or 0)}
        base = variants.pop("source")
        for v in variants.values():
            v["speedup_vs_source_torch"] = base["latency_ms_p50"] / v["latency_ms_p50"]
            v["size_ratio_vs_source_torch"] = base["size_mb"] / v["size_mb"]
        info["source_torch"] = base
        info.update(choose_variant(variants, base.get("top1"), max_drop))
        info["device"] = dev
        info["seconds"] = time.time() - started
        config = {k: v for k, v in src.config.items() if k not in ("format", "versions")}
        config["model"] = model_spec
        config["accel"] = {"prune": prune, "prune_mode": prune_mode if prune else None,
                           "finetune_epochs": finetune_epochs,
                           "int8_method": info.get("int8", {}).get("chosen"),
                           "runtime": info["chosen"]}
        metrics = {**src.metrics, "variants": variants, "optimize": info}
        return save_bundle(out, config=config, state_dict=state, metrics=metrics,
                           data_stats=src.data_stats, extra_files=extra, overwrite=overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def choose_variant(variants: dict[str, dict[str, Any]], source_top1: float | None,
                   max_drop: float) -> dict[str, Any]:
    """The runtime to run by default: the fastest at batch 1 whose top-1 is at most `max_drop`
    points below `source_top1`; if none is, the most accurate (with `within_budget` False).
    Without labels (top-1 None) accuracy cannot be judged: the fastest, said so."""
    fastest = sorted(variants, key=lambda rt: variants[rt]["latency_ms_p50"])
    if source_top1 is None or any(v.get("top1") is None for v in variants.values()):
        return {"chosen": fastest[0], "max_drop_points": max_drop, "within_budget": None}
    floor = source_top1 - max_drop / 100 - 1e-9
    ok = [rt for rt in fastest if variants[rt]["top1"] >= floor]
    if ok:
        return {"chosen": ok[0], "max_drop_points": max_drop, "within_budget": True}
    best = max(fastest, key=lambda rt: variants[rt]["top1"])
    log.warning("no variant is within %.2f top-1 points of the source (%.2f%%): keeping the most "
                "accurate, %s (%.2f%%)", max_drop, 100 * source_top1, best,
                100 * variants[best]["top1"])
    return {"chosen": best, "max_drop_points": max_drop, "within_budget": False}


def _masked(model) -> set[str]:
    """Names of the conv/linear weights unstructured pruning acts on."""
    from torch import nn

    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, kinds)}
