"""The network: restore keeps the size, sr2x doubles it, any size works, it starts as identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidlab.enhance import build_enhancer, enhance_window
from vidlab.enhance.model import base_frame, box_mean


@pytest.mark.parametrize("h,w", [(32, 48), (31, 45), (17, 16)])
def test_restore_keeps_size_and_sr2x_doubles_it(h, w):
    x = torch.rand(2, 3, 3, h, w)
    assert build_enhancer(num_frames=3, channels=8, num_blocks=1)(x).shape == (2, 3, h, w)
    assert build_enhancer(num_frames=3, channels=8, num_blocks=1, scale=2)(x).shape == \
        (2, 3, 2 * h, 2 * w)


def test_untrained_model_returns_its_residual_base():
    """The head starts at zero, so training starts from the input (or bicubic) baseline."""
    x = torch.rand(1, 3, 5, 20, 24)
    assert torch.equal(build_enhancer()(x), x[:, :, 2])
    sr = build_enhancer(scale=2)(x)
    assert torch.allclose(sr, base_frame(x[:, :, 2], 2))


def test_wrong_frame_count_is_refused():
    with pytest.raises(ValueError, match="expected"):
        build_enhancer(num_frames=5)(torch.rand(1, 3, 3, 16, 16))
    with pytest.raises(ValueError, match="odd"):
        build_enhancer(num_frames=4)


def test_tiled_inference_matches_whole_frame():
    torch.manual_seed(0)
    model = build_enhancer(num_frames=3, channels=8, num_blocks=1, scale=2)
    torch.nn.init.normal_(model.head[0].weight, 0, 0.05)
    window = np.random.default_rng(0).integers(0, 255, (3, 70, 90, 3), dtype=np.uint8)
    whole = enhance_window(model.eval(), window, tile=10_000)
    tiled = enhance_window(model, window, tile=48)
    assert tiled.shape == whole.shape == (140, 180, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_flip_ensemble_of_an_untrained_model_is_still_the_identity():
    window = np.random.default_rng(1).integers(0, 255, (5, 20, 26, 3), dtype=np.uint8)
    model = build_enhancer(channels=8, num_blocks=1).eval()
    np.testing.assert_array_equal(enhance_window(model, window, ensemble=True), window[2])


@pytest.mark.parametrize("h,w", [(32, 48), (31, 45), (17, 16)])
def test_context_branch_starts_silent_and_learns_to_act(h, w):
    """A grown model equals the model it grew from until its branch's zero output layer moves."""
    torch.manual_seed(0)
    plain = build_enhancer(num_frames=3, channels=8, num_blocks=1)
    torch.nn.init.normal_(plain.head[0].weight, 0, 0.05)
    grown = build_enhancer(num_frames=3, channels=8, num_blocks=1, context_blocks=2)
    missing = set(grown.state_dict()) - set(plain.state_dict())
    assert missing and all(k.startswith("context.") for k in missing)
    grown.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(2, 3, 3, h, w)
    assert torch.equal(grown(x), plain(x))
    torch.nn.init.normal_(grown.context.up[0].weight, 0, 0.05)
    assert grown(x).shape == (2, 3, h, w) and not torch.allclose(grown(x), plain(x))


def test_aligned_model_starts_as_the_unaligned_one_and_warps_once_trained():
    torch.manual_seed(0)
    plain = build_enhancer(num_frames=3, channels=8, num_blocks=1)
    aligned = build_enhancer(num_frames=3, channels=8, num_blocks=1, align=True)
    missing = aligned.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("align.") for k in missing)
    for m in (plain, aligned):
        torch.nn.init.normal_(m.head[0].weight, std=0.1)
    aligned.head.load_state_dict(plain.head.state_dict())
    x = torch.rand(1, 3, 3, 20, 24)
    torch.testing.assert_close(aligned(x), plain(x))  # zero flow: no warp
    torch.nn.init.normal_(aligned.align.flow[-1].weight, std=0.5)
    assert not torch.allclose(aligned(x), plain(x))
    assert aligned(x).shape == (1, 3, 20, 24)


def test_lowcut_removes_a_made_up_level_shift_and_keeps_detail():
    """A head that only adds a constant (a level shift) is cancelled by the low-cut; a
    correction finer than the box passes almost unchanged."""
    x = torch.rand(1, 3, 3, 24, 32)
    shifted = build_enhancer(num_frames=3, channels=8, num_blocks=1)
    torch.nn.init.constant_(shifted.head[0].bias, 0.05)
    assert torch.allclose(shifted(x), x[:, :, 1] + 0.05)
    shifted.lowcut = 9
    assert torch.allclose(shifted(x), x[:, :, 1], atol=1e-6)
    detailed = build_enhancer(num_frames=3, channels=8, num_blocks=1, lowcut=9)
    torch.nn.init.normal_(detailed.head[0].weight, std=0.1)
    residual = detailed(x) - x[:, :, 1]
    detailed.lowcut = 0
    plain = detailed(x) - x[:, :, 1]
    assert residual.abs().mean() > 0.5 * plain.abs().mean()
    assert not torch.allclose(residual, plain)
    with pytest.raises(ValueError, match="odd"):
        build_enhancer(lowcut=16)


@pytest.mark.parametrize("width", [1, 3, 9, 17])
def test_box_mean_is_the_replicate_padded_box_average(width):
    """The running-sum box mean equals the plain definition, edges included."""
    x = torch.rand(2, 3, 13, 21) * 4 - 2
    r = width // 2
    expected = F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), width, stride=1)
    got = box_mean(x, width)
    assert got.shape == x.shape and got.dtype == x.dtype
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
