"""One clip path: training, evaluation, `predict`, the server and acceleration feed the model
bit-identical input tensors for the same video and view.

Each path runs for real on a real H.264 file; the model's runner is wrapped to record the
batches it is given (the runner is not what is under test, its input is).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import encode_video, moving_square_frames
from tests.serve.helpers import LiveServer, upload

import vidlab.runtime
from vidlab.bundle import save_bundle
from vidlab.data.clips import load_clips, read_clips, sample
from vidlab.data.config import DataConfig
from vidlab.data.samplers import train_sampler, view_sampler, window_sampler
from vidlab.data.transforms import Preprocess

LABELS = ["a", "b"]
PRE = Preprocess(num_frames=8, stride=2, short_side=40, crop_size=32)


class Recorder:
    """A runner that keeps a copy of every batch row it is given, then runs the real one."""

    def __init__(self, runner):
        self.runner, self.name, self.rows = runner, runner.name, []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.rows.extend(np.array(batch, copy=True))
        return self.runner(batch)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip-path")
    short = encode_video(root / "short.mp4", moving_square_frames(40, 64, 80, seed=1), fps=25)
    long = encode_video(root / "long.mp4", moving_square_frames(130, 64, 80, seed=2), fps=25)
    return short, long


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from vidlab.models import create

    torch.manual_seed(0)
    model = create("r2plus1d_tiny", num_classes=len(LABELS), num_frames=PRE.num_frames)
    data = DataConfig(num_frames=8, stride=2, short_side=40, crop_size=32, num_workers=0)
    assert data.preprocess() == PRE
    path = tmp_path_factory.mktemp("bundle") / "tiny.vidlab"
    save_bundle(path, config={"task": "classify",
                              "model": {"name": "r2plus1d_tiny", "num_classes": len(LABELS),
                                        "kwargs": {"num_frames": PRE.num_frames}},
                              "labels": LABELS, "preprocess": PRE.to_dict(),
                              "train": {"data": data.model_dump(mode="json")}},
                state_dict=model.state_dict())
    return path


@pytest.fixture
def recorded(monkeypatch):
    """Every runner a bundle gets (`load_runner`) records its input; the list of recorders."""
    real = vidlab.runtime.load_runner
    made: list[Recorder] = []

    def load_runner(*args, **kwargs):
        made.append(Recorder(real(*args, **kwargs)))
        return made[-1]

    monkeypatch.setattr(vidlab.runtime, "load_runner", load_runner)
    return made


def test_train_eval_predict_server_and_accel_feed_identical_tensors(videos, bundle, recorded):
    from vidlab.accel import evaluate_runner
    from vidlab.accel.inputs import bundle_clips
    from vidlab.bundle import load_bundle
    from vidlab.serve.app import create_app
    from vidlab.serve.predict import Predictor
    from vidlab.train import evaluate
    from vidlab.train.evaluation import evaluate_module

    short, _ = videos
    entries = [{"path": str(short), "label": "a"}]
    b = load_bundle(bundle)
    got: dict[str, np.ndarray] = {}

    # training: the evaluation of a training run (validation and test, through its DataLoader)
    model, seen = b.build_model(), []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    evaluate_module(model, entries, LABELS, DataConfig.model_validate(b.config["train"]["data"]))
    got["train"] = seen[0][0].numpy()
    # `vidlab eval` (the bundle's runner, its saved preprocessing)
    evaluate(bundle, entries, runtime="torch")
    got["eval"] = recorded[-1].rows[0]
    # `vidlab predict`
    Predictor(bundle, runtime="torch").predict_file(short)
    got["predict"] = recorded[-1].rows[0]
    # the server: a real HTTP upload
    app = create_app(Predictor(bundle, runtime="torch"))
    with LiveServer(app) as server:
        recorded[-1].rows.clear()  # drop the warm-up batches
        assert upload(server.url, short).status_code == 200
    got["server"] = recorded[-1].rows[0]
    # acceleration: the clips every variant is measured on, and its accuracy path
    got["accel"] = bundle_clips(b, entries).clips[0]
    recorder = Recorder(vidlab.runtime.TorchRunner(b))
    evaluate_runner(recorder, b, entries)
    got["accel-evaluate"] = recorder.rows[0]

    reference = got["eval"]
    assert reference.shape == (3, PRE.num_frames, PRE.crop_size, PRE.crop_size)
    assert reference.std() > 0.1  # real pixels, not a blank clip
    for path, x in got.items():
        assert x.dtype == np.float32 and np.array_equal(x, reference), path


def test_training_sampler_without_jitter_takes_the_evaluation_view(videos):
    from vidlab.data.clips import open_video

    short, _ = videos
    with open_video(short, PRE) as reader:
        (train,) = sample(reader, train_sampler(PRE, jitter=False))
        (view,) = sample(reader, view_sampler(PRE))
        assert train.indices.tolist() == view.indices.tolist()
        a, b = read_clips(reader, [train, view])
    assert np.array_equal(a, b)


def test_predict_timeline_streams_the_frames_random_access_reads(videos, bundle, recorded):
    """A long video's windows (decoded sequentially, memory bounded) are bit-identical to the
    same plans read by random access, as evaluation reads clips."""
    from vidlab.serve.predict import Predictor

    _, long = videos
    result = Predictor(bundle, runtime="torch").predict_file(long, window=2.0, stride=1.0)
    assert len(result["windows"]) >= 4
    streamed = np.stack(recorded[-1].rows)
    sampler = window_sampler(PRE, 2.0, 1.0)
    direct = load_clips([{"path": str(long), "label": "a"}], PRE, sampler, labels=LABELS)
    assert direct.views == (len(result["windows"]), 1)
    assert np.array_equal(streamed, direct.clips)


def test_a_bundle_written_before_the_one_vocabulary_still_loads_and_runs(videos, tmp_path):
    """Older bundles say `"sampling": "random"` in their training config and keep test views as
    a list; they load, evaluate and predict as before."""
    from vidlab.bundle import load_bundle
    from vidlab.models import create
    from vidlab.serve.predict import Predictor
    from vidlab.train import evaluate
    from vidlab.train.evaluation import data_config_of

    short, _ = videos
    old = tmp_path / "old.vidlab"
    torch.manual_seed(0)
    model = create("r2plus1d_tiny", num_classes=2, num_frames=8)
    data = DataConfig(num_frames=8, stride=2, short_side=40, crop_size=32, num_workers=0)
    train = {"data": {**data.model_dump(mode="json"), "sampling": "random"}}
    save_bundle(old, config={"task": "classify", "labels": LABELS, "preprocess": PRE.to_dict(),
                             "model": {"name": "r2plus1d_tiny", "num_classes": 2,
                                       "kwargs": {"num_frames": 8}}, "train": train},
                state_dict=model.state_dict(), metrics={"test": {"top1": 0.5, "views": [3, 1]}})
    b = load_bundle(old)
    assert b.config["train"]["data"]["sampling"] == "random"
    assert b.preprocess() == PRE and data_config_of(b).sampling == "clips"
    result = evaluate(old, [{"path": str(short), "label": "a"}], runtime="torch")
    assert result.num_clips == 1 and result.top1 in (0.0, 1.0)
    assert Predictor(old, runtime="torch").predict_file(short)["top"][0]["label"] in LABELS
