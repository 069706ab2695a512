"""INT8 post-training quantization with ONNX Runtime, chosen by measurement.

Static quantization calibrates activation ranges on real training clips (MinMax); the
calibration is computed once and cached, then reused by every static format we try. Which
format is fastest depends on the model family and the CPU (measured on a Zen 3 without VNNI:
QDQ per-tensor ≈ 1.85× over fp32 for R3D-18, per-channel ≈ 1.5×, dynamic ≈ 1.4×; for a
VideoMAE-shaped transformer on an AVX2 EPYC, dynamic INT8 of the MatMuls alone ≈ 1.2× while
also quantizing its patch-embedding Conv (ORT's ConvInteger, 3× slower than the fp32 Conv
there) ≈ 1.0×), so `quantize_best` builds the candidates for the model's op mix, times them
against fp32 in one interleaved run, and keeps the fastest whose accuracy stays within the
allowed loss.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from vidlab.accel.inputs import predicted, top1
from vidlab.accel.measure import size_mb, time_runners
from vidlab.data.clips import ClipSet
from vidlab.errors import ModelError
from vidlab.runtime import OnnxRunner

log = logging.getLogger(__name__)

DYNAMIC_OPS: dict[str, list[str] | None] = {"dynamic": None,
                                             "dynamic-matmul": ["MatMul", "Attention", "LSTM"]}
"""The dynamic methods and the ops each quantizes (None: every op ORT can; `dynamic-matmul`:
the matmul-like ops of ORT's dynamic registry, never Conv). They need no calibration clips."""
METHODS = ("qdq-per-tensor", "qdq-per-channel", "qoperator", *DYNAMIC_OPS)
_MATMUL_OPS = {"MatMul", "Gemm", "LSTM", "GRU", "RNN", "Attention", "MultiHeadAttention"}


def op_mix(model_path: str | Path) -> dict[str, float]:
    """Share of weight parameters consumed by convolutions vs matmul-like ops (Linear/GRU/attention)."""
    import onnx

    model = onnx.load(str(model_path))
    sizes = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}
    conv = sum(sizes.get(n, 0) for node in model.graph.node if node.op_type == "Conv" for n in node.input)
    mm = sum(sizes.get(n, 0) for node in model.graph.node if node.op_type in _MATMUL_OPS
             for n in node.input)
    total = max(1, conv + mm)
    return {"conv_share": conv / total, "matmul_share": mm / total}


def candidate_methods(model_path: str | Path) -> list[str]:
    """Formats worth trying: static ones for conv-heavy models, dynamic first for matmul-heavy.

    Matmul-heavy models try dynamic INT8 both of every op and of the matmul-like ops alone:
    a convolution left in (a transformer's patch embedding, a CNN+RNN's frame encoder) can
    be slower as ConvInteger than in fp32, and only timing says which way it goes.
    """
    mix = op_mix(model_path)
    if mix["conv_share"] >= 0.5:
        return ["qdq-per-tensor", "qdq-per-channel", "qoperator"]
    return ["dynamic", "dynamic-matmul", "qdq-per-tensor"]


class _PerTensorFallbackNotice(logging.Filter):
    """ORT warns on the root logger for every 1-D weight (a norm's scale) that per-channel QDQ
    cannot split by channel, then quantizes it per tensor — as intended; keep it at debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "is out-of-range for weight" in record.getMessage():
            log.debug("%s (quantized per tensor)", record.getMessage())
            return False
        return True


class _ClipReader(CalibrationDataReader):
    """An ORT `CalibrationDataReader` over preprocessed clips, one clip per batch."""

    def __init__(self, input_name: str, clips: ClipSet):
        self.input_name, self.clips, self.i = input_name, clips, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.clips):
            return None
        self.i += 1
        return {self.input_name: self.clips.clips[self.i - 1:self.i]}

    def rewind(self) -> None:
        self.i = 0


def preprocess_for_quantization(fp32_path: str | Path, out_path: str | Path) -> Path:
    """ORT's recommended pre-pass (shape inference + graph optimization, folding BN into Conv)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=True)
    except Exception as exc:  # the pre-pass is an optimization: quantize the raw export instead
        log.warning("quantization pre-process failed (%s); quantizing the export as is", exc)
        shutil.copy2(fp32_path, out_path)
    return Path(out_path)


def quantize_int8(fp32_path: str | Path, out_path: str | Path, method: str,
                  calib: ClipSet | None = None, cache: str | Path | None = None) -> Path:
    """Quantize an fp32 ONNX model to INT8 with `method` (one of `METHODS`).

    Static methods need `calib` (clips from the training data); `cache` holds the computed
    activation ranges so several static formats share one calibration pass.
    """
    from onnxruntime import InferenceSession
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if method not in METHODS:
        raise ModelError(f"unknown INT8 method {method!r}; choose from {', '.join(METHODS)}")
    if method in DYNAMIC_OPS:
        quantize_dynamic(str(fp32_path), str(out_path), weight_type=QuantType.QInt8,
                         op_types_to_quantize=DYNAMIC_OPS[method])
        return Path(out_path)
    if calib is None or not len(calib):
        raise ModelError("static INT8 quantization needs calibration clips (pass data)", fp32_path)
    input_name = InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    reader = _ClipReader(input_name, calib)
    notice = _PerTensorFallbackNotice()
    logging.getLogger().addFilter(notice)
    try:
        quantize_static(
            str(fp32_path), str(out_path), reader,
            quant_format=QuantFormat.QOperator if method == "qoperator" else QuantFormat.QDQ,
            per_channel=method == "qdq-per-channel",
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibration_cache_path=str(cache) if cache else None,
        )
    finally:
        logging.getLogger().removeFilter(notice)
    return Path(out_path)


def quantize_best(fp32_path: str | Path, out_path: str | Path, calib: ClipSet | None,
                  evalclips: ClipSet, methods: list[str] | None = None,
                  max_top1_loss: float = 0.01, timing_rounds: int = 5,
                  threads: int | None = None) -> dict[str, Any]:
    """Try INT8 `methods` (default: `candidate_methods`), keep the fastest accurate one.

    Accuracy is top-1 on `evalclips` (through `vidlab.train.evaluate`, with the views the
    clips were loaded with) when they carry labels, else argmax agreement with fp32
    (≥ 1 − `max_top1_loss`). Returns the report stored in metrics.json: every candidate's
    latency, size, accuracy and agreement, the choice and why.
    """
    methods = list(methods or candidate_methods(fp32_path))
    if calib is None or not len(calib):
        methods = [m for m in methods if m in DYNAMIC_OPS] or ["dynamic"]
    tmp = Path(tempfile.mkdtemp(prefix="vidlab-int8-"))
    try:
        pre = preprocess_for_quantization(fp32_path, tmp / "pre.onnx")
        files, failures = {}, {}
        for m in methods:
            try:
                files[m] = quantize_int8(pre, tmp / f"{m}.onnx", m, calib, cache=tmp / "calib.cache")
            except Exception as exc:  # one format failing (an unsupported op) must not stop the rest
                log.warning("INT8 %s failed: %s", m, exc)
                failures[m] = str(exc)
        if not files:
            raise ModelError(f"every INT8 method failed: {failures}", fp32_path)
        runners = {"fp32": OnnxRunner(str(fp32_path), threads=threads)}
        runners.update({m: OnnxRunner(str(p), name=m, threads=threads) for m, p in files.items()})
        timing = time_runners(runners, evalclips.clips[:1], rounds=timing_rounds, throughput_iters=0)
        ref = predicted(runners["fp32"], evalclips)
        measured = top1(runners["fp32"], evalclips)
        ref_top1 = measured["top1"]
        report: dict[str, Any] = {"fp32": {**timing["fp32"], **measured}, "candidates": {},
                                  "failed": failures}
        for m in files:
            agree = float((predicted(runners[m], evalclips) == ref).mean())
            report["candidates"][m] = {**timing[m], **top1(runners[m], evalclips),
                                       "argmax_agreement": agree, "size_mb": size_mb(files[m]),
                                       "speedup_vs_fp32": timing["fp32"]["latency_ms_p50"]
                                       / timing[m]["latency_ms_p50"]}

        def accurate(m: str) -> bool:
            c = report["candidates"][m]
            if ref_top1 is not None and c["top1"] is not None:
                return c["top1"] >= ref_top1 - max_top1_loss
            return c["argmax_agreement"] >= 1 - max_top1_loss

        ok = [m for m in files if accurate(m)]
        pool = ok or list(files)
        best = min(pool, key=lambda m: report["candidates"][m]["latency_ms_p50"])
        report["chosen"] = best
        report["reason"] = (
            f"fastest of {', '.join(files)} with top-1 within {max_top1_loss * 100:.0f} point(s) of fp32"
            if ok else f"no method kept accuracy within {max_top1_loss * 100:.0f} point(s); "
                       f"kept the fastest ({best})")
        report["op_mix"] = op_mix(fp32_path)
        shutil.copy2(files[best], out_path)
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
