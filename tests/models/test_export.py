"""ONNX export: a dynamic batch axis, proven by running ONNX Runtime at batch 2 after exporting
at batch 1, and outputs within 1e-4 of PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from tests.models.helpers import small_input_shape

from vidlab.errors import ModelError
from vidlab.models import create, list_models
from vidlab.models.export import export_onnx
from vidlab.ort import make_ort_session

# Every family through its CPU-sized variant, plus the full-size networks whose layers the tiny
# ones do not cover (torchvision R3D-18 for the accel stage, and X3D-XS's depthwise/SE stack).
EXPORTED = list_models("*_tiny") + ["r3d_18", "x3d_xs"]


@pytest.mark.parametrize("name,kwargs", [(n, {}) for n in EXPORTED]
                         + [("r2plus1d_tiny", {"frame_diff": True})],
                         ids=[*EXPORTED, "r2plus1d_tiny-frame_diff"])
def test_export_has_dynamic_batch_and_matches_pytorch(name, kwargs, tmp_path):
    torch.manual_seed(0)
    model = create(name, num_classes=6, **kwargs).eval()
    frames, size = small_input_shape(name)
    # verify=False: this test makes the same check itself, independently of export_onnx
    path = export_onnx(model, tmp_path / f"{name}.onnx", frames, size, batch=1, verify=False)

    graph_input = onnx.load(str(path)).graph.input[0]
    batch_dim = graph_input.type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField("dim_value")

    x = torch.randn(2, 3, frames, size, size)
    with torch.no_grad():
        expected = model(x).numpy()
    session = make_ort_session(str(path))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == (2, 6)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_lstm_variant_exports(tmp_path):
    model = create("lrcn_tiny", num_classes=3, rnn="lstm").eval()
    path = export_onnx(model, tmp_path / "lstm.onnx", 8, 32)
    assert path.is_file()


def test_export_restores_training_mode_and_writes_nothing_else(tmp_path):
    model = create("r2plus1d_tiny", num_classes=3).train()
    export_onnx(model, tmp_path / "out" / "m.onnx", 8, 32)
    assert model.training
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.onnx"]


def test_a_graph_that_does_not_reproduce_pytorch_is_refused(tmp_path):
    class StatefulScale(torch.nn.Module):
        """Python state in forward: every exporter bakes in one call's value."""

        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x.flatten(1)[:, :2] * self.calls

    with pytest.raises(ModelError, match=r"bad\.onnx.*differs from PyTorch"):
        export_onnx(StatefulScale(), tmp_path / "bad.onnx", 2, 8)
    assert list(tmp_path.iterdir()) == []
