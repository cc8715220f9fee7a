"""NeRF's positional encoding (Mildenhall et al. 2020, section 5.1), as used by GRAF."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn


class PositionalEncoding(nn.Module):
    """gamma(p) = (p, sin(2^0 p), cos(2^0 p), ..., sin(2^(L-1) p), cos(2^(L-1) p)).

    The layout follows NeRF's reference code (and GRAF's copy of it): the raw input first, then for each
    frequency ``2^k`` (k = 0..L-1, log-spaced) the sine and cosine of all input channels.

    Args:
        num_freqs: L, the number of octaves (GRAF: 10 for positions, 4 for view directions).
        in_dim: channels of the input (3 for points and directions).
        include_input: put the raw input in front of the sinusoids.
    """

    def __init__(self, num_freqs: int, in_dim: int = 3, include_input: bool = True):
        super().__init__()
        if num_freqs < 0:
            raise ValueError(f"num_freqs must be >= 0, got {num_freqs}")
        self.num_freqs = int(num_freqs)
        self.in_dim = int(in_dim)
        self.include_input = bool(include_input)
        self.register_buffer("freqs", 2.0 ** torch.arange(self.num_freqs, dtype=torch.float32), persistent=False)

    @property
    def out_dim(self) -> int:
        """Channels of the encoding: ``in_dim * (include_input + 2 L)``."""
        return self.in_dim * (int(self.include_input) + 2 * self.num_freqs)

    def forward(self, x: Float[Tensor, "*batch in_dim"]) -> Float[Tensor, "*batch out_dim"]:
        """Encode ``x``.

        Args:
            x: inputs (..., in_dim).

        Returns:
            The encoding (..., out_dim).
        """
        parts = [x] if self.include_input else []
        if self.num_freqs:
            xf = x.unsqueeze(-2) * self.freqs.to(x.dtype)[:, None]  # (..., L, in_dim)
            sc = torch.stack([torch.sin(xf), torch.cos(xf)], dim=-2)  # (..., L, 2, in_dim)
            parts.append(sc.flatten(-3))  # (..., L * 2 * in_dim)
        return torch.cat(parts, dim=-1)
