"""Sampling to files: shapes from a LION / PVD checkpoint, images, a turntable and a mesh from a GRAF checkpoint.

LION / PVD (:func:`sample_lion_to_files`): ``<out>/samples.npz`` (key ``points``, ``(N, P, 3)`` in the data's
original frame), one PLY per shape (``<out>/ply/sample_<i>.ply``), a PNG grid (``<out>/samples.png``) and the
sampler's configuration (``<out>/sampler.json``). The same checkpoint, seed and options give the same samples.

GRAF (:func:`sample_graf_to_files`): ``images/sample_XX.png`` renders at random training poses (or a given
``u``/``v``; the folder holds the samples only, so ``gen3d evaluate images --fake <out>/images`` takes it as it is),
``grid.png``, a turntable GIF and a marching-cubes mesh of the first sample.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def sample_lion(
    ckpt: str,
    n: int,
    sampler: str = "ddpm",
    steps: int | None = None,
    seed: int = 0,
    points: int | None = None,
    batch_size: int = 32,
    eta: float = 0.0,
    use_ema: bool = True,
    progress: bool = True,
    code_temperature: float = 1.0,
    device: str | None = None,
):
    """Generate ``n`` shapes from a checkpoint; returns ``(points (n, P, 3) float32 numpy, sampler)``.

    Batches draw from one CPU generator seeded with ``seed`` in order, so the result depends only on the
    arguments (on another ``device`` too, up to floating-point rounding). ``device=None`` picks CUDA when it
    is available.
    """
    import numpy as np
    import torch

    from gen3d.errors import InputError
    from gen3d.inference.lion import SAMPLING_STAGES, load_lion
    from gen3d.utils import progress as progress_bar
    from gen3d.utils.device import resolve_device

    if n < 1 or batch_size < 1:
        raise InputError(f"--n and --batch-size must be positive, got {n} and {batch_size}")
    device = resolve_device(device)
    loaded = load_lion(ckpt, use_ema=use_ema)
    if loaded.stage not in SAMPLING_STAGES:
        raise InputError("this checkpoint is from the 'vae' stage; sample from the 'prior' stage's checkpoint", ckpt)
    steps = steps if steps is not None else (loaded.net.schedule.num_train_timesteps if sampler == "ddpm" else 50)
    if not 1 <= steps <= loaded.net.schedule.num_train_timesteps:
        raise InputError(f"--steps must be in [1, {loaded.net.schedule.num_train_timesteps}], got {steps}")
    if not code_temperature > 0:
        raise InputError(f"--code-temperature must be positive, got {code_temperature}")
    if code_temperature != 1.0 and loaded.stage == "pvd":
        raise InputError("--code-temperature applies to LION checkpoints: the PVD baseline has no shape code", ckpt)
    kwargs = {"eta": eta} if sampler == "ddim" else {}
    smp = loaded.net.make_sampler(sampler, steps, **kwargs)
    loaded.net.to(device)
    g = torch.Generator().manual_seed(seed)
    chunks = []
    sizes = [min(batch_size, n - i) for i in range(0, n, batch_size)]
    for b in progress_bar(sizes, "sampling", disable=None if progress else True):
        x = loaded.net.sample(b, smp, generator=g, num_points=points, code_temperature=code_temperature)
        chunks.append(loaded.denormalize(x.cpu()).numpy().astype(np.float32))
    return np.concatenate(chunks), smp


def sample_lion_to_files(
    ckpt: str | os.PathLike, out_dir: str | os.PathLike, n: int, ply: bool = True, **kwargs: Any
) -> Path:
    """Sample ``n`` shapes (:func:`sample_lion`, which takes ``kwargs``) and write them to ``out_dir``."""
    import numpy as np

    from gen3d.data.io import save_points
    from gen3d.export.grid import render_point_grid
    from gen3d.utils import atomic_path

    points, smp = sample_lion(ckpt, n, **kwargs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "samples.npz") as tmp:
        np.savez(tmp, points=points)
    if ply:
        width = max(4, len(str(len(points) - 1)))
        for i, cloud in enumerate(points):
            save_points(out / "ply" / f"sample_{i:0{width}d}.ply", cloud)
    render_point_grid(points[:64], out / "samples.png")
    smp.save_config(out / "sampler.json")
    print(f"gen3d sample: {len(points)} shapes of {points.shape[1]} points -> {out}")
    return out


def sample_graf_to_files(
    ckpt: str | os.PathLike,
    out_dir: str | os.PathLike,
    n: int = 8,
    size: int | None = None,
    seed: int = 0,
    u: float | None = None,
    v: float | None = None,
    gif: bool = True,
    mesh: bool = True,
    frames: int = 40,
    fast: bool = True,
    mesh_resolution: int = 128,
    device: str | None = None,
) -> dict[str, Any]:
    """Render samples of a checkpoint at any resolution and pose; a turntable GIF and a mesh of the first.

    Args:
        ckpt: GRAF checkpoint.
        out_dir: output folder: ``images/sample_XX.png``, ``grid.png``, ``turntable.gif``, ``sample_00.ply``.
        n: number of samples.
        size: image side (default the training size).
        seed: seed of the codes (and of the poses when ``u``/``v`` are not given).
        u: azimuth fraction of the camera (default random from the training distribution).
        v: GRAF's polar ``v`` of the camera (default random).
        gif: write a turntable of sample 0.
        mesh: extract a mesh of sample 0 (marching cubes on the density).
        frames: turntable frames.
        fast: render the turntable through an occupancy grid (when the background allows it).
        mesh_resolution: marching-cubes grid points per axis.
        device: where to render (``None``: CUDA when available); codes and poses are drawn on the CPU, so a
            seed gives the same samples on any device up to floating-point rounding.

    Returns:
        Paths written.
    """
    gen, z, c2w = graf_codes_and_poses(ckpt, n, seed, u, v, device)
    out = Path(out_dir)
    written = write_graf_images(gen, z, c2w, size, out)
    if gif:
        written["gif"] = write_graf_turntable(gen, z[0], frames, size, fast, out / "turntable.gif")
    if mesh:
        written["mesh"], written["mesh_level"] = write_graf_mesh(gen, z[0], mesh_resolution, out / "sample_00.ply")
    return written


def graf_codes_and_poses(
    ckpt: str | os.PathLike, n: int, seed: int = 0, u: float | None = None, v: float | None = None, device: Any = None
) -> tuple[Any, Any, Any]:
    """The generator of a GRAF checkpoint on ``device`` (``None``: CUDA when available), ``n`` codes and camera
    poses drawn on the CPU from ``seed`` (the poses at a fixed ``u``/``v`` when either is given, the other at the
    middle of its training range); returns ``(generator, z (n, Z), c2w (n, 4, 4))`` on that device."""
    import torch

    from gen3d.errors import InputError
    from gen3d.inference.graf import load_graf_generator
    from gen3d.utils.device import resolve_device

    if n < 1:
        raise InputError(f"n must be positive, got {n}")
    device = resolve_device(device)
    gen, _ = load_graf_generator(ckpt, device=device)
    rng = torch.Generator().manual_seed(seed)
    z = gen.field.sample_z(n, generator=rng)
    if u is None and v is None:
        c2w = gen.sample_poses(n, generator=rng)
    else:
        u0 = sum(gen.range_u) / 2 if u is None else u
        v0 = sum(gen.range_v) / 2 if v is None else v
        c2w = gen.pose_at(torch.full((n,), float(u0)), torch.full((n,), float(v0)))
    return gen, z.to(device), c2w.to(device)


def write_graf_images(gen: Any, z: Any, c2w: Any, size: int | None, out: Path) -> dict[str, Any]:
    """Render ``z`` at ``c2w`` (8 at a time) into ``out/images/sample_XX.png`` and ``out/grid.png``; returns
    ``{"images": [paths], "grid": path}``."""
    import torch

    from gen3d.export.images import image_grid, save_png, to_uint8

    with torch.no_grad():
        rgb = torch.cat([gen.render(z[i : i + 8], c2w[i : i + 8], size)["rgb"] for i in range(0, len(z), 8)])
    images = [
        str(save_png(out / "images" / f"sample_{i:02d}.png", img)) for i, img in enumerate(to_uint8(rgb, (-1.0, 1.0)))
    ]
    return {"images": images, "grid": str(save_png(out / "grid.png", image_grid(rgb)))}


def write_graf_turntable(gen: Any, z: Any, frames: int, size: int | None, fast: bool, path: Path) -> str:
    """A turntable GIF of one code ``z`` (Z,) (through an occupancy grid when ``fast`` and the background allow)."""
    from gen3d.export.field import render_turntable, save_gif

    frames_u8 = render_turntable(gen, z, frames, size, fast=fast and gen.background != "last")
    return str(save_gif(frames_u8, path))


def write_graf_mesh(gen: Any, z: Any, resolution: int, path: Path) -> tuple[str, float]:
    """A marching-cubes mesh of one code's density inside the cameras' near sphere; returns ``(path, iso level)``."""
    from gen3d.export.field import extract_mesh, save_mesh

    m = extract_mesh(gen.field, z, resolution, gen.scene_bound)
    return str(save_mesh(m, path)), m.metadata["level"]
