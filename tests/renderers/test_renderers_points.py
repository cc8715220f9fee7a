"""Point splatting: projection to the expected pixel, a per-pixel brute-force reference, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from renderers import get_rays, intrinsics, look_at, render_points


def _camera(dtype=torch.float64):
    c2w = look_at(torch.tensor([[0.5, -2.0, 1.5]], dtype=dtype), torch.tensor([0.0, 0.1, 0.0], dtype=dtype))
    return c2w, intrinsics(14, 18, 50.0, dtype=dtype)


def _brute_force(points, colors, c2w, K, H, W, radius, opacity, background):
    """Per pixel: every splat within 1.5 radius, sorted by depth, composited front to back (float64 loops)."""
    R, t = c2w[:3, :3], c2w[:3, 3]
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    proj = []
    for p in points:
        cam = R.T @ (p - t)
        depth = -float(cam[2])
        proj.append((fx * float(cam[0]) / depth + cx, cy - fy * float(cam[1]) / depth, depth))
    image = torch.zeros(H, W, colors.shape[-1], dtype=torch.float64)
    alpha_img = torch.zeros(H, W, dtype=torch.float64)
    sigma = radius / 2
    for y in range(H):
        for x in range(W):
            frags = []
            for (u, v, depth), c in zip(proj, colors, strict=True):
                d2 = (x + 0.5 - u) ** 2 + (y + 0.5 - v) ** 2
                if depth > 1e-3 and d2 <= (1.5 * radius) ** 2:
                    frags.append((depth, min(opacity * math.exp(-d2 / (2 * sigma**2)), 0.999), c))
            trans = 1.0
            for _, a, c in sorted(frags, key=lambda f: f[0]):
                image[y, x] += trans * a * c.double()
                trans *= 1 - a
            alpha_img[y, x] = 1 - trans
            image[y, x] += trans * background
    return image, alpha_img


def test_single_point_lands_on_its_pixel():
    c2w, K = _camera()
    origins, dirs = get_rays(14, 18, K, c2w)
    for row, col in [(3, 5), (10, 12), (0, 17)]:
        point = origins[0, row, col] + 2.0 * dirs[0, row, col]  # on the ray through the pixel centre
        colour = torch.tensor([[[0.2, 0.7, 0.4]]], dtype=torch.float64)
        image, alpha = render_points(point[None, None], colour, c2w, K, 14, 18, radius=1.0)
        assert divmod(int(alpha[0].argmax()), 18) == (row, col)
        assert float(alpha[0, row, col]) == pytest.approx(0.999)
        torch.testing.assert_close(image[0, row, col], 0.999 * colour[0, 0])
        # The Gaussian footprint: a neighbour one pixel away gets exp(-1 / (2 * 0.5^2)).
        if col + 1 < 18:
            assert float(alpha[0, row, col + 1]) == pytest.approx(math.exp(-2.0), rel=1e-9)


@pytest.mark.parametrize("radius,opacity", [(1.0, 1.0), (2.3, 0.6)])
def test_matches_brute_force(radius, opacity, device):
    gen = torch.Generator().manual_seed(int(radius * 10))
    c2w, K = _camera()
    points = (torch.rand(25, 3, generator=gen, dtype=torch.float64) - 0.5) * 1.2
    points[-1] = c2w[0, :3, 3] + 0.5 * c2w[0, :3, 2]  # behind the camera: dropped
    colors = torch.rand(25, 3, generator=gen, dtype=torch.float64)
    bg = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    to = lambda x: x.to(device)
    image, alpha = render_points(
        to(points[None]), to(colors[None]), to(c2w), to(K), 14, 18, radius=radius, opacity=opacity,
        background=to(bg), chunk_points=7,
    )  # fmt: skip
    assert image.device.type == device.type
    image, alpha = image.cpu(), alpha.cpu()
    ref_image, ref_alpha = _brute_force(points, colors, c2w[0], K, 14, 18, radius, opacity, bg)
    torch.testing.assert_close(image[0], ref_image, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(alpha[0], ref_alpha, atol=1e-12, rtol=1e-10)
    assert alpha.max() > 0.5


def test_chunking_and_batching_do_not_change_the_image():
    gen = torch.Generator().manual_seed(4)
    c2w, K = _camera()
    points = torch.rand(2, 60, 3, generator=gen, dtype=torch.float64) - 0.5
    colors = torch.rand(2, 60, 3, generator=gen, dtype=torch.float64)
    c2w2 = c2w.expand(2, 4, 4)
    full, a_full = render_points(points, colors, c2w2, K, 14, 18, radius=1.7)
    small, a_small = render_points(points, colors, c2w2, K, 14, 18, radius=1.7, chunk_points=3)
    torch.testing.assert_close(full, small, atol=1e-12, rtol=0)
    torch.testing.assert_close(a_full, a_small, atol=1e-12, rtol=0)
    single, _ = render_points(points[1:], colors[1:], c2w, K, 14, 18, radius=1.7)
    torch.testing.assert_close(full[1:], single, atol=1e-12, rtol=0)


def test_a_batch_of_views_renders_each_image_on_its_own():
    """Images of a batch with their own cameras and point counts in view, chunks spanning several images."""
    gen = torch.Generator().manual_seed(5)
    c2w, K = _camera()
    other = look_at(torch.tensor([[-1.5, 1.0, 2.0]], dtype=torch.float64))
    points = torch.rand(3, 40, 3, generator=gen, dtype=torch.float64) - 0.5
    points[1, :25] += 10.0  # most of the second cloud out of view
    colors = torch.rand(3, 40, 2, generator=gen, dtype=torch.float64)
    cams = torch.cat([c2w, other, c2w])
    batch, a_batch = render_points(points, colors, cams, K, 14, 18, radius=1.3, chunk_points=9)
    for i in range(3):
        one, a_one = render_points(points[i : i + 1], colors[i : i + 1], cams[i : i + 1], K, 14, 18, radius=1.3)
        torch.testing.assert_close(batch[i], one[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(a_batch[i], a_one[0], atol=1e-12, rtol=0)


def test_gradients_flow_to_positions_and_colours():
    gen = torch.Generator().manual_seed(2)
    c2w, K = _camera()
    points = ((torch.rand(1, 4, 3, generator=gen, dtype=torch.float64) - 0.5) * 0.5).requires_grad_()
    colors = torch.rand(1, 4, 3, generator=gen, dtype=torch.float64).requires_grad_()

    def fn(p, c):
        image, alpha = render_points(p, c, c2w, K, 14, 18, radius=2.0, opacity=0.8, background=0.5)
        return image, alpha

    assert torch.autograd.gradcheck(fn, (points, colors), eps=1e-6, atol=1e-7)
    image, _ = fn(points, colors)
    image.sum().backward()
    assert points.grad.abs().sum() > 0 and colors.grad.abs().sum() > 0


def test_white_default_and_empty_cloud():
    c2w, K = _camera(torch.float32)
    image, alpha = render_points(torch.zeros(1, 0, 3), None, c2w, K, 5, 6, background=0.25)
    assert image.shape == (1, 5, 6, 3) and torch.all(image == 0.25) and torch.all(alpha == 0)
    image, alpha = render_points(torch.zeros(1, 1, 3), None, c2w, K, 14, 18, radius=1.0)
    # White points: every channel equals the alpha.
    assert alpha.max() > 0.5
    for ch in range(3):
        torch.testing.assert_close(image[..., ch], alpha)
