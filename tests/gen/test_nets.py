"""The GAN's networks, augmentation and losses: shapes, conditioning, frame consistency."""

from __future__ import annotations

import torch

from vidlab.gen.augment import diff_augment
from vidlab.gen.losses import d_hinge, g_hinge, r1_penalty
from vidlab.gen.nets import ImageDiscriminator, VideoDiscriminator, VideoGenerator, sample_frames


def tiny_generator(num_classes: int = 3) -> VideoGenerator:
    torch.manual_seed(0)
    return VideoGenerator(num_classes, num_frames=6, size=16, content_dim=8, motion_dim=4,
                          hidden_dim=8, embed_dim=4, width=16).eval()


def test_generator_makes_clips_of_the_configured_shape_in_range():
    g = tiny_generator()
    clips = g.generate(torch.tensor([0, 1, 2, 0]), seed=1)
    assert clips.shape == (4, 3, 6, 16, 16)
    assert clips.min() >= -1 and clips.max() <= 1
    assert clips.std() > 0


def test_same_seed_same_clips_and_labels_change_the_output():
    g = tiny_generator()
    a = g.generate(torch.tensor([0, 0]), seed=5)
    assert torch.equal(a, g.generate(torch.tensor([0, 0]), seed=5))
    b = g.generate(torch.tensor([1, 1]), seed=5)
    assert (a - b).abs().mean() > 1e-3  # same latents, different class → different clips


def test_generator_frames_differ_over_time():
    g = tiny_generator()
    clip = g.generate(torch.tensor([0]), seed=0)[0]
    assert (clip[:, 0] - clip[:, -1]).abs().mean() > 1e-4  # the GRU motion latent moves


def test_discriminators_score_each_clip_and_project_the_label():
    torch.manual_seed(0)
    dv, di = VideoDiscriminator(3, width=8, size=16), ImageDiscriminator(3, width=8, size=16)
    x = torch.rand(2, 3, 6, 16, 16) * 2 - 1
    s0, logits = dv(x, torch.tensor([0, 0]))
    s1, _ = dv(x, torch.tensor([1, 1]))
    assert s0.shape == (2,) and logits.shape == (2, 3)
    assert not torch.allclose(s0, s1)  # the projection term depends on the label
    frames, owner = sample_frames(x, 2)
    assert frames.shape == (4, 3, 16, 16) and owner.tolist() == [0, 0, 1, 1]
    si, _ = di(frames, torch.tensor([0, 0, 1, 1]))
    assert si.shape == (4,)


def test_diff_augment_applies_one_draw_to_every_frame_of_a_clip():
    torch.manual_seed(0)
    frame = torch.rand(2, 3, 1, 16, 16) * 2 - 1
    still = frame.expand(-1, -1, 5, -1, -1).contiguous()  # 5 identical frames per clip
    out = diff_augment(still, "color,translation")
    assert out.shape == still.shape
    assert not torch.allclose(out, still)
    for t in range(1, 5):  # no invented motion: all frames stay identical
        assert torch.allclose(out[:, :, t], out[:, :, 0])


def test_hinge_losses_and_r1():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert d_hinge(real, fake).item() == (0 + 0.5) / 2 + (0 + 1.0) / 2
    assert g_hinge(fake).item() == 1.0
    x = torch.randn(3, 4, requires_grad=True)
    scores = (x * 2).sum(1)
    assert abs(r1_penalty(scores, x).item() - 16.0) < 1e-5  # |∇|² = 4 per element × 4 elements
