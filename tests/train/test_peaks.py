"""The machine's matmul peaks: every arithmetic measured, on products that compute the right
thing, and fractions of peak matched to a variant's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidlab.train.peaks import MatmulPeaks, _product, fraction_of_peak, matmul_peaks


def test_peaks_of_every_arithmetic_are_measured_on_this_machine():
    peaks = matmul_peaks(seconds=0.05)
    assert peaks.fp32 > 0 and peaks.bf16 > 0 and peaks.int8 > 0
    assert peaks.int8_engine in ("torch", "onnxruntime")
    assert peaks.device == "cpu" and peaks.threads == torch.get_num_threads()
    assert set(peaks.to_dict()) >= {"fp32", "bf16", "int8", "int8_engine"}
    only = matmul_peaks(seconds=0.05, dtypes=("fp32",))
    assert only.fp32 > 0 and only.bf16 is None and only.int8 is None


@pytest.mark.parametrize("name", ["fp32", "bf16", "int8", "int8-ort"])
def test_the_timed_products_compute_the_matmul(name):
    out = _product(name, 64, torch.device("cpu"))()
    out = torch.as_tensor(out[0] if isinstance(out, list) else out)
    g = torch.Generator(device="cpu").manual_seed(0)  # the inputs `_product` draws
    if name == "int8-ort":
        a = torch.randint(0, 255, (64, 64), dtype=torch.uint8, generator=g).numpy()
        b = torch.randint(-64, 64, (64, 64), dtype=torch.int8, generator=g).numpy()
        expected = a.astype(np.int64) @ b.astype(np.int64)
    elif name == "int8":
        a = torch.randint(-128, 127, (64, 64), dtype=torch.int8, generator=g)
        b = torch.randint(-128, 127, (64, 64), dtype=torch.int8, generator=g)
        expected = a.long().numpy() @ b.long().numpy()
    else:
        a, b = torch.randn(64, 64, generator=g), torch.randn(64, 64, generator=g)
        expected = (a.double() @ b.double()).numpy()
    tol = 0.05 * float(np.abs(expected).max()) if name == "bf16" else 1e-3
    assert np.abs(out.double().numpy() - expected).max() <= tol


def test_a_variant_is_held_against_the_peak_of_its_arithmetic():
    peaks = MatmulPeaks(fp32=100.0, bf16=300.0, int8=500.0, device="cpu", threads=2)
    assert peaks.for_precision("fp32") == 100.0
    assert peaks.for_precision("bf16") == peaks.for_precision("fp16") == 300.0
    assert peaks.for_precision("int8") == 500.0
    assert peaks.for_precision("fp64") is None
    assert fraction_of_peak(50.0, peaks.for_precision("bf16")) == pytest.approx(1 / 6)
    assert fraction_of_peak(None, 100.0) is None and fraction_of_peak(5.0, None) is None
