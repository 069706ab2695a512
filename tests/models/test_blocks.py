"""Building blocks whose behaviour is easy to state exactly."""

from __future__ import annotations

import torch

from vidlab.models import create
from vidlab.models.layers import DropPath, FrameDifference
from vidlab.models.resnet2d import TemporalShift


def test_temporal_shift_moves_one_eighth_back_and_one_eighth_forward():
    b, t, c = 2, 4, 16
    x = torch.randn(b, t, c, 3, 3)
    shift = TemporalShift(fold_div=8)
    shift.num_frames = t
    out = shift(x.reshape(b * t, c, 3, 3)).reshape(b, t, c, 3, 3)
    assert torch.equal(out[:, :-1, :2], x[:, 1:, :2])     # sees the next frame
    assert torch.equal(out[:, -1, :2], torch.zeros_like(out[:, -1, :2]))
    assert torch.equal(out[:, 1:, 2:4], x[:, :-1, 2:4])   # sees the previous frame
    assert torch.equal(out[:, 0, 2:4], torch.zeros_like(out[:, 0, 2:4]))
    assert torch.equal(out[:, :, 4:], x[:, :, 4:])         # the rest stays


def test_drop_path_is_identity_in_eval_and_drops_whole_samples_in_training():
    layer = DropPath(0.5)
    x = torch.ones(64, 3, 2)
    assert torch.equal(layer.eval()(x), x)
    y = layer.train()(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample.std(dim=1) == 0).all()


def test_timesformer_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 32, 32)
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(1)
        model = create("timesformer_tiny", num_classes=3, num_frames=4, img_size=32,
                       drop_path_rate=0.0, grad_checkpointing=ckpt)
        model(x).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_timesformer_runs_at_another_grid_and_length_than_built_for():
    model = create("timesformer_tiny", num_classes=3).eval()   # built for 8×64²
    with torch.no_grad():
        assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 3)


def test_x3d_factorized_depthwise_is_a_smaller_network():
    full = create("x3d_tiny", num_classes=3)
    fact = create("x3d_tiny", num_classes=3, factorized=True)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(fact) < count(full)
    assert fact(torch.randn(2, 3, 8, 32, 32)).shape == (2, 3)


def test_frame_difference_puts_each_frames_change_beside_the_frames():
    """Channels 0-2 are the frames; 3-5 each frame minus the one before (the first repeats the
    second's), normalised: zero where nothing moves, the moving pixels elsewhere."""
    still = torch.rand(1, 3, 1, 8, 8).repeat(1, 1, 4, 1, 1)
    moving = still.clone()
    moving[:, :, 2:, 3, 3] += 1.0  # one pixel changes between frames 1 and 2
    layer = FrameDifference(3).eval()  # fresh running statistics: mean 0, variance 1
    for clip in (still, moving):
        out = layer(clip)
        assert out.shape == (1, 6, 4, 8, 8)
        assert torch.equal(out[:, :3], clip)
    assert layer(still)[:, 3:].abs().max() == 0
    diff = layer(moving)[:, 3:]
    assert torch.allclose(diff[0, :, 2, 3, 3], torch.ones(3), atol=1e-4)
    diff[0, :, 2, 3, 3] = 0
    assert diff.abs().max() == 0


def test_video_resnet_with_frame_differences_keeps_its_layer_names():
    """`frame_diff=True` widens only the stem's first convolution; every other weight keeps
    its name and shape, so torchvision-named checkpoints still map onto the rest."""
    plain = create("r2plus1d_tiny", num_classes=4).state_dict()
    with_diff = create("r2plus1d_tiny", num_classes=4, frame_diff=True)
    assert with_diff(torch.randn(2, 3, 8, 32, 32)).shape == (2, 4)
    state = with_diff.state_dict()
    assert {k for k in state if not k.startswith("motion.")} == set(plain)
    changed = {k for k in plain if state[k].shape != plain[k].shape}
    assert changed == {"stem.0.weight"} and state["stem.0.weight"].shape[1] == 6
    # it starts as the plain network: the differences' weights are zero until training grows them
    assert state["stem.0.weight"][:, 3:].abs().max() == 0
    assert state["stem.0.weight"][:, :3].abs().max() > 0
