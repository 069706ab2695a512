"""Tiny random Hugging Face video checkpoints, written with `transformers` the way a user's
`save_pretrained` directory looks (config.json, model.safetensors, preprocessor_config.json).

Never a download: each architecture is built from a small config with random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from vidlab.data.synth import LABELS as MOTION_LABELS  # noqa: E402

_ARCH = {
    "videomae": ("VideoMAEConfig", "VideoMAEForVideoClassification",
                 dict(patch_size=8, tubelet_size=2, qv_bias=True, use_mean_pooling=True),
                 "VideoMAEImageProcessor"),
    "timesformer": ("TimesformerConfig", "TimesformerForVideoClassification",
                    dict(patch_size=8), "VideoMAEImageProcessor"),
    "vivit": ("VivitConfig", "VivitForVideoClassification",
              dict(tubelet_size=[2, 8, 8]), "VivitImageProcessor"),
}


def write_checkpoint(path: Path, arch: str = "videomae", labels: list[str] | None = None,
                     num_frames: int = 4, size: int = 32, hidden: int = 32, layers: int = 2,
                     seed: int = 0, preprocessor: dict | None = None) -> Path:
    """`save_pretrained` a tiny random `arch` video classifier with `labels` into `path`."""
    labels = labels or ["a", "b", "c"]
    config_cls, model_cls, extra, processor = _ARCH[arch]
    config = getattr(transformers, config_cls)(
        image_size=size, num_frames=num_frames, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=2 * hidden, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}, **extra)
    torch.manual_seed(seed)
    getattr(transformers, model_cls)(config).save_pretrained(path)
    pre = preprocessor or {
        "image_processor_type": processor, "do_resize": True, "size": {"shortest_edge": size + 4},
        "do_center_crop": True, "crop_size": {"height": size, "width": size},
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "resample": 2}
    (path / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    return path


@pytest.fixture(scope="session")
def videomae_dir(tmp_path_factory) -> Path:
    """A tiny VideoMAE classifier (4×32², 2 blocks of 32-d) with the built-in data's 8 labels."""
    return write_checkpoint(tmp_path_factory.mktemp("hf") / "videomae-tiny", "videomae",
                            MOTION_LABELS)


from tests.train.conftest import motion_data, motion_manifest  # noqa: E402,F401 (fixtures)

QUICK = ["data.num_workers=0", "train.batch_size=4", "train.max_minutes=null",
         "train.tensorboard=false", "train.plots=false", "train.memory_format=contiguous",
         "data.test_views=[1,1]", "train.log_every=1"]
"""Overrides that keep an hf: run to seconds on the tiny checkpoints."""


def cli_json(*args: str) -> dict | list:
    """`vidlab ARGS --json` in this process (a fresh one would import torch and transformers
    again, ~10 s each); the JSON it printed after any other output."""
    import contextlib
    import io

    from vidlab.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main([*args, "--json"])
    text = buf.getvalue()
    return json.loads(text[min(i for i in (text.find("{"), text.find("[")) if i >= 0):])


def train_cli(model: str, data: Path, out: Path, *extra: str, epochs: int = 2) -> dict:
    """`vidlab train --model MODEL --data DATA --out OUT --json` in this process; its summary."""
    args = ["train", "--model", model, "--data", str(data), "--out", str(out),
            "--epochs", str(epochs)]
    for item in [*QUICK, *extra]:
        args += ["--set", item]
    return cli_json(*args)
