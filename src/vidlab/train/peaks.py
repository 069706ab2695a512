"""The machine's arithmetic limits, measured: matmul peaks in fp32, bf16 and INT8.

A model's speed means little without the limit it runs against: 20 GFLOP/s is 15 % of an AVX-512
core pair's fp32 peak but under 5 % of its AMX bf16 peak. `matmul_peaks` times square matmuls,
the best case of each arithmetic, on the device and thread count the caller will use, so a
fraction of peak measured in the same run holds on a busy machine too. Sizes grow until one
product takes long enough to time, so the same call is quick where a dtype is slow (bf16 on a
CPU without bf16 units) and reaches 4096² where it is fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

DTYPES = ("fp32", "bf16", "int8")
SIZES = (512, 1024, 2048, 4096)
MIN_CALLS = 3
"""Timed products per size at least: the best of a few survives a burst of load from others."""


@dataclass
class MatmulPeaks:
    """Best GFLOP/s (INT8: GOP/s) of an n×n matmul per arithmetic; None where it cannot run."""

    fp32: float | None
    bf16: float | None
    int8: float | None
    device: str
    threads: int
    int8_engine: str | None = None
    """Whose INT8 GEMM reached `int8`: `torch` (`torch._int_mm`) or `onnxruntime` (MLAS, the
    kernels vidlab's INT8 variants run on; far faster than torch's on CPUs without VNNI/AMX)."""

    def for_precision(self, precision: str) -> float | None:
        """The peak a variant computing in `precision` (fp32/bf16/fp16/int8) runs against."""
        key = {"fp16": "bf16"}.get(precision, precision)
        return getattr(self, key, None) if key in DTYPES else None

    def to_dict(self) -> dict[str, float | str | int | None]:
        return asdict(self)


def matmul_peaks(device: str | torch.device = "cpu", seconds: float = 2.0,
                 dtypes: tuple[str, ...] = DTYPES) -> MatmulPeaks:
    """Measure the fp32, bf16 and INT8 (`torch._int_mm`) matmul peaks on `device`.

    Each dtype gets about `seconds` (more when a single product is slower than that). On CUDA,
    fp32 runs under the process's TF32 setting, as the models will.
    """
    dev = torch.device(device)
    found = {name: (_peak(name, dev, seconds) if name in dtypes else None) for name in DTYPES}
    engine = "torch" if found["int8"] else None
    if "int8" in dtypes and dev.type == "cpu":
        ort_rate = _peak("int8-ort", dev, seconds)
        if ort_rate and ort_rate > (found["int8"] or 0.0):
            found["int8"], engine = ort_rate, "onnxruntime"
    return MatmulPeaks(**found, device=str(dev), threads=torch.get_num_threads(),
                       int8_engine=engine)


def fraction_of_peak(gflops: float | None, peak: float | None) -> float | None:
    """`gflops / peak`, or None when either is unknown."""
    if not gflops or not peak:
        return None
    return gflops / peak


def _peak(name: str, device: torch.device, seconds: float) -> float | None:
    """Best rate over growing sizes; a size is tried only while one product stays cheap."""
    best = 0.0
    for n in SIZES:
        try:
            rate, one_call = _time_matmul(name, n, device, seconds / len(SIZES))
        except (RuntimeError, NotImplementedError, ImportError):  # no kernel for it here
            return best or None
        best = max(best, rate)
        if one_call * 8 * MIN_CALLS > seconds:  # the next size costs 8× more: stop
            break
    return best or None


def _time_matmul(name: str, n: int, device: torch.device, budget: float) -> tuple[float, float]:
    """(best GFLOP/s, seconds of one product) of an n×n product timed for about `budget` s."""
    product = _product(name, n, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    product()  # warm-up (kernel selection, packing)
    sync()
    fastest, end, calls = float("inf"), time.perf_counter() + budget, 0
    while calls < MIN_CALLS or time.perf_counter() < end:
        t0 = time.perf_counter()
        product()
        sync()
        fastest = min(fastest, time.perf_counter() - t0)
        calls += 1
    return 2 * n**3 / fastest / 1e9, fastest


def _product(name: str, n: int, device: torch.device) -> Callable[[], object]:
    """A callable computing one n×n product in arithmetic `name` on fixed random inputs."""
    g = torch.Generator(device="cpu").manual_seed(0)
    if name == "int8-ort":
        return _ort_int8_product(n, g)
    if name == "int8":
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8, generator=g).to(device)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8, generator=g).to(device)
        return lambda: torch._int_mm(a, b)
    dtype = torch.float32 if name == "fp32" else torch.bfloat16
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    return lambda: a @ b


def _ort_int8_product(n: int, g: torch.Generator) -> Callable[[], object]:
    """A callable running ONNX Runtime's `MatMulInteger` (uint8 × int8 → int32) on n×n inputs,
    with the thread count torch uses (what `vidlab bench` gives ORT sessions too)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "int8_matmul",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    # 7-bit weights, as ORT's x86 quantizers use (`reduce_range`): without VNNI, MLAS adds
    # u8×s8 pairs in int16, which full-range weights overflow (same speed either way)
    feeds = {"a": torch.randint(0, 255, (n, n), dtype=torch.uint8, generator=g).numpy(),
             "b": torch.randint(-64, 64, (n, n), dtype=torch.int8, generator=g).numpy()}
    return lambda: session.run(None, feeds)
