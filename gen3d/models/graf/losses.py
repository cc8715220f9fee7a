"""GAN losses: the non-saturating logistic loss and the R1 gradient penalty (Mescheder et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


def d_loss_logistic(d_real: Float[Tensor, " B"], d_fake: Float[Tensor, " B"]) -> Tensor:
    """Discriminator loss ``E[softplus(-D(x))] + E[softplus(D(G(z)))]``.

    Identical to GRAF's ``BCE(D(x), 1) + BCE(D(G(z)), 0)`` (GAN_stability ``gan_type: standard``).
    """
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def g_loss_nonsaturating(d_fake: Float[Tensor, " B"]) -> Tensor:
    """Non-saturating generator loss ``E[softplus(-D(G(z)))] = BCE(D(G(z)), 1)``."""
    return F.softplus(-d_fake).mean()


def r1_penalty(d_real: Float[Tensor, " B"], x_real: Float[Tensor, "B ..."]) -> Float[Tensor, " B"]:
    """Per-sample squared gradient norm ``||grad_x D(x)||^2`` on real data (differentiable, for backward).

    ``x_real`` must have ``requires_grad=True`` and ``d_real`` must have been computed from it. The
    regulariser is ``gamma / 2 * mean(r1_penalty(...))`` (the paper's convention; GRAF's code writes
    ``reg_param * mean(...)``, so its ``reg_param: 10`` is gamma = 20 here; pi-GAN's
    ``0.5 * r1_lambda * mean(...)`` is gamma = r1_lambda).

    Args:
        d_real: discriminator logits (B,).
        x_real: the real inputs (B, ...) they were computed from.

    Returns:
        (B,) squared gradient norms, with a graph for double backward.
    """
    (grad,) = torch.autograd.grad(outputs=d_real.sum(), inputs=x_real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1)
