"""renderers: the differentiable rendering core (cameras, rays, samplers, volume rendering, ray marching,
point splatting). Pure-PyTorch building blocks plus native ops (C++/OpenMP, CUDA twins) with references.

Conventions (see docs/renderers.md): OpenGL camera frame (looking down -z), pixel centres at ``i + 0.5``,
expected depth ``sum w_i t_mid_i`` (not normalised by opacity), background blended as
``rgb + (1 - opacity) * background``, packed samples sorted by ray. This package never imports ``gen3d``.

``__all__`` below is the one list of public names; the modules it re-exports keep no list of their own.

The import name ``renderers`` is also taken by an unrelated PyPI package; ``renderers.__gen3d__`` (True) tells this
one apart: ``python -c "import renderers; print(renderers.__gen3d__)"``.
"""

from renderers.cameras import (
    angles_to_uv,
    focal_to_fov,
    fov_to_focal,
    intrinsics,
    look_at,
    sample_poses,
    to_sphere,
    uv_to_angles,
)
from renderers.grid import OccupancyGrid
from renderers.ops import DEFAULT_EPS, composite, composite_ref, pack_bits, raymarch, raymarch_ref, unpack_bits
from renderers.points import project_points, render_points
from renderers.rays import PatchRays, get_rays, patch_rays, pixel_rays, sample_patch_grid, sample_patch_rays
from renderers.samplers import (
    aabb_stratified_samples,
    ray_aabb_intersect,
    sample_pdf,
    samples_to_intervals,
    stratified_samples,
)
from renderers.volrend import (
    accumulate_along_rays,
    accumulate_along_rays_packed,
    alphas_from_sigmas,
    apply_background,
    exclusive_segment_cumprod,
    exclusive_segment_cumsum,
    render_weights,
    render_weights_packed,
    volume_render,
    volume_render_packed,
)

__gen3d__ = True  # this is gen3d's rendering core (another PyPI package is also imported as ``renderers``)

__all__ = [
    # cameras
    "fov_to_focal",
    "focal_to_fov",
    "intrinsics",
    "look_at",
    "to_sphere",
    "angles_to_uv",
    "uv_to_angles",
    "sample_poses",
    # rays
    "pixel_rays",
    "get_rays",
    "sample_patch_grid",
    "patch_rays",
    "sample_patch_rays",
    "PatchRays",
    # samplers
    "ray_aabb_intersect",
    "stratified_samples",
    "aabb_stratified_samples",
    "samples_to_intervals",
    "sample_pdf",
    # volume rendering
    "alphas_from_sigmas",
    "exclusive_segment_cumsum",
    "exclusive_segment_cumprod",
    "render_weights",
    "render_weights_packed",
    "accumulate_along_rays",
    "accumulate_along_rays_packed",
    "apply_background",
    "volume_render",
    "volume_render_packed",
    # native ops
    "DEFAULT_EPS",
    "composite",
    "composite_ref",
    "raymarch",
    "raymarch_ref",
    "pack_bits",
    "unpack_bits",
    "OccupancyGrid",
    # points
    "project_points",
    "render_points",
]
