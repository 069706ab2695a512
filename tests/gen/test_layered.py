"""The layered generator: frame 0 is the composite, motion is a real warp, bundles round-trip."""

from __future__ import annotations

import math

import pytest
import torch

from vidlab.gen.generators import build_generator
from vidlab.gen.layered import LayeredVideoGenerator


def tiny_layered(num_classes: int = 3) -> LayeredVideoGenerator:
    torch.manual_seed(0)
    return LayeredVideoGenerator(num_classes, num_frames=5, size=16, content_dim=8, motion_dim=4,
                                 hidden_dim=8, embed_dim=4, width=16).eval()


def _fixed_velocity(g: LayeredVideoGenerator, x: float = 0.0, y: float = 0.0,
                    log_scale: float = 0.0, angle: float = 0.0) -> None:
    """Make every frame move by the same pose step, whatever the latents."""
    target = torch.tensor([x, y, log_scale, angle]) / g.max_step
    with torch.no_grad():
        g.velocity.weight.zero_()
        g.velocity.bias.copy_(torch.atanh(target))


def test_first_frame_is_the_composite_of_the_layers():
    g = tiny_layered()
    labels = torch.tensor([0, 2])
    z, eps = g.sample_latents(2, torch.Generator().manual_seed(1))
    clips = g(z, eps, labels)
    assert clips.shape == (2, 3, 5, 16, 16) and clips.min() >= -1 and clips.max() <= 1
    bg, fg, alpha = g.layers(z, g.embed(labels))
    torch.testing.assert_close(clips[:, :, 0], alpha * fg + (1 - alpha) * bg, atol=1e-5, rtol=0)


def test_translation_moves_the_sprite_whole_pixels_and_wraps_around():
    g = tiny_layered()
    _fixed_velocity(g, x=0.25)  # a quarter of a half-width: 2 px per frame at 16 px
    labels = torch.tensor([1])
    z, eps = g.sample_latents(1, torch.Generator().manual_seed(2))
    clip = g(z, eps, labels)[0]
    bg, fg, alpha = g.layers(z, g.embed(labels))
    for t in range(1, 5):
        a, f = (torch.roll(v, shifts=2 * t, dims=-1) for v in (alpha, fg))  # wraps at the border
        torch.testing.assert_close(clip[:, t], (a * f + (1 - a) * bg)[0], atol=1e-4, rtol=0)


def test_rotation_and_scale_keep_the_sprite_centre(monkeypatch):
    from vidlab.gen.layered import _centroid

    g = tiny_layered()
    _fixed_velocity(g, log_scale=0.1, angle=math.pi / 8)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    blob = (((yy - 5) ** 2 + (xx - 10) ** 2) < 6).float()[None, None]  # off the image centre
    layers = (torch.full((1, 3, 16, 16), -1.0), torch.ones(1, 3, 16, 16), blob)
    monkeypatch.setattr(g, "layers", lambda z, e: layers)
    z, eps = g.sample_latents(1, torch.Generator().manual_seed(3))
    clip = g(z, eps, torch.tensor([0]))[0]
    for t in range(1, 5):
        mask = ((clip[:, t].mean(0) + 1) / 2)[None, None]
        assert mask.sum() > blob.sum() * 1.1 ** t * 0.8  # it grows
        torch.testing.assert_close(_centroid(mask), _centroid(blob), atol=0.06, rtol=0)


def test_build_generator_knows_both_kinds():
    assert build_generator("layered", 2, size=16, width=16).kind == "layered"
    assert build_generator("mocogan", 2, size=16, width=16).kind == "mocogan"
    with pytest.raises(ValueError, match="unknown generator"):
        build_generator("stylegan", 2)


def test_a_layered_run_writes_a_bundle_that_generates(tiny_data, tmp_path):
    from tests.gen.conftest import TINY, run_cli

    from vidlab.bundle import load_bundle
    from vidlab.gen.sampling import generate, load_generator

    overrides = [a for item in [*TINY, "generator=layered"] for a in ("--set", item)]
    run = tmp_path / "run"
    assert run_cli("gan", "train", "--data", str(tiny_data), "--out", str(run), "--steps", "2",
                   *overrides) == 0
    bundle = load_bundle(run / "generator.vidlab")
    assert bundle.model_spec["generator"] == "layered"
    g = load_generator(bundle)
    assert isinstance(g, LayeredVideoGenerator) and g.num_frames == 8 and g.size == 16
    (out,) = generate(bundle, tmp_path / "grid.gif", label="left", n=2, seed=0)
    assert out.stat().st_size > 0
