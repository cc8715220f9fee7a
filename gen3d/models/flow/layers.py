"""Invertible layers of the discrete flows (RealNVP, Glow) and a stack of them.

Every layer maps data towards noise in ``forward(x, cond) -> (y, logdet)`` and back in ``inverse(y, cond) -> x``.
The last axis holds the D features a layer mixes; all leading axes are batch axes (``(B, D)`` for shape codes,
``(B, N, 3)`` for points), and ``logdet = log|det dy/dx|`` has the leading shape (one value per point or code).
A condition ``cond`` is ``(B, C)``, one row per batch element of the first axis, shared by the axes after it.

Dimension names: B batch, N points, D features of one element, C condition width, H hidden width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def standard_normal_log_prob(u: Tensor) -> Tensor:
    """``log N(u; 0, I)`` over the last axis: ``(..., D) -> (...)``."""
    return -0.5 * (u.square().sum(dim=-1) + u.shape[-1] * math.log(2.0 * math.pi))


class ActNorm(nn.Module):
    """Glow's activation normalisation: ``y = (x - loc) * exp(-log_scale)``, i.e. ``x = exp(log_scale) * y + loc``.

    The first ``forward`` in training mode sets ``loc`` and ``log_scale`` to the per-feature mean and log standard
    deviation of that batch (over all leading axes), so the output starts standardised; the ``initialized`` buffer
    records it, so a reloaded checkpoint keeps its values. Before that the layer is the identity. With
    ``data_init=False`` the layer starts as the identity and is marked initialised at once (for inputs seen only a
    few at a time, such as one code per cloud, where the statistics of a small first batch are too noisy).

    Args:
        dim: D, features per element.
        eps: floor of the initial standard deviation.
        data_init: initialise from the first training batch.
    """

    def __init__(self, dim: int, eps: float = 1e-6, data_init: bool = True):
        super().__init__()
        self.eps = eps
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(not data_init))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent initialisation from ``x`` (..., D); needs at least two elements."""
        flat = x.reshape(-1, x.shape[-1])  # (M, D)
        if flat.shape[0] < 2:
            return
        self.loc.copy_(flat.mean(dim=0))
        self.log_scale.copy_(flat.std(dim=0, unbiased=False).clamp_min(self.eps).log())
        self.initialized.fill_(True)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (..., D) -> ``y`` (..., D), ``logdet`` (...)."""
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x - self.loc) * torch.exp(-self.log_scale)  # (..., D)
        logdet = (-self.log_scale.sum()).expand(x.shape[:-1])  # (...)
        return y, logdet

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        """``y`` (..., D) -> ``x`` (..., D)."""
        return y * torch.exp(self.log_scale) + self.loc


class InvertibleMixing(nn.Module):
    """Glow's invertible 1x1 convolution on the D features: ``y = W x`` with ``W = P L (U + diag(sign * exp(log_s)))``.

    P is a fixed permutation, L unit lower triangular, U strictly upper triangular, so ``log|det W| = sum(log_s)``
    and W stays invertible for any parameters. Starts at a random rotation (``|det W| = 1``).

    Args:
        dim: D, features per element.
    """

    def __init__(self, dim: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(dim, dim, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(dim, dim), diagonal=-1))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, diagonal=1).float())
        self.log_s = nn.Parameter(s.abs().log().float())

    def factors(self) -> tuple[Tensor, Tensor]:
        """The triangular factors L (unit lower) and U (upper with diagonal ``sign * exp(log_s)``), (D, D) each."""
        eye = torch.eye(self.perm.shape[0], dtype=self.perm.dtype, device=self.perm.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return lower, upper

    def weight(self) -> Tensor:
        """The (D, D) matrix W."""
        lower, upper = self.factors()
        return self.perm @ lower @ upper

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (..., D) -> ``y`` (..., D), ``logdet`` (...)."""
        y = x @ self.weight().T  # (..., D)
        return y, self.log_s.sum().expand(x.shape[:-1])

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        """``y`` (..., D) -> ``x`` (..., D)."""
        lower, upper = self.factors()
        flat = y.reshape(-1, y.shape[-1]).T  # (D, M)
        flat = torch.linalg.solve_triangular(lower, self.perm.T @ flat, upper=False, unitriangular=True)
        flat = torch.linalg.solve_triangular(upper, flat, upper=True)
        return flat.T.reshape(y.shape)


class CouplingNet(nn.Module):
    """MLP of a coupling layer on the conditioning features, with the condition added to every hidden layer.

    ``h_1 = act(A_1 x_a + C_1 c)``, ``h_k = act(A_k h_{k-1} + C_k c)``, output ``A_out h`` (zero-initialised, so a new
    coupling is the identity). Adding ``C_k c`` equals concatenating c to the layer's input, at the cost of one
    projection per shape rather than per point.

    Args:
        in_dim: conditioning features of the element.
        out_dim: outputs (log-scales and shifts).
        hidden: H.
        cond_dim: C (0: unconditional).
        depth: hidden layers.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int, cond_dim: int = 0, depth: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(in_dim if k == 0 else hidden, hidden) for k in range(depth))
        self.cond = nn.ModuleList(nn.Linear(cond_dim, hidden, bias=False) for _ in range(depth)) if cond_dim else None
        self.out = nn.Linear(hidden, out_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.act = nn.SiLU()

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """``x`` (B, ..., in_dim), ``cond`` (B, C) -> (B, ..., out_dim)."""
        h = x
        for k, layer in enumerate(self.layers):
            h = layer(h)  # (B, ..., H)
            if self.cond is not None:
                if cond is None:
                    raise ValueError("this coupling layer is conditional: pass cond")
                c = self.cond[k](cond)  # (B, H)
                h = h + c.reshape(c.shape[0], *([1] * (h.dim() - 2)), c.shape[1])
            h = self.act(h)
        return self.out(h)


class AffineCoupling(nn.Module):
    """RealNVP's affine coupling: features split into a conditioning part ``x_a`` and a transformed part ``x_b``.

    ``y_a = x_a``, ``y_b = x_b * exp(s) + t`` with ``(s, t) = NN(x_a, cond)`` and ``s`` softly clamped to
    ``(-c, c)`` as ``c * tanh(s / c)``; ``log|det| = sum(s)``. ``parity`` 0 conditions on the first ``D // 2``
    features, parity 1 on the last ``D - D // 2`` (for points, 1|2 then 2|1), so alternating blocks transform
    every feature.

    Args:
        dim: D.
        hidden: width of the coupling network.
        cond_dim: C (0: unconditional).
        parity: 0 or 1, which split.
        scale_clamp: c.
        depth: hidden layers of the coupling network.
    """

    def __init__(
        self, dim: int, hidden: int, cond_dim: int = 0, parity: int = 0, scale_clamp: float = 2.0, depth: int = 2
    ):
        super().__init__()
        if dim < 2:
            raise ValueError(f"a coupling layer needs at least 2 features, got {dim}")
        half = dim // 2
        cond_idx = list(range(half)) if parity == 0 else list(range(half, dim))
        trans_idx = [i for i in range(dim) if i not in cond_idx]
        order = cond_idx + trans_idx
        self.register_buffer("cond_idx", torch.tensor(cond_idx), persistent=False)
        self.register_buffer("trans_idx", torch.tensor(trans_idx), persistent=False)
        self.register_buffer("unsort", torch.argsort(torch.tensor(order)), persistent=False)
        self.scale_clamp = scale_clamp
        self.net = CouplingNet(len(cond_idx), 2 * len(trans_idx), hidden, cond_dim, depth)

    def _scale_shift(self, x_a: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor]:
        s, t = self.net(x_a, cond).chunk(2, dim=-1)  # (..., Db) each
        s = self.scale_clamp * torch.tanh(s / self.scale_clamp)
        return s, t

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (..., D), ``cond`` (B, C) -> ``y`` (..., D), ``logdet`` (...)."""
        x_a, x_b = x.index_select(-1, self.cond_idx), x.index_select(-1, self.trans_idx)  # (..., Da), (..., Db)
        s, t = self._scale_shift(x_a, cond)
        y_b = x_b * torch.exp(s) + t
        y = torch.cat([x_a, y_b], dim=-1).index_select(-1, self.unsort)  # (..., D)
        return y, s.sum(dim=-1)

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        """``y`` (..., D), ``cond`` (B, C) -> ``x`` (..., D)."""
        y_a, y_b = y.index_select(-1, self.cond_idx), y.index_select(-1, self.trans_idx)
        s, t = self._scale_shift(y_a, cond)
        x_b = (y_b - t) * torch.exp(-s)
        return torch.cat([y_a, x_b], dim=-1).index_select(-1, self.unsort)


class FlowBlock(nn.Module):
    """One Glow step: :class:`ActNorm`, :class:`InvertibleMixing`, :class:`AffineCoupling`.

    Args:
        dim: D.
        hidden: coupling network width.
        cond_dim: C (0: unconditional).
        parity: coupling split (see :class:`AffineCoupling`).
        scale_clamp: coupling log-scale bound.
        depth: coupling network hidden layers.
        data_init: data-dependent actnorm initialisation.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        cond_dim: int = 0,
        parity: int = 0,
        scale_clamp: float = 2.0,
        depth: int = 2,
        data_init: bool = True,
    ):
        super().__init__()
        self.actnorm = ActNorm(dim, data_init=data_init)
        self.mixing = InvertibleMixing(dim)
        self.coupling = AffineCoupling(dim, hidden, cond_dim, parity, scale_clamp, depth)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (..., D), ``cond`` (B, C) -> ``y`` (..., D), ``logdet`` (...)."""
        x, ld_a = self.actnorm(x)
        x, ld_m = self.mixing(x)
        x, ld_c = self.coupling(x, cond)
        return x, ld_a + ld_m + ld_c

    def inverse(self, y: Tensor, cond: Tensor | None = None) -> Tensor:
        """``y`` (..., D), ``cond`` (B, C) -> ``x`` (..., D)."""
        y = self.coupling.inverse(y, cond)
        y = self.mixing.inverse(y)
        return self.actnorm.inverse(y)


class NormalizingFlow(nn.Module):
    """A stack of :class:`FlowBlock` from data x to ``u ~ N(0, I)``, with exact ``log p(x) = log N(u) + log|det|``.

    Args:
        dim: D.
        layers: blocks (0: the standard normal itself).
        hidden: coupling network width.
        cond_dim: C (0: unconditional).
        scale_clamp: coupling log-scale bound.
        depth: coupling network hidden layers.
        data_init: data-dependent actnorm initialisation.
    """

    def __init__(
        self,
        dim: int,
        layers: int,
        hidden: int,
        cond_dim: int = 0,
        scale_clamp: float = 2.0,
        depth: int = 2,
        data_init: bool = True,
    ):
        super().__init__()
        self.dim = dim
        self.blocks = nn.ModuleList(
            FlowBlock(dim, hidden, cond_dim, k % 2, scale_clamp, depth, data_init) for k in range(layers)
        )

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (..., D), ``cond`` (B, C) -> ``u`` (..., D), ``logdet`` (...)."""
        logdet = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
        for block in self.blocks:
            x, ld = block(x, cond)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, u: Tensor, cond: Tensor | None = None) -> Tensor:
        """``u`` (..., D), ``cond`` (B, C) -> ``x`` (..., D)."""
        for block in reversed(self.blocks):
            u = block.inverse(u, cond)
        return u

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Exact ``log p(x | cond)`` in nats: ``x`` (..., D) -> (...)."""
        u, logdet = self(x, cond)
        return standard_normal_log_prob(u) + logdet
