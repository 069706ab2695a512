"""Fixtures of the library tests: libraries of real H.264 videos and the bundles that index them.

Two models. `tiny_bundle` is a real R(2+1)D with random weights (its `forward_features` give the
embeddings; for the bookkeeping: what is indexed, when, and what is served). `colour_bundle` is
the serve tests' ONNX graph that classifies a clip by its dominant colour channel, so the right
answer is known without training: the accuracy tests search long videos made of coloured
segments whose truth is known to the frame. `pan_bundle` is a tiny 3D CNN trained here in
seconds on camera pans (`tests/library/motion.py`): its embeddings are `forward_features` of
weights that learned something, so retrieval quality is measured on what a model recognises.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.serve.helpers import colour_video, make_colour_bundle, make_tiny_bundle, pattern_video

torch.set_num_threads(1)

LONG_FPS = 10
SEGMENT_S = 2.0
WINDOW, STRIDE = 1.0, 0.5
"""The accuracy tests index at 1 s windows every 0.5 s (the colour model's clip spans 0.7 s)."""


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("library-bundle") / "tiny.vidlab")


@pytest.fixture(scope="session")
def colour_bundle(tmp_path_factory) -> Path:
    return make_colour_bundle(tmp_path_factory.mktemp("library-colour") / "colour.vidlab")


@pytest.fixture
def small_library(tmp_path) -> Path:
    """A folder of four short textured videos (two in a sub-folder) and a text file."""
    root = tmp_path / "lib"
    (root / "trips").mkdir(parents=True)
    for i, name in enumerate(["a.mp4", "b.mp4", "trips/c.mp4", "trips/d.mp4"]):
        pattern_video(root / name, num_frames=36 + 6 * i, seed=i)
    (root / "notes.txt").write_text("not a video\n")
    return root


def segments_of(colours: list[str]) -> list[dict]:
    """The true segments of a video made of `SEGMENT_S` of each colour in turn."""
    truth: list[dict] = []
    for k, name in enumerate(colours):
        if truth and truth[-1]["label"] == name:
            truth[-1]["end"] = (k + 1) * SEGMENT_S
        else:
            truth.append({"label": name, "start": k * SEGMENT_S, "end": (k + 1) * SEGMENT_S})
    return truth


@pytest.fixture(scope="session")
def long_library(tmp_path_factory) -> tuple[Path, dict[str, list[dict]]]:
    """Four 24 s videos of 2 s coloured segments (red, green, blue 16 times each, shuffled;
    a moving square and noise on top), and their true segments."""
    root = tmp_path_factory.mktemp("long-library") / "videos"
    root.mkdir()
    order = list(np.random.default_rng(5).permutation(["red", "green", "blue"] * 16))
    truth = {}
    for v in range(4):
        colours = [str(c) for c in order[12 * v:12 * (v + 1)]]
        name = f"long_{v}.mp4"
        colour_video(root / name, colours, SEGMENT_S, fps=LONG_FPS, size=(48, 64), seed=v)
        truth[name] = segments_of(colours)
    (root.parent / "truth.json").write_text(json.dumps(truth))
    return root, truth


@pytest.fixture(scope="session")
def colour_index(long_library, colour_bundle, tmp_path_factory) -> Path:
    from vidlab.library.build import build_index

    root, _ = long_library
    out = tmp_path_factory.mktemp("colour-index") / "colours.vlx"
    build_index(root, colour_bundle, out, window=WINDOW, stride=STRIDE, workers=1)
    return out


def true_label(truth: list[dict], t: float) -> str | None:
    return next((s["label"] for s in truth if s["start"] <= t < s["end"]), None)


@pytest.fixture(scope="session")
def pan_bundle(tmp_path_factory) -> Path:
    from tests.library.motion import train_pan_bundle

    return train_pan_bundle(tmp_path_factory.mktemp("library-pan") / "pan.vidlab")


@pytest.fixture(scope="session")
def pan_library(tmp_path_factory) -> tuple[Path, dict[str, list[dict]]]:
    """Four 24 s videos of 2 s pans (each of the 4 directions 12 times, shuffled; a new texture
    every segment, never seen in training), and their true segments."""
    from tests.library.motion import LABELS, pan_video

    root = tmp_path_factory.mktemp("pan-library") / "videos"
    root.mkdir()
    order = [str(c) for c in np.random.default_rng(9).permutation(LABELS * 12)]
    truth = {}
    for v in range(4):
        labels = order[12 * v:12 * (v + 1)]
        name = f"pans_{v}.mp4"
        pan_video(root / name, labels, SEGMENT_S, fps=LONG_FPS, seed=v)
        truth[name] = segments_of(labels)
    return root, truth


@pytest.fixture(scope="session")
def pan_index(pan_library, pan_bundle, tmp_path_factory) -> Path:
    from vidlab.library.build import build_index

    out = tmp_path_factory.mktemp("pan-index") / "pans.vlx"
    build_index(pan_library[0], pan_bundle, out, window=WINDOW, stride=STRIDE, workers=1)
    return out
