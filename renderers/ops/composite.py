"""Fused volume compositing (native forward and hand-written backward) with a pure-PyTorch twin.

``composite`` renders either batched samples ``(R, S)`` or packed samples ``(N,)`` with sorted
``ray_indices``. The native kernel walks each ray front to back (OpenMP over rays on the CPU, one CUDA
thread per ray on the GPU) and stops once the transmittance falls below ``eps``; its backward pass is
computed analytically in a second walk. ``composite_ref`` is the autograd reference applying the same
early-termination rule, so both agree to rounding.

On the GPU a second kernel layout exists: one group of lanes per ray, loading consecutive samples together and
computing transmittances and gradients by scans over the group (1 or 3 channels). Set the environment
variable ``GEN3D_COMPOSITE_KERNEL=group`` to use it (``thread``, one thread per ray, is the default).

Gradients flow to ``sigmas`` and ``rgbs``; ``t_starts`` and ``t_ends`` are treated as constants.
"""

from __future__ import annotations

import math
import os
from types import ModuleType

import torch
from jaxtyping import Float, Int
from torch import Tensor
from torch.autograd.function import once_differentiable

from renderers.ops._backend import native_module
from renderers.volrend import apply_background, volume_render, volume_render_packed

__all__ = ["composite", "composite_ref", "DEFAULT_EPS", "CUDA_KERNELS", "cuda_kernel"]

DEFAULT_EPS = 1e-4
CUDA_KERNELS = ("thread", "group")


def cuda_kernel() -> str:
    """The CUDA compositing layout that ``GEN3D_COMPOSITE_KERNEL`` selects: ``"thread"`` (default) or ``"group"``.

    Raises:
        ValueError: the variable holds another value.
    """
    value = os.environ.get("GEN3D_COMPOSITE_KERNEL", "").strip() or CUDA_KERNELS[0]
    if value not in CUDA_KERNELS:
        raise ValueError(f"GEN3D_COMPOSITE_KERNEL must be one of {CUDA_KERNELS}, got {value!r}")
    return value


class _Composite(torch.autograd.Function):
    """Native packed compositing: forward and analytic backward from ``renderers_ops``."""

    @staticmethod
    def forward(ctx, sigmas, values, t_starts, t_ends, chunk_starts, chunk_cnts, eps: float, module: ModuleType):
        save = bool(ctx.needs_input_grad[0] or ctx.needs_input_grad[1])
        cooperative = sigmas.is_cuda and cuda_kernel() == "group"
        rgb, opacity, depth, trans, alphas, live = module.composite_forward(
            sigmas, values, t_starts, t_ends, chunk_starts, chunk_cnts, eps, save, cooperative
        )
        ctx.cooperative = cooperative
        if save:
            ctx.save_for_backward(
                values, t_starts, t_ends, chunk_starts, chunk_cnts, rgb, opacity, depth, trans, alphas, live
            )
        ctx.module = module
        return rgb, opacity, depth

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rgb, grad_opacity, grad_depth):
        values, t_starts, t_ends, chunk_starts, chunk_cnts, rgb, opacity, depth, trans, alphas, live = ctx.saved_tensors
        grad_sigmas, grad_values = ctx.module.composite_backward(
            grad_rgb.contiguous(),
            grad_opacity.contiguous(),
            grad_depth.contiguous(),
            values,
            t_starts,
            t_ends,
            chunk_starts,
            chunk_cnts,
            rgb,
            opacity,
            depth,
            trans,
            alphas,
            live,
            ctx.cooperative,
        )
        return grad_sigmas, grad_values, None, None, None, None, None, None


def _check_inputs(
    sigmas: Tensor, rgbs: Tensor, t_starts: Tensor, t_ends: Tensor, ray_indices: Tensor | None, check_order: bool = True
) -> None:
    if not (sigmas.is_floating_point() and rgbs.dtype == sigmas.dtype):
        raise ValueError(f"sigmas and rgbs must share a floating dtype, got {sigmas.dtype} and {rgbs.dtype}")
    if t_starts.shape != sigmas.shape or t_ends.shape != sigmas.shape:
        raise ValueError(
            f"t_starts {tuple(t_starts.shape)} and t_ends {tuple(t_ends.shape)} must match sigmas {tuple(sigmas.shape)}"
        )
    if rgbs.dim() != sigmas.dim() + 1 or rgbs.shape[:-1] != sigmas.shape:
        raise ValueError(f"rgbs must be sigmas' shape plus channels, got {tuple(rgbs.shape)} for {tuple(sigmas.shape)}")
    if ray_indices is None:
        if sigmas.dim() < 1:
            raise ValueError("batched sigmas must be (*batch, S)")
        return
    if sigmas.dim() != 1:
        raise ValueError(f"packed sigmas must be (N,), got {tuple(sigmas.shape)}")
    if ray_indices.shape != sigmas.shape or ray_indices.dtype != torch.long:
        raise ValueError("ray_indices must be an int64 tensor of shape (N,)")
    if check_order and ray_indices.numel() > 1 and bool((ray_indices[1:] < ray_indices[:-1]).any()):
        raise ValueError("ray_indices must be sorted (the samples of each ray contiguous, front to back)")


def _resolve_n_rays(ray_indices: Tensor, n_rays: int | None) -> int:
    inferred = int(ray_indices.max()) + 1 if ray_indices.numel() > 0 else 0
    n_rays = inferred if n_rays is None else int(n_rays)
    if inferred > n_rays or (ray_indices.numel() > 0 and int(ray_indices.min()) < 0):
        raise ValueError(f"ray_indices must lie in [0, n_rays={n_rays})")
    return n_rays


def composite_ref(
    sigmas: Float[Tensor, "*batch S"] | Float[Tensor, " N"],
    rgbs: Float[Tensor, "*batch S C"] | Float[Tensor, "N C"],
    t_starts: Float[Tensor, "*batch S"] | Float[Tensor, " N"],
    t_ends: Float[Tensor, "*batch S"] | Float[Tensor, " N"],
    ray_indices: Int[Tensor, " N"] | None = None,
    n_rays: int | None = None,
    background: Float[Tensor, " C"] | float | None = None,
    eps: float = DEFAULT_EPS,
) -> tuple[Tensor, Tensor, Tensor]:
    """Pure-PyTorch twin of :func:`composite` (autograd through :mod:`renderers.volrend`).

    Args:
        sigmas: see :func:`composite`.
        rgbs: see :func:`composite`.
        t_starts: see :func:`composite`.
        t_ends: see :func:`composite`.
        ray_indices: see :func:`composite`.
        n_rays: see :func:`composite`.
        background: see :func:`composite`.
        eps: see :func:`composite`.

    Returns:
        ``(rgb, opacity, depth)`` as :func:`composite`.
    """
    _check_inputs(sigmas, rgbs, t_starts, t_ends, ray_indices)
    if ray_indices is None:
        rgb, opacity, depth, _ = volume_render(sigmas, rgbs, t_starts, t_ends, background=background, eps=eps)
        return rgb, opacity, depth
    n_rays = _resolve_n_rays(ray_indices, n_rays)
    rgb, opacity, depth, _ = volume_render_packed(
        sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, background=background, eps=eps
    )
    return rgb, opacity, depth


def composite(
    sigmas: Float[Tensor, "*batch S"] | Float[Tensor, " N"],
    rgbs: Float[Tensor, "*batch S C"] | Float[Tensor, "N C"],
    t_starts: Float[Tensor, "*batch S"] | Float[Tensor, " N"],
    t_ends: Float[Tensor, "*batch S"] | Float[Tensor, " N"],
    ray_indices: Int[Tensor, " N"] | None = None,
    n_rays: int | None = None,
    background: Float[Tensor, " C"] | float | None = None,
    eps: float = DEFAULT_EPS,
    impl: str = "auto",
) -> tuple[Float[Tensor, "R C"], Float[Tensor, " R"], Float[Tensor, " R"]]:
    """Volume-render samples into colour, opacity and expected depth per ray.

    Batched layout: ``sigmas (*batch, S)``, ``rgbs (*batch, S, C)``, ``t_starts/t_ends (*batch, S)``, outputs
    ``(*batch, C)`` and ``(*batch,)``. Packed layout: ``sigmas (N,)``, ``rgbs (N, C)``, ``t_starts/t_ends (N,)``
    and sorted ``ray_indices (N,)``, outputs ``(R, C)`` and ``(R,)`` with ``R = n_rays`` (default
    ``max(ray_indices) + 1``); rays without samples get zeros.

    With ``alpha_i = 1 - exp(-sigma_i (t_end_i - t_start_i))``, ``T_i = prod_{j<i} (1 - alpha_j)`` and
    ``w_i = T_i alpha_i``:
    ``rgb = sum w_i rgb_i + (1 - opacity) * background``, ``opacity = sum w_i``, ``depth = sum w_i t_mid_i``
    (not divided by the opacity). Early termination: samples with ``T_i < eps`` get zero weight (and zero
    gradient); ``eps=0`` disables it.

    Args:
        sigmas: non-negative densities.
        rgbs: colours or any per-sample features (``C`` channels).
        t_starts: interval starts along the rays (not differentiated).
        t_ends: interval ends (not differentiated).
        ray_indices: packed layout: ray of each sample, sorted; ``None`` for the batched layout.
        n_rays: packed layout: number of rays.
        background: colour ``(C,)``, per-ray colours, a scalar, or ``None`` (black).
        eps: transmittance threshold of early termination.
        impl: ``"auto"`` (native when it builds), ``"native"`` or ``"torch"`` (the reference).

    Returns:
        ``rgb``, ``opacity``, ``depth``.
    """
    module = native_module(impl, sigmas.device)
    # The native path checks the order of ray_indices while computing the per-ray offsets.
    _check_inputs(sigmas, rgbs, t_starts, t_ends, ray_indices, check_order=module is None)
    if module is None:
        return composite_ref(sigmas, rgbs, t_starts, t_ends, ray_indices, n_rays, background=background, eps=eps)
    n_channels = rgbs.shape[-1]
    if ray_indices is None:
        batch, n_samples = sigmas.shape[:-1], sigmas.shape[-1]
        n_total = math.prod(batch)
        chunk_cnts = torch.full((n_total,), n_samples, dtype=torch.long, device=sigmas.device)
        chunk_starts = torch.arange(n_total, dtype=torch.long, device=sigmas.device) * n_samples
        rgb, opacity, depth = _Composite.apply(
            sigmas.reshape(-1),
            rgbs.reshape(-1, n_channels),
            t_starts.reshape(-1),
            t_ends.reshape(-1),
            chunk_starts,
            chunk_cnts,
            float(eps),
            module,
        )
        rgb, opacity, depth = rgb.reshape(*batch, n_channels), opacity.reshape(batch), depth.reshape(batch)
    else:
        if n_rays is None:  # sorted: the last index is the largest (packed_chunks checks the order)
            n_rays = int(ray_indices[-1]) + 1 if ray_indices.numel() > 0 else 0
        chunk_starts, chunk_cnts = module.packed_chunks(ray_indices.contiguous(), int(n_rays))
        rgb, opacity, depth = _Composite.apply(
            sigmas, rgbs, t_starts, t_ends, chunk_starts, chunk_cnts, float(eps), module
        )
    return apply_background(rgb, opacity, background), opacity, depth
