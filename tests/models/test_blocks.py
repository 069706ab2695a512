"""Building blocks whose behaviour is easy to state exactly."""

from __future__ import annotations

import torch

from vidlab.models import create
from vidlab.models.layers import DropPath
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
