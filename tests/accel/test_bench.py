"""`bench`: JSON rows, the first-row baseline rule, the plot."""

from __future__ import annotations

import json

import pytest

from vidlab.accel import optimize

KEYS = {"variant", "latency_ms_p50", "throughput_clips_s", "size_mb", "top1"}


def fp32_rows(rows: list[dict]) -> list[dict]:
    """The rows without PyTorch bf16, which is benched only where the CPU has bf16 units."""
    return [r for r in rows if r["runtime"] != "torch-bf16"]


@pytest.fixture(scope="module")
def onnx_bundle(trained_bundle, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "r3d.onnx.vidlab"
    return optimize(trained_bundle, out, onnx=True, data=dataset, timing_rounds=1).path


def test_bench_json_rows_first_is_pytorch_eager_of_first_bundle(trained_bundle, onnx_bundle,
                                                                 dataset, tmp_path, capsys):
    from vidlab.cli import main

    plot = tmp_path / "bench.png"
    main(["bench", str(onnx_bundle), str(trained_bundle), "--data", str(dataset), "--json",
          "--rounds", "1", "--no-rss", "--plot", str(plot)])
    from vidlab.models.tuning import cpu_has_bf16

    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["runtime"] == "torch"
    # PyTorch bf16 is benched beside fp32 for each bundle only where the CPU has bf16 units
    bf16 = {r["bundle"].split("/")[-1] for r in rows if r["runtime"] == "torch-bf16"}
    assert bf16 == ({"r3d.onnx.vidlab", "r3d.vidlab"} if cpu_has_bf16() else set())
    rows = fp32_rows(rows)
    assert [(r["bundle"].split("/")[-1], r["runtime"]) for r in rows] == [
        ("r3d.onnx.vidlab", "torch"), ("r3d.onnx.vidlab", "onnx"), ("r3d.vidlab", "torch")]
    assert rows[0]["variant"] == "pytorch-fp32-eager" and rows[0]["speedup"] == 1.0
    for row in rows:
        assert set(row) >= KEYS and row["latency_ms_p50"] > 0 and 0 <= row["top1"] <= 1
        # how close to the machine's limit: FLOPs × throughput against the peak of its arithmetic
        assert row["precision"] == "fp32" and set(row["peaks"]) >= {"fp32", "bf16", "int8"}
        assert row["peak_gflops"] == row["peaks"]["fp32"] > 0
        assert row["achieved_gflops"] == pytest.approx(row["gflops_per_clip"]
                                                       * row["throughput_clips_s"])
        assert row["of_peak"] == pytest.approx(row["achieved_gflops"] / row["peak_gflops"])
    assert rows[0]["top1"] == rows[2]["top1"]  # same weights, same clips
    assert rows[0]["gflops_per_clip"] == rows[2]["gflops_per_clip"] > 0
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
    mine = tmp_path / "mine.png"
    mine.write_text("the user's")
    with pytest.raises(SystemExit) as exc:  # refused before any timing
        main(["bench", str(trained_bundle), "--rounds", "1", "--no-rss", "--plot", str(mine)])
    assert exc.value.code != 0 and mine.read_text() == "the user's"
    assert "OutputExistsError" in capsys.readouterr().err


def test_bench_without_data_times_only(trained_bundle):
    from vidlab.accel import bench

    rows = fp32_rows(bench([trained_bundle], rounds=1, rss=False))
    assert len(rows) == 1 and rows[0]["top1"] is None and rows[0]["throughput_clips_s"] > 0


def test_peak_rss_is_measured_in_a_fresh_process(onnx_bundle):
    from vidlab.accel.measure import peak_rss_mb

    rss = peak_rss_mb(onnx_bundle, "onnx", (3, 8, 32, 32))
    assert rss is not None and 20 < rss < 4000
