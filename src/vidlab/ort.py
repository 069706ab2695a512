"""ONNX Runtime sessions, configured once for this machine.

Below `models` (which verifies its ONNX exports here) and `runtime` (which serves bundles with
it), so neither imports the other to get a session. onnxruntime is imported on first use.
"""

from __future__ import annotations

import os


def make_ort_session(model_path: str, threads: int | None = None):
    """An ONNX Runtime session: CUDA provider first when available, all graph optimizations,
    intra-op threads = `threads` (default: every core this process may use), inter-op 1."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    opts.inter_op_num_threads = 1
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(model_path, sess_options=opts, providers=providers)
