"""Broken bundles on disk: one-line `BundleError`s naming the file and field, an invalid ONNX file
skipped in favour of a runtime that works, and no server that says ready with a bundle it
cannot run (nor an upload directory left behind when it fails)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests.serve.helpers import LiveServer, colour_video, make_colour_bundle

from vidlab.bundle import save_bundle
from vidlab.cli import main
from vidlab.data.transforms import Preprocess
from vidlab.errors import BundleError
from vidlab.models import create
from vidlab.models.export import export_onnx
from vidlab.serve.app import create_app
from vidlab.serve.predict import Predictor

LABELS = ["a", "b", "c"]


def _save(path: Path, classes: int, with_onnx: bool = True) -> Path:
    torch.manual_seed(0)
    model = create("r2plus1d_tiny", num_classes=classes, num_frames=4).eval()
    pre = Preprocess(num_frames=4, stride=2, short_side=36, crop_size=32)
    extra = {}
    if with_onnx:
        extra["model.onnx"] = export_onnx(model, path.parent / f"{path.name}.onnx", 4, 32)
    save_bundle(path, config={"task": "classify",
                              "model": {"name": "r2plus1d_tiny", "num_classes": classes,
                                        "kwargs": {"num_frames": 4}},
                              "labels": [f"l{i}" for i in range(classes)],
                              "preprocess": pre.to_dict()},
                state_dict=model.state_dict(), extra_files=extra)
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A working 3-class bundle with PyTorch weights and an ONNX export."""
    root = tmp_path_factory.mktemp("bundles")
    path = _save(root / "good.vidlab", 3)
    config = json.loads((path / "config.json").read_text())
    config["labels"] = LABELS
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def five_class(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("bundles5") / "five.vidlab", 5)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return colour_video(tmp_path_factory.mktemp("v") / "red.mp4", ["red"], 1.0)


def broken_copy(good: Path, tmp_path: Path, config: dict | None = None,
                drop: tuple[str, ...] = (), files: dict[str, bytes | Path] | None = None) -> Path:
    """A copy of `good` with config.json keys replaced (`None` deletes), files dropped/replaced."""
    path = tmp_path / "broken.vidlab"
    shutil.copytree(good, path)
    cfg = json.loads((path / "config.json").read_text())
    for dotted, value in (config or {}).items():
        *parents, key = dotted.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    (path / "config.json").write_text(json.dumps(cfg))
    for name in drop:
        (path / name).unlink()
    for name, content in (files or {}).items():
        if isinstance(content, Path):
            shutil.copy(content, path / name)
        else:
            (path / name).write_bytes(content)
    return path


def predict_error(bundle: Path, video: Path, capsys, *extra: str) -> str:
    """Run `vidlab predict` as the entry point does; return its one stderr line."""
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(bundle), str(video), *extra])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


CONFIG_MISTAKES = [
    ({"labels": "a b c"}, "config.json: labels: Input should be a valid list"),
    ({"labels": {"0": "a", "1": "b", "2": "c"}}, "config.json: labels: Input should be a valid list"),
    ({"labels": ["a", "b"]}, "config.json: labels: 2 names but model.num_classes is 3"),
    ({"labels": ["a", "b", "a"]}, "config.json: labels: repeated names ['a']"),
    ({"format": "1"}, "config.json: format: Input should be a valid integer"),
    ({"format": 1.5}, "config.json: format: Input should be a valid integer"),
    ({"format": 0}, "config.json: format: 0 is not a bundle format"),
    ({"model.num_classes": "3"}, "config.json: model.num_classes: Input should be a valid integer"),
    ({"model.name": None}, "config.json: model.name: Field required"),
    ({"preprocess.num_frames": 0}, "config.json: preprocess.num_frames: Input should be greater"),
    ({"preprocess.mean": "abc"}, "config.json: preprocess.mean: Input should be a valid list"),
    ({"preprocess.mean": ["x", 0.4, 0.4]}, "config.json: preprocess.mean.0: Input should be a valid number"),
    ({"preprocess.std": [0.2, 0, 0.2]}, "config.json: preprocess.std.1: Input should be greater than 0"),
    ({"preprocess.crop_size": 100000}, "config.json: preprocess.crop_size: Input should be less"),
    ({"preprocess.short_side": 16}, "config.json: preprocess.crop_size: 32 is larger than"),
    ({"preprocess.num_frames": 500, "preprocess.crop_size": 512, "preprocess.short_side": 512},
     "config.json: preprocess: 500 frames of 512×512 make a clip larger"),
    ({"preprocess.short_video": "stretch"}, "config.json: preprocess.short_video: Input should be"),
    ({"preprocess.sampling": "dense"}, "config.json: preprocess: unknown sampling 'dense'"),
]


@pytest.mark.parametrize("change, expected", CONFIG_MISTAKES,
                         ids=[str(sorted(c)) + str(i) for i, (c, _) in enumerate(CONFIG_MISTAKES)])
def test_config_mistakes_are_one_line_errors_naming_file_and_field(good, video, tmp_path, capsys,
                                                                   change, expected):
    bundle = broken_copy(good, tmp_path, change)
    err = predict_error(bundle, video, capsys)
    assert err.startswith(f"error: BundleError: {bundle}/") and expected in err, err
    with pytest.raises(BundleError):
        create_app(bundle)


def test_metrics_that_are_not_an_object_are_named(good, video, tmp_path, capsys):
    bundle = broken_copy(good, tmp_path, files={"metrics.json": b"[1, 2]"})
    assert "metrics.json: expected a JSON object" in predict_error(bundle, video, capsys)


@pytest.mark.parametrize("onnx", ["junk", "five_classes"])
def test_an_invalid_onnx_file_is_reported_and_skipped_for_the_weights(
        good, five_class, video, tmp_path, capsys, caplog, onnx):
    content = b"\x08\x07junk, not a protobuf" if onnx == "junk" else five_class / "model.onnx"
    bundle = broken_copy(good, tmp_path, files={"model.onnx": content})
    predictor = Predictor(bundle)  # "auto" prefers ONNX: it must fall back, not fail
    assert predictor.runtime == "torch"
    why = "not an ONNX model" if onnx == "junk" else "output is ?×5; config.json has 3 classes"
    assert len(predictor.skipped_runtimes) == 1 and "model.onnx" in predictor.skipped_runtimes[0]
    assert why in predictor.skipped_runtimes[0]
    assert predictor.predict_file(video)["top"][0]["label"] in LABELS
    main(["predict", str(bundle), str(video), "--json"])  # the command line works too
    out = capsys.readouterr()
    assert json.loads(out.out)[0]["runtime"] == "torch"
    assert "model.onnx" in caplog.text and "skipped" in caplog.text
    err = predict_error(bundle, video, capsys, "--runtime", "onnx")  # unless asked for it
    assert f"{bundle}/model.onnx: " in err and why in err


def test_weights_that_do_not_fit_num_classes_are_named(good, five_class, video, tmp_path,
                                                       capsys):
    bundle = broken_copy(good, tmp_path, drop=("model.onnx",),
                         files={"weights.safetensors": five_class / "weights.safetensors"})
    err = predict_error(bundle, video, capsys)
    assert f"{bundle}/weights.safetensors: does not fit config.json's model (r2plus1d_tiny, " \
           "model.num_classes 3)" in err and "[5, " in err
    # with an ONNX file that does fit, the bundle is served by it, the weights reported
    bundle2 = broken_copy(good, tmp_path / "2",
                          files={"weights.safetensors": five_class / "weights.safetensors"})
    predictor = Predictor(bundle2)
    assert predictor.runtime == "onnx" and "weights.safetensors" in predictor.skipped_runtimes[0]


def test_a_bundle_with_no_usable_runtime_lists_every_problem(good, video, tmp_path, capsys):
    bundle = broken_copy(good, tmp_path, config={"model.name": "nosuchnet"},
                         files={"model.onnx": b"junk"})
    err = predict_error(bundle, video, capsys)
    assert "no usable runtime" in err and "nosuchnet" in err and "not an ONNX model" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vidlab_serve_never_listens_with_a_bundle_it_cannot_run(good, tmp_path):
    """Labels of the wrong length: the server used to start, say ready, and answer 500."""
    bundle = broken_copy(good, tmp_path, {"labels": ["a", "b"]})
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    r = subprocess.run([sys.executable, "-m", "vidlab", "serve", str(bundle), "--port",
                        str(port), "--db", str(tmp_path / "log.db")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "config.json: labels: 2 names" in r.stderr
    assert not list((tmp_path / "tmp").glob("vidlab-uploads-*"))


def test_a_server_failing_its_warm_up_never_reports_ready_and_removes_its_uploads(tmp_path):
    """A graph that answers batches of 1 and 2 correctly and bigger ones wrongly passes every
    check at load; the warm-up at each batch size finds it."""
    bundle = make_colour_bundle(tmp_path / "sliced.vidlab", max_rows=2)
    app = create_app(bundle, max_batch=4)
    uploads = app.state.service.temp_dir
    assert uploads.is_dir()
    with pytest.raises(RuntimeError, match="did not become ready"), LiveServer(app):
        pass
    assert not uploads.exists()
    # and through `vidlab serve`: one line, before any port is opened
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    r = subprocess.run([sys.executable, "-m", "vidlab", "serve", str(bundle), "--max-batch",
                        "4", "--port", str(free_port()), "--db", str(tmp_path / "log.db")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "model.onnx: gives outputs of shape [2, 3] for 3 clip(s)" in r.stderr
    assert not list((tmp_path / "tmp").glob("vidlab-uploads-*"))
