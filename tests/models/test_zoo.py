"""Every registered model: forward/backward, output shape, head reset, frame-order sensitivity."""

from __future__ import annotations

import pytest
import torch
from tests.models.helpers import TEMPORAL, all_models, clip, is_tiny

from vidlab.models import create


@pytest.mark.parametrize("name", all_models())
def test_forward_backward_head_reset_and_frame_order(name):
    torch.manual_seed(0)
    model = create(name, num_classes=5)
    batch = 2 if is_tiny(name) else 1  # full-size models: one clip keeps the suite in budget
    x = clip(name, batch=batch)
    out = model(x)
    assert out.shape == (batch, 5)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "some parameters got no gradient"
    assert any(g.abs().sum() > 0 for g in grads)

    model.eval()
    with torch.no_grad():  # one pass over the clips and their time-reversed copies
        features, reverse = model.forward_features(torch.cat([x, x.flip(2)])).chunk(2)
    assert features.shape == (batch, model.num_features)
    change = ((features - reverse).norm() / features.norm()).item()
    if name.startswith(TEMPORAL):
        assert change > 1e-4, f"{name} ignores frame order (relative change {change:.2e})"
    elif name.startswith("tsn"):
        assert change < 1e-5, f"TSN's average consensus should be order-blind ({change:.2e})"

    old_head = model.get_classifier()
    model.reset_classifier(11)
    assert model.get_classifier() is not old_head
    with torch.no_grad():
        assert model.forward_head(features).shape == (batch, 11)
