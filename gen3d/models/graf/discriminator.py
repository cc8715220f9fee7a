"""GRAF's patch discriminator (``graf/models/discriminator.py``): a DCGAN-style conv net on K x K patches.

Stride-2 4x4 convolutions with spectral normalisation, instance normalisation and LeakyReLU(0.2) halve the
patch down to 4 x 4 with ``8 ndf`` channels; a final 4 x 4 convolution gives one logit per patch. The
channel plan is GRAF's: ``8 ndf * 4 / r`` channels at resolution ``r``; the first layer is not normalised
for K >= 64 (as in GRAF's 64 and 128 networks) and is for K <= 32 (GRAF's 32 network).
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn
from torch.nn.utils import spectral_norm


class PatchDiscriminator(nn.Module):
    """Conv discriminator on K x K patches, K a power of two >= 8.

    Args:
        patch_size: K (GRAF: 32, i.e. ``ray_sampler.N_samples = 1024``).
        ndf: base width (GRAF: 64).
        in_channels: image channels.
        hflip: randomly flip each input horizontally (GRAF's ``discriminator.hflip``, off by default).
        instance_norm: GRAF's instance normalisation after the convolutions. It removes each channel's mean and
            scale over the patch, and with them most of what tells flat colours apart (an object of one colour on
            a plain background gives every first-layer channel nearly the same map, up to sign, whatever the
            colour); False keeps spectral normalisation only (SNGAN's discriminator).
    """

    def __init__(
        self, patch_size: int = 32, ndf: int = 64, in_channels: int = 3, hflip: bool = False, instance_norm: bool = True
    ):
        super().__init__()
        n_down = int(round(math.log2(patch_size))) - 2
        if patch_size < 8 or 2 ** (n_down + 2) != patch_size:
            raise ValueError(f"patch_size must be a power of two >= 8, got {patch_size}")
        self.patch_size, self.ndf, self.in_channels, self.hflip = int(patch_size), int(ndf), int(in_channels), hflip
        layers: list[nn.Module] = []
        c_in, r = in_channels, patch_size
        for i in range(n_down):
            r //= 2
            c_out = max(1, 32 * ndf // r)  # 8 ndf at 4 x 4, doubling per halving
            layers.append(spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)))
            if instance_norm and (i > 0 or patch_size <= 32):
                layers.append(nn.InstanceNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        layers.append(spectral_norm(nn.Conv2d(c_in, 1, 4, 1, 0, bias=False)))
        self.main = nn.Sequential(*layers)

    def forward(self, x: Float[Tensor, "B C K K"]) -> Float[Tensor, " B"]:
        """Logits of real vs fake, one per patch.

        Args:
            x: patches (B, C, K, K) in [-1, 1].

        Returns:
            Logits (B,).
        """
        if x.shape[-2:] != (self.patch_size, self.patch_size):
            raise ValueError(f"expected {self.patch_size}x{self.patch_size} patches, got {tuple(x.shape)}")
        if self.hflip and self.training:
            flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
            x = torch.where(flip, x.flip(-1), x)
        return self.main(x).flatten()  # (B,)
