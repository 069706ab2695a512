"""`hf:PATH` is a vidlab model: same logits as transformers' own model, the zoo's interface,
the checkpoint's own input, clear one-line errors for incomplete directories."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from tests.foundation.conftest import transformers, write_checkpoint

from vidlab.errors import ModelError
from vidlab.models import create, model_entry
from vidlab.models.hf import input_from_config


def _reference(path):
    return transformers.AutoModelForVideoClassification.from_pretrained(
        str(path), local_files_only=True).eval()


@pytest.mark.parametrize("arch", ["videomae", "timesformer", "vivit"])
def test_logits_equal_transformers_own_model_on_the_same_clip(tmp_path, arch):
    path = write_checkpoint(tmp_path / arch, arch, labels=["a", "b", "c"])
    model = create(f"hf:{path}", num_classes=3).eval()
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(clip)
        theirs = _reference(path)(pixel_values=clip.transpose(1, 2)).logits
    assert ours.shape == (2, 3)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    features = model.forward_features(clip)
    assert features.shape == (2, model.num_features)
    torch.testing.assert_close(model.forward_head(features), ours)


def test_reset_classifier_gives_a_new_head_and_keeps_the_backbone(videomae_dir):
    model = create(f"hf:{videomae_dir}", num_classes=8)
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.reset_classifier(5)
    assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 5)
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone.items())
    # a dataset with another number of classes than the checkpoint starts a new head
    assert create(f"hf:{videomae_dir}", num_classes=2).head.out_features == 2


def test_the_checkpoint_decides_frames_size_and_normalization(videomae_dir):
    entry = model_entry(f"hf:{videomae_dir}")
    assert (entry.family, entry.num_frames, entry.size) == ("hf", 4, 32)
    assert entry.preprocess["short_side"] == 36
    np.testing.assert_allclose(entry.preprocess["mean"], (0.485, 0.456, 0.406))
    with pytest.raises(ModelError, match="takes 4 frames, not 8"):
        create(f"hf:{videomae_dir}", num_classes=8, num_frames=8)


def test_vidlab_normalization_reproduces_hf_processors_rescale_offset_and_mean():
    """ViViT's processor maps pixels to x/127.5 − 1, then (· − 0.5)/0.5; VideoMAE's to x/255,
    then ImageNet mean/std. vidlab's (u − mean)/std on u = x/255 must give the same numbers."""
    pixels = np.array([0.0, 17.0, 128.0, 255.0])
    u = pixels / 255
    vivit = input_from_config({"num_frames": 8, "image_size": 32},
                              {"image_processor_type": "VivitImageProcessor",
                               "rescale_factor": 1 / 127.5, "offset": True,
                               "image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    expected = ((pixels / 127.5 - 1) - 0.5) / 0.5
    np.testing.assert_allclose((u - vivit["mean"][0]) / vivit["std"][0], expected, atol=1e-9)
    mae = input_from_config({"num_frames": 16, "image_size": 224},
                            {"size": {"shortest_edge": 256}, "crop_size": {"height": 224},
                             "image_mean": [0.485, 0.456, 0.406],
                             "image_std": [0.229, 0.224, 0.225]})
    assert (mae["num_frames"], mae["crop_size"], mae["short_side"]) == (16, 224, 256)
    np.testing.assert_allclose((u - mae["mean"][1]) / mae["std"][1], (u - 0.456) / 0.224)


def test_vidlab_preprocess_matches_the_pil_videomae_processor_on_real_frames(videomae_dir):
    """Frames already at the crop size: vidlab's normalization equals transformers' processor."""
    pil = pytest.importorskip("transformers.models.videomae.image_processing_pil_videomae")
    from vidlab.data.transforms import Preprocess

    pre = json.loads((videomae_dir / "preprocessor_config.json").read_text())
    processor = pil.VideoMAEImageProcessorPil(**{k: v for k, v in pre.items()
                                                 if k != "image_processor_type"})
    frames = np.random.default_rng(0).integers(0, 256, (4, 36, 36, 3), dtype=np.uint8)
    theirs = processor([list(frames)], return_tensors="np")["pixel_values"][0]  # T×C×H×W
    ours = Preprocess(**{**model_entry(f"hf:{videomae_dir}").preprocess, "stride": 1})(frames)
    np.testing.assert_allclose(ours.numpy().transpose(1, 0, 2, 3), theirs, atol=1e-5)


@pytest.mark.parametrize("remove,message", [
    ("config.json", "no config.json"),
    ("model.safetensors", "no weights"),
    ("preprocessor_config.json", "no preprocessor_config.json"),
])
def test_an_incomplete_checkpoint_directory_names_what_is_missing(videomae_dir, tmp_path,
                                                                  remove, message):
    partial = shutil.copytree(videomae_dir, tmp_path / "partial")
    (partial / remove).unlink()
    with pytest.raises(ModelError, match=message) as exc:
        create(f"hf:{partial}", num_classes=8)
    assert str(partial) in str(exc.value) and "\n" not in str(exc.value)


def test_a_missing_directory_or_a_config_that_is_not_a_video_classifier_fails_clearly(tmp_path):
    with pytest.raises(ModelError, match="no such checkpoint directory"):
        create(f"hf:{tmp_path / 'nowhere'}", num_classes=2)
    bert = tmp_path / "bert"
    transformers.BertForSequenceClassification(transformers.BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        vocab_size=64)).save_pretrained(bert)
    (bert / "preprocessor_config.json").write_text("{}")
    with pytest.raises(ModelError, match="cannot build a video classifier"):
        create(f"hf:{bert}", num_classes=2)
