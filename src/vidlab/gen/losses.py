"""GAN objectives: hinge loss and the R1 gradient penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_hinge(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: push real scores above +1 and fake scores below -1."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def g_hinge(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: raise the critic's score of generated samples."""
    return -fake_scores.mean()


def r1_penalty(real_scores: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean squared gradient norm of D at real data.

    `real_inputs` must have `requires_grad=True` when the scores were computed.
    """
    (grad,) = torch.autograd.grad(real_scores.sum(), real_inputs, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()
