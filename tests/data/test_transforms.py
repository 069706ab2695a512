"""Transforms treat a clip as one image: the same crop, flip, jitter and erasing for every frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidlab.data.config import DataConfig
from vidlab.data.mix import mix_batch
from vidlab.data.transforms import Preprocess, TrainTransform, eval_views, spatial_crops

LABELS = ["grow", "move_left", "move_right", "rotate_ccw", "rotate_cw"]
FLIP = {"move_left": "move_right", "move_right": "move_left", "rotate_cw": "rotate_ccw",
        "rotate_ccw": "rotate_cw", "grow": "grow"}


def still_clip(t: int = 6, h: int = 72, w: int = 96, seed: int = 0) -> np.ndarray:
    """The same random image `t` times: any per-frame randomness would make frames differ."""
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return np.repeat(img[None], t, axis=0)


def cfg(**kw) -> DataConfig:
    base = dict(short_side=64, crop_size=48, hflip=0.5, color_jitter_p=1.0, brightness=0.4,
                contrast=0.4, saturation=0.4, random_erasing=1.0, flip_map=FLIP,
                direction_sensitive=True)
    return DataConfig(**{**base, **kw})


@pytest.mark.parametrize("seed", range(5))
def test_every_frame_gets_the_same_crop_flip_jitter_and_erasing(seed):
    c = cfg()
    x, _ = TrainTransform(c, c.flip_targets(LABELS))(still_clip(seed=seed), 1,
                                                     np.random.default_rng(seed))
    assert x.shape == (3, 6, 48, 48) and x.dtype == torch.float32
    for t in range(1, 6):
        assert torch.equal(x[:, t], x[:, 0])


def test_flip_map_swaps_direction_labels_and_mirrors_the_clip():
    c = cfg(hflip=1.0, color_jitter_p=0.0, random_erasing=0.0, scale=(1.0, 1.0), crop_size=64,
            ratio=(1.0, 1.0))
    tf = TrainTransform(c, c.flip_targets(LABELS))
    clip = still_clip(h=64, w=64)
    x, target = tf(clip, LABELS.index("move_left"), np.random.default_rng(0))
    assert LABELS[target] == "move_right"
    plain = Preprocess(num_frames=6, short_side=64, crop_size=64)(clip)
    assert torch.allclose(x, plain.flip(-1), atol=1e-5)
    _, t2 = tf(clip, LABELS.index("rotate_cw"), np.random.default_rng(0))
    assert LABELS[t2] == "rotate_ccw"


def test_direction_sensitive_without_map_disables_flip():
    c = cfg(flip_map=None)
    assert c.flip_targets(LABELS) == [-1] * len(LABELS)
    c = cfg(flip_map=None, hflip=1.0, color_jitter_p=0.0, random_erasing=0.0, crop_size=64,
            scale=(1.0, 1.0), ratio=(1.0, 1.0))
    clip = still_clip(h=64, w=64)
    x, target = TrainTransform(c, c.flip_targets(LABELS))(clip, 1, np.random.default_rng(0))
    assert target == 1
    assert torch.allclose(x, Preprocess(num_frames=6, short_side=64, crop_size=64)(clip),
                          atol=1e-5)


def test_direction_sensitivity_is_guessed_from_label_names_when_unset():
    auto = DataConfig(flip_map=None, direction_sensitive=None)
    assert auto.flip_targets(["swipe_left", "swipe_right"]) == [-1, -1]
    assert auto.flip_targets(["cat", "dog"]) == [0, 1]
    # a map given for a dataset declared insensitive still relabels; others stay themselves
    assert DataConfig(direction_sensitive=False, flip_map={"a": "b", "b": "a"}).flip_targets(
        ["a", "b", "c"]) == [1, 0, 2]
    # labels missing from a map of a sensitive dataset are never flipped
    assert cfg().flip_targets(LABELS + ["zoom"])[-1] == -1


def test_dataset_info_fills_only_unset_flip_fields(tmp_path):
    (tmp_path / "dataset.json").write_text('{"flip_map": {"a": "b"}, "direction_sensitive": true}')
    c = DataConfig().for_dataset(tmp_path)
    assert c.flip_map == {"a": "b"} and c.direction_sensitive is True
    mine = DataConfig(direction_sensitive=False).for_dataset(tmp_path)
    assert mine.direction_sensitive is False


def test_three_crops_cover_start_centre_end_of_the_long_side():
    x = torch.arange(64 * 96, dtype=torch.float32).view(1, 1, 64, 96)
    crops = spatial_crops(x, 64, 3)
    assert [int(c[0, 0, 0, 0]) for c in crops] == [0, 16, 32]
    views = eval_views([still_clip(4, 64, 96)] * 2, Preprocess(num_frames=4, short_side=64,
                                                               crop_size=56), num_crops=3)
    assert views.shape == (6, 3, 4, 56, 56)


def test_preprocess_roundtrips_through_a_dict_and_config():
    c = DataConfig(num_frames=8, stride=3, short_side=80, crop_size=64, sampling="segments")
    p = c.preprocess()
    assert Preprocess.from_dict(p.to_dict()) == p
    assert (p.num_frames, p.stride, p.crop_size, p.sampling) == (8, 3, 64, "segments")


def test_config_rejects_crop_larger_than_short_side():
    with pytest.raises(ValueError):
        DataConfig(short_side=64, crop_size=112)


def test_mixup_and_cutmix_keep_target_mass_and_mix_the_clips():
    clips = torch.stack([torch.full((3, 4, 16, 16), float(i)) for i in range(4)])
    targets = torch.tensor([0, 1, 2, 3])
    rng = np.random.default_rng(0)
    mixed, soft = mix_batch(clips, targets, 5, mixup_alpha=0.8, generator=rng)
    assert soft.shape == (4, 5) and torch.allclose(soft.sum(1), torch.ones(4))
    lam = float(soft[0, 0])
    assert torch.allclose(mixed[0], clips[0] * lam + clips[3] * (1 - lam))
    cut, soft = mix_batch(clips, targets, 5, cutmix_alpha=1.0, generator=np.random.default_rng(3))
    area = float((cut[0] == 3.0).float().mean())  # pasted from the reversed batch
    assert abs(float(soft[0, 3]) - area) < 1e-6
    assert torch.equal(cut[0, :, 0], cut[0, :, -1])  # the same box through every frame
    same, hard = mix_batch(clips, targets, 5)
    assert torch.equal(same, clips) and torch.equal(hard.argmax(1), targets)


def test_vertical_flip_and_time_reversal_follow_their_label_maps():
    from vidlab.data.config import DataConfig
    from vidlab.data.transforms import TrainTransform

    labels = ["up", "down", "spin"]
    cfg = DataConfig(num_frames=4, short_side=8, crop_size=8, scale=(1.0, 1.0), ratio=(1.0, 1.0),
                     hflip=0.0, vflip=1.0, vflip_map={"up": "down", "down": "up"},
                     time_reverse=1.0, reverse_map={"up": "down", "down": "up"})
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    frames[0, 0, 0] = 255  # a mark in the first frame's top-left corner
    tf = TrainTransform(cfg, cfg.flip_targets(labels), labels)
    x, target = tf(frames, 0, np.random.default_rng(0))
    assert target == 0  # up → (upside down) down → (backwards) up
    assert x[0, -1, -1, 0] > x[0, 0, 0, 0]  # the mark moved to the last frame's bottom row
    x, target = tf(frames, 2, np.random.default_rng(0))
    assert target == 2 and x[0, 0, 0, 0] > x[0, -1, 0, 0]  # "spin" is in no map: untouched
