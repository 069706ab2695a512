"""ONNX Runtime sessions, configured once for this machine.

Below `models` (which verifies its ONNX exports here) and `runtime` (which serves bundles with
it), so neither imports the other to get a session. onnxruntime is imported on first use.
"""

from __future__ import annotations

import logging
import os

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
"""Tried in this order when installed (onnxruntime-gpu; TensorRT also needs its libraries)."""


def make_ort_session(model_path: str, threads: int | None = None, gpu: bool = True):
    """An ONNX Runtime session: TensorRT, then CUDA execution provider first when available and
    `gpu`, then CPU; all graph optimizations; intra-op threads = `threads` (default: every core
    this process may use), inter-op 1."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    opts.inter_op_num_threads = 1
    available = ort.get_available_providers()
    wanted = (*GPU_PROVIDERS, "CPUExecutionProvider") if gpu else ("CPUExecutionProvider",)
    providers = [p for p in wanted if p in available]
    while True:  # an installed provider whose libraries are missing must not stop the model
        try:
            return ort.InferenceSession(model_path, sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own unrelated types here
            if len(providers) == 1:
                raise
            logging.getLogger(__name__).warning("ONNX Runtime %s unusable (%s); trying %s",
                                                providers[0], str(exc).splitlines()[0][:120],
                                                providers[1])
            providers = providers[1:]
