"""The whole pipeline for an `hf:` model: train (full or LoRA) → bundle without its source →
eval, predict, optimize (ONNX + INT8), bench, serve over real HTTP, monitor; and `vidlab import`."""

from __future__ import annotations

import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tests.foundation.conftest import (
    MOTION_LABELS,
    cli_json,
    train_cli,
    transformers,
    write_checkpoint,
)
from tests.serve.helpers import LiveServer, upload

from vidlab.bundle import load_bundle


@pytest.fixture(scope="module")
def lora_run(motion_manifest, tmp_path_factory):
    """A LoRA fine-tune of a tiny VideoMAE whose checkpoint directory is deleted afterwards."""
    root = tmp_path_factory.mktemp("hf-lora")
    ckpt = write_checkpoint(root / "ckpt", "videomae", list(MOTION_LABELS), seed=3)
    original = load_file(str(ckpt / "model.safetensors"))
    summary = train_cli(f"hf:{ckpt}", motion_manifest, root / "run", "model.lora.r=4",
                        "model.lora.alpha=8", "optim.lr=5e-3")
    shutil.rmtree(ckpt)
    return root / "run", summary, original


def test_lora_trains_adapters_and_head_only_and_reports_the_fraction(lora_run):
    run, summary, original = lora_run
    assert 0 < summary["trainable_fraction"] < 0.2
    assert summary["params_trainable"] < summary["params_total"]
    state = load_bundle(run / "best.vidlab").state_dict()
    assert not any("lora_" in k or "base_layer" in k for k in state)  # adapters merged
    # layers LoRA did not touch are exactly the checkpoint's; adapted ones moved
    mlp = "videomae.encoder.layer.0.intermediate.dense.weight"
    query = "videomae.encoder.layer.0.attention.attention.query.weight"
    assert torch.equal(state[f"backbone.{mlp}"], original[mlp])
    assert not torch.equal(state[f"backbone.{query}"], original[query])


def test_a_lora_bundle_loads_and_runs_without_peft_or_its_checkpoint(lora_run, motion_data):
    run, _, _ = lora_run
    video = next((motion_data / "move_left").iterdir())
    code = ("import sys; sys.modules['peft'] = None\n"
            "from vidlab.serve.predict import Predictor, predict_files\n"
            f"p = Predictor({str(run / 'best.vidlab')!r}, runtime='torch')\n"
            f"res, errs = predict_files(p, [{str(video)!r}], top_k=3)\n"
            "assert not errs and res[0]['top'][0]['label'], (res, errs)\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_eval_optimize_int8_bench_and_predict_take_a_lora_bundle(lora_run, motion_manifest,
                                                                  motion_data, tmp_path):
    run, summary, _ = lora_run
    bundle = run / "best.vidlab"
    evaluated = cli_json("eval", str(bundle), "--data", str(motion_manifest), "--split", "test")
    assert evaluated["num_clips"] == summary["test"]["num_clips"]
    opt = tmp_path / "opt.vidlab"
    cli_json("optimize", str(bundle), "-o", str(opt), "--onnx", "--int8", "--data",
             str(motion_manifest), "--eval-clips", "8", "--calib-clips", "8",
             "--int8-method", "dynamic", "--no-bf16", "--rounds", "1")  # one format: auto's search is accel's
    assert load_bundle(opt).metrics["optimize"]["int8"]["chosen"] == "dynamic"
    variants = load_bundle(opt).metrics["variants"]
    assert {"torch", "onnx", "onnx-int8"} <= set(variants)
    assert load_bundle(opt).metrics["optimize"]["onnx"]["max_rel_diff"] < 1e-3
    rows = cli_json("bench", str(bundle), str(opt), "--data", str(motion_manifest),
                    "--rounds", "1", "--no-rss", "--eval-clips", "8")
    assert {"onnx-int8"} <= {r["runtime"] for r in rows}
    video = next((motion_data / "rotate_cw").iterdir())
    preds = cli_json("predict", str(opt), str(video), "--runtime", "onnx-int8", "--top-k", "2")
    assert preds[0]["top"][0]["label"] in MOTION_LABELS


def test_full_finetune_bundle_is_served_over_http_and_monitored(motion_manifest, motion_data,
                                                              tmp_path):
    from vidlab.serve import create_app
    from vidlab.serve.monitor import monitor_report

    ckpt = write_checkpoint(tmp_path / "ckpt", "timesformer", ["x", "y"], num_frames=6,
                            seed=1)
    summary = train_cli(f"hf:{ckpt}", motion_manifest, tmp_path / "run", epochs=1)
    assert summary["trainable_fraction"] == 1.0
    shutil.rmtree(ckpt)
    bundle = tmp_path / "run" / "best.vidlab"
    db = tmp_path / "log.db"
    videos = sorted((motion_data / "grow").iterdir())[:2]
    with LiveServer(create_app(bundle, db=db)) as server:
        for video in videos:
            r = upload(server.url, video)
            assert r.status_code == 200, r.text
            assert r.json()["top"][0]["label"] in MOTION_LABELS
        info = httpx.get(f"{server.url}/v1/model", timeout=10).json()
    # the checkpoint's input, not vidlab's defaults
    assert (info["preprocess"]["num_frames"], info["preprocess"]["short_side"]) == (6, 36)
    report = monitor_report(db, bundle)
    assert report["traffic"]["requests"] == 2 and report["traffic"]["error_rate"] == 0


def test_import_makes_a_bundle_that_predicts_like_transformers_after_the_checkpoint_is_gone(
        tmp_path, motion_data):
    ckpt = write_checkpoint(tmp_path / "ckpt", "vivit", ["walk", "run", "jump"], seed=2)
    reference = transformers.AutoModelForVideoClassification.from_pretrained(
        str(ckpt), local_files_only=True).eval()
    out = tmp_path / "imported.vidlab"
    summary = cli_json("import", f"hf:{ckpt}", "-o", str(out), "--stride", "3",
                       "--data", str(motion_data))
    assert summary["labels"] == 3
    shutil.rmtree(ckpt)
    bundle = load_bundle(out)
    assert bundle.labels == ["walk", "run", "jump"]
    assert bundle.preprocess_spec["stride"] == 3 and bundle.data_stats.get("features")
    assert "class_counts" not in bundle.data_stats  # the data's labels are not the model's
    clip = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = bundle.build_model()(clip)
        theirs = reference(pixel_values=clip.transpose(1, 2)).logits
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    video = next((motion_data / "zoom" if (motion_data / "zoom").is_dir()
                  else motion_data / "grow").iterdir())
    preds = cli_json("predict", str(out), str(video))
    assert preds[0]["top"][0]["label"] in bundle.labels
    probs = [t["prob"] for t in preds[0]["top"]]  # all 3 labels (top-k 5 > 3)
    assert np.isclose(sum(probs), 1.0, atol=1e-3)


def test_without_transformers_an_hf_name_says_how_to_install_it(videomae_dir, motion_manifest,
                                                                tmp_path):
    code = ("import sys; sys.modules['transformers'] = None\n"
            "from vidlab.cli import main\n"
            f"main(['train', '--model', 'hf:{videomae_dir}', '--data', '{motion_manifest}', "
            f"'--out', '{tmp_path / 'run'}'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]  # the error is one line, no traceback
    assert last.startswith("error: ModelError: hf: models need")
    assert "pip install 'vidlab[hf]'" in last
    assert "Traceback" not in proc.stderr
