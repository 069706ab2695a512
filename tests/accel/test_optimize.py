"""`optimize`: ONNX parity, INT8, structured/unstructured pruning, metrics, overwrite safety."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from tests.accel.conftest import make_bundle

from vidlab.accel import optimize
from vidlab.accel.inputs import bundle_clips, dataset_splits
from vidlab.bundle import load_bundle
from vidlab.errors import ConfigError, ModelError, OutputExistsError
from vidlab.runtime import choose_runtime, load_runner

VARIANT_KEYS = {"latency_ms_p50", "latency_ms_p95", "throughput_clips_s", "size_mb", "top1"}


@pytest.fixture(scope="module")
def int8_bundle(trained_bundle, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "r3d.int8.vidlab"
    return optimize(trained_bundle, out, int8=True, data=dataset, timing_rounds=1)


def test_onnx_export_matches_pytorch_on_real_clips(int8_bundle, dataset):
    report = int8_bundle.metrics["optimize"]["onnx"]
    assert report["max_abs_diff"] < 1e-4 and report["argmax_agreement"] == 1.0
    clips = bundle_clips(int8_bundle, dataset_splits(int8_bundle, dataset).val)
    torch_out = load_runner(int8_bundle, "torch")(clips.clips)
    onnx_out = load_runner(int8_bundle, "onnx")(clips.clips)  # a batch > 1: dynamic axis
    np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4, rtol=1e-4)


def test_int8_runs_in_ort_close_to_fp32_and_is_3x_smaller(int8_bundle, dataset):
    clips = bundle_clips(int8_bundle, dataset_splits(int8_bundle, dataset).val)
    fp32 = load_runner(int8_bundle, "onnx")(clips.clips)
    int8 = load_runner(int8_bundle, "onnx-int8")(clips.clips)
    assert (fp32.argmax(1) == int8.argmax(1)).mean() >= 0.8
    assert np.abs(fp32 - int8).max() < 0.25 * np.abs(fp32).max() + 0.1
    ratio = int8_bundle.file("model.onnx").stat().st_size / int8_bundle.file("model.int8.onnx").stat().st_size
    assert ratio >= 3.0
    report = int8_bundle.metrics["optimize"]["int8"]
    assert report["chosen"] in report["candidates"] and report["reason"]
    assert set(report["candidates"]) == {"qdq-per-tensor", "qdq-per-channel", "qoperator"}  # conv net


def test_every_variant_is_measured_and_the_fastest_within_one_point_is_run(int8_bundle):
    from vidlab.models.tuning import cpu_has_bf16

    metrics = json.loads(int8_bundle.file("metrics.json").read_text())
    variants, info = metrics["variants"], metrics["optimize"]
    # PyTorch bf16 is a candidate by default only where bf16 is native
    expected = {"torch", "onnx", "onnx-int8"} | ({"torch-bf16"} if cpu_has_bf16() else set())
    assert set(variants) == expected
    for v in variants.values():
        assert set(v) >= VARIANT_KEYS and v["latency_ms_p50"] > 0 and 0 <= v["top1"] <= 1
        assert v["gflops_per_clip"] > 0
        assert v["achieved_gflops"] == pytest.approx(v["gflops_per_clip"] * v["throughput_clips_s"])
    floor = info["source_torch"]["top1"] - 0.01
    within = [rt for rt in variants if variants[rt]["top1"] >= floor - 1e-9]
    assert info["max_drop_points"] == 1.0 and info["within_budget"] is bool(within)
    assert info["chosen"] == min(within, key=lambda r: variants[r]["latency_ms_p50"])
    assert choose_runtime(load_bundle(int8_bundle.path)) == info["chosen"]


def test_trained_model_learned_the_task(int8_bundle):
    assert int8_bundle.metrics["variants"]["torch"]["top1"] >= 0.8  # else the INT8 checks are void


def test_structured_pruning_removes_channels_and_reloads(dataset, tmp_path):
    src = make_bundle(tmp_path / "r21d.vidlab", "r2plus1d_tiny")
    out = optimize(src.path, tmp_path / "pruned.vidlab", prune=0.5, finetune_epochs=1, data=dataset,
                   timing_rounds=1)
    before, after = src.build_model(), load_bundle(out.path).build_model()
    n_before = sum(p.numel() for p in before.parameters())
    n_after = sum(p.numel() for p in after.parameters())
    assert n_after < 0.6 * n_before
    block = after.layer2[0]
    assert block.conv1[0][0].out_channels == before.layer2[0].conv1[0][0].out_channels // 2  # midplanes
    assert block.conv1[0][3].out_channels == 16 and block.conv2[0][0].in_channels == 16
    assert block.conv2[0][3].out_channels == 32  # block output (residual) untouched
    assert after.stem[0].out_channels == before.stem[0].out_channels  # the stem is kept whole
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(load_runner(out, "torch")(x), load_runner(out, "onnx")(x), atol=1e-4)
    report = out.metrics["optimize"]["prune"]
    assert report["params_after"] == n_after and out.metrics["optimize"]["finetune"]["epochs"] == 1
    assert out.metrics["variants"]["torch"]["size_mb"] < 0.6 * src.file("weights.safetensors").stat().st_size / 1e6


def test_pruning_a_2d_resnet_per_frame_model(tmp_path):
    from vidlab.accel.prune import prune_structured
    from vidlab.models import create

    model = create("tsn_tiny", num_classes=2, num_frames=8).eval()
    report = prune_structured(model, 0.5)
    assert report["params_after"] < report["params_before"]
    assert model(torch.randn(2, 3, 8, 32, 32)).shape == (2, 2)


def test_pruning_an_unsupported_model_fails_clearly():
    from vidlab.accel.prune import prune_structured

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4))
    with pytest.raises(ModelError, match="structured pruning does not support"):
        prune_structured(model, 0.5)


def test_unstructured_pruning_reports_sparsity_and_size():
    from vidlab.accel.prune import prune_unstructured
    from vidlab.models import create

    model = create("r3d_tiny", num_classes=2, num_frames=8)
    report = prune_unstructured(model, 0.5)
    assert report["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert report["compressed_mb_after"] < 0.8 * report["compressed_mb_before"]
    zeros = sum(int((m.weight == 0).sum()) for m in model.modules() if isinstance(m, torch.nn.Conv3d))
    assert zeros > 0 and set(report["layers"]) >= {"stem.0", "fc"}


def test_optimize_refuses_to_overwrite(trained_bundle, dataset, tmp_path):
    out = tmp_path / "exists.vidlab"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(OutputExistsError, match="exists.vidlab"):
        optimize(trained_bundle, out, data=dataset)
    with pytest.raises(OutputExistsError, match="not a vidlab bundle"):  # before any work
        optimize(trained_bundle, out, data=dataset, overwrite=True)
    assert (out / "keep.txt").read_text() == "user file"
    with pytest.raises(ConfigError, match="--distill"):
        optimize(trained_bundle, tmp_path / "new.vidlab", data=dataset, prune=0.5, distill=1.5)
    assert not (tmp_path / "new.vidlab").exists()


def test_cli_optimize_error_is_one_line(trained_bundle, tmp_path, capsys):
    from vidlab.cli import main

    out = tmp_path / "o.vidlab"
    out.mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["optimize", str(trained_bundle), "-o", str(out)])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: OutputExistsError") and len(err.splitlines()) == 1


class _PooledMLP(torch.nn.Module):
    """A Linear-dominated video model (no convolutions): the dynamic-INT8 family."""

    def __init__(self):
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool3d((8, 4, 4))
        self.mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 16, 512),
                                       torch.nn.ReLU(), torch.nn.Linear(512, 2))

    def forward(self, x):
        return self.mlp(self.pool(x))


def test_linear_heavy_models_get_dynamic_int8_first(tmp_path):
    from vidlab.accel.quantize import candidate_methods, op_mix, quantize_int8
    from vidlab.models.export import export_onnx

    torch.manual_seed(0)
    fp32 = export_onnx(_PooledMLP().eval(), tmp_path / "mlp.onnx", num_frames=8, size=32)
    assert op_mix(fp32)["matmul_share"] > 0.9
    assert candidate_methods(fp32)[:2] == ["dynamic", "dynamic-matmul"]
    int8 = quantize_int8(fp32, tmp_path / "mlp.int8.onnx", "dynamic")
    # blocky input: the 8×8 average pooling keeps its unit scale, so logits are not ~0
    coarse = np.random.default_rng(0).standard_normal((16, 3, 8, 4, 4)).astype(np.float32)
    x = np.ascontiguousarray(coarse.repeat(8, axis=3).repeat(8, axis=4))
    ref, got = load_onnx(fp32)(x), load_onnx(int8)(x)
    assert np.abs(ref - got).max() < 0.25 * np.abs(ref).max()  # 8-bit activations, 2 layers
    assert (ref.argmax(1) == got.argmax(1)).mean() >= 0.75
    assert fp32.stat().st_size > 3 * int8.stat().st_size


class _ConvStemMLP(_PooledMLP):
    """A patch-embedding Conv in front of the MLP, as a video transformer has."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv3d(3, 3, kernel_size=(2, 4, 4), stride=(2, 4, 4))
        self.pool = torch.nn.AdaptiveAvgPool3d((8, 4, 4))

    def forward(self, x):
        return self.mlp(self.pool(self.stem(x)))


def test_dynamic_matmul_int8_leaves_convolutions_in_fp32(tmp_path):
    import onnx

    from vidlab.accel.quantize import candidate_methods, quantize_int8
    from vidlab.models.export import export_onnx

    torch.manual_seed(0)
    fp32 = export_onnx(_ConvStemMLP().eval(), tmp_path / "stem.onnx", num_frames=16, size=64)
    assert "dynamic-matmul" in candidate_methods(fp32)
    ops = {}
    for method in ("dynamic", "dynamic-matmul"):
        out = quantize_int8(fp32, tmp_path / f"{method}.onnx", method)
        ops[method] = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "ConvInteger" in ops["dynamic"] and "ConvInteger" not in ops["dynamic-matmul"]
    assert "Conv" in ops["dynamic-matmul"] and "MatMulInteger" in ops["dynamic-matmul"]
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 64, 64)).astype(np.float32)
    ref, got = load_onnx(fp32)(x), load_onnx(tmp_path / "dynamic-matmul.onnx")(x)
    assert np.abs(ref - got).max() < 0.1 * np.abs(ref).max()


def test_per_channel_int8_of_a_1d_weight_warns_nobody(tmp_path, caplog):
    """Frame differences' norm has a 1-D weight: ORT quantizes it per tensor (as it should) and
    used to print a root-logger WARNING about it to every user of `optimize --int8`."""
    from vidlab.accel.quantize import quantize_int8
    from vidlab.data.clips import ClipSet
    from vidlab.models import create
    from vidlab.models.export import export_onnx

    torch.manual_seed(0)
    model = create("r3d_tiny", num_classes=2, num_frames=8, frame_diff=True).eval()
    fp32 = export_onnx(model, tmp_path / "fd.onnx", num_frames=8, size=32)
    clips = np.random.default_rng(0).random((4, 3, 8, 32, 32)).astype(np.float32)
    calib = ClipSet(clips, np.zeros(4, int), np.arange(4), ["c.mp4"] * 4, ["a", "b"])
    with caplog.at_level(logging.WARNING):
        int8 = quantize_int8(fp32, tmp_path / "fd.int8.onnx", "qdq-per-channel", calib)
    assert "out-of-range" not in caplog.text
    x = clips[:2]
    assert (load_onnx(fp32)(x).argmax(1) == load_onnx(int8)(x).argmax(1)).all()


def load_onnx(path):
    from vidlab.runtime import OnnxRunner

    return OnnxRunner(str(path))


class _Constant(torch.nn.Module):
    """A teacher that is sure every clip is class `k`, whatever the labels say."""

    def __init__(self, k: int, classes: int = 2):
        super().__init__()
        self.logits = torch.full((classes,), -4.0)
        self.logits[k] = 4.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


def test_finetune_distils_from_the_teacher_not_only_the_labels(dataset, tmp_path):
    """Pure distillation (alpha 1) follows the teacher against the labels; alpha 0 does not."""
    from vidlab.accel.finetune import finetune

    bundle = make_bundle(tmp_path / "r3d.vidlab", "r3d_tiny")
    splits = dataset_splits(bundle, dataset)
    clips = bundle_clips(bundle, splits.val)
    predicted = {}
    for alpha in (0.0, 1.0):
        torch.manual_seed(0)
        model = bundle.build_model()
        info = finetune(bundle, model, splits, 3, lr=3e-3, batch_size=4, teacher=_Constant(1),
                        distill_alpha=alpha)
        assert info["distill"]["alpha"] == alpha
        with torch.no_grad():
            predicted[alpha] = model.eval()(torch.from_numpy(clips.clips)).argmax(1).numpy()
    assert (predicted[1.0] == 1).all()
    assert (predicted[0.0] == 0).any()


def test_prune_and_int8_compose_with_bf16_as_a_candidate(trained_bundle, dataset, tmp_path, capsys):
    """`vidlab optimize --prune R --int8`: one bundle pruned *and* quantized, the INT8 model
    calibrated on the pruned, fine-tuned network; PyTorch bf16 measured beside it."""
    import onnx

    from vidlab.cli import main

    out = tmp_path / "pruned-int8.vidlab"
    main(["optimize", str(trained_bundle), "-o", str(out), "--prune", "0.5",
          "--finetune-epochs", "1", "--int8", "--bf16", "--data", str(dataset), "--rounds", "1",
          "--json"])
    report = json.loads(capsys.readouterr().out)
    assert set(report["variants"]) == {"torch", "torch-bf16", "onnx", "onnx-int8"}
    assert report["variants"]["torch-bf16"]["precision"] == "bf16"
    assert report["variants"]["onnx-int8"]["precision"] == "int8"
    info = report["optimize"]
    assert info["prune"]["params_after"] < info["prune"]["params_before"]
    assert info["finetune"]["epochs"] == 1 and info["int8"]["chosen"]
    bundle = load_bundle(out)
    pruned = bundle.build_model()
    kept = {tuple(p.shape) for n, p in pruned.named_parameters() if n.endswith("weight") and p.ndim == 5}
    int8_graph = onnx.load(str(bundle.file("model.int8.onnx")))
    int8_shapes = {tuple(t.dims) for t in int8_graph.graph.initializer if len(t.dims) == 5}
    assert kept <= int8_shapes  # the INT8 graph is the pruned network, every conv of it
    # the pruned model's FLOPs are what it kept: fewer than the source's
    assert report["variants"]["torch"]["gflops_per_clip"] < info["source_torch"]["gflops_per_clip"]
    bf16 = load_runner(bundle, "torch-bf16")
    assert bf16.name == "torch-bf16"
    clips = bundle_clips(bundle, dataset_splits(bundle, dataset).val)
    fp32_logits, bf16_logits = load_runner(bundle, "torch")(clips.clips), bf16(clips.clips)
    assert (fp32_logits.argmax(1) == bf16_logits.argmax(1)).mean() >= 0.8
    assert choose_runtime(bundle) == info["chosen"]


def test_the_kept_variant_is_the_fastest_within_the_budget_else_the_most_accurate():
    from vidlab.accel.pipeline import choose_variant

    variants = {"torch": {"latency_ms_p50": 10.0, "top1": 0.90},
                "onnx": {"latency_ms_p50": 5.0, "top1": 0.895},
                "onnx-int8": {"latency_ms_p50": 2.0, "top1": 0.85}}
    assert choose_variant(variants, 0.90, max_drop=1.0) == {
        "chosen": "onnx", "max_drop_points": 1.0, "within_budget": True}
    assert choose_variant(variants, 0.90, max_drop=5.0)["chosen"] == "onnx-int8"
    assert choose_variant(variants, 0.95, max_drop=1.0) == {
        "chosen": "torch", "max_drop_points": 1.0, "within_budget": False}
    unlabelled = {k: {**v, "top1": None} for k, v in variants.items()}
    assert choose_variant(unlabelled, None, 1.0)["chosen"] == "onnx-int8"


def test_max_drop_outside_0_to_100_points_is_a_config_error(trained_bundle, dataset, tmp_path):
    with pytest.raises(ConfigError, match="--max-drop"):
        optimize(trained_bundle, tmp_path / "x.vidlab", data=dataset, max_drop=-1)


def test_pytorch_bf16_is_offered_where_it_is_native_or_was_measured(trained_bundle, int8_bundle):
    from vidlab.models.tuning import cpu_has_bf16
    from vidlab.runtime import available_runtimes

    plain = load_bundle(trained_bundle)
    assert ("torch-bf16" in available_runtimes(plain, "cpu")) is cpu_has_bf16()
    measured = load_bundle(int8_bundle.path)
    assert ("torch-bf16" in available_runtimes(measured, "cpu")) is (
        "torch-bf16" in measured.metrics["variants"])
    with pytest.raises(Exception, match="unknown runtime"):
        load_runner(plain, "torch-fp8")
