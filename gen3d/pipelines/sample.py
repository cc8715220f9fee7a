"""Sampling to files: shapes from a LION / PVD / point-flow checkpoint; images, a turntable and a mesh from a GRAF
checkpoint.

LION / PVD (:func:`sample_lion_to_files`): ``<out>/samples.npz`` (key ``points``, ``(N, P, 3)`` in the data's
original frame, and key ``meta``, the sampling record), one PLY per shape (``<out>/ply/sample_<i>.ply``), a PNG grid
(``<out>/samples.png``) and the sampling record with the sampler's configuration (``<out>/sampler.json``). The same
checkpoint, seed and options give the same samples. Point flow (:func:`sample_flow_to_files`): the same files; the
flow samples in one pass, so its record has no sampler configuration.

GRAF (:func:`sample_graf_to_files`): ``images/sample_XX.png`` renders at random training poses (or a given
``u``/``v``; the folder holds the samples only, so ``gen3d evaluate images --fake <out>/images`` takes it as it is),
``grid.png``, ``sampler.json`` (the sampling record), a turntable GIF and a marching-cubes mesh of the first sample.

The sampling record (:func:`sampling_record`) says what made the samples: the checkpoint's path and SHA-256, the
sampling options, the device, the gen3d version and the time. In ``samples.npz`` it is a JSON string under ``meta``
(a 0-d unicode array: ``np.load`` reads it with ``allow_pickle=False``; :func:`read_samples_meta` decodes it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SAMPLES_META_KEY = "meta"


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits (read in 1 MiB blocks)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance() -> dict[str, str]:
    """``{"gen3d_version", "created"}``: the installed gen3d and the current UTC time (ISO 8601, seconds)."""
    from datetime import datetime, timezone

    from gen3d import __version__

    return {"gen3d_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def sampling_record(ckpt: str | os.PathLike, model: str, **fields: Any) -> dict[str, Any]:
    """What made a set of samples: ``{"checkpoint", "checkpoint_sha256", "model", **fields, "gen3d_version",
    "created"}`` (``fields``: the sampling options, e.g. ``sampler``, ``steps``, ``seed``, ``n``, ``device``)."""
    return {"checkpoint": str(ckpt), "checkpoint_sha256": file_sha256(ckpt), "model": model, **fields, **provenance()}


def save_samples(path: str | os.PathLike, points: Any, record: dict[str, Any]) -> Path:
    """Write ``samples.npz`` atomically: ``points`` (N, P, 3) under ``points``, ``record`` as JSON under ``meta``."""
    import json

    import numpy as np

    from gen3d.utils import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:
        np.savez(tmp, points=np.asarray(points, dtype=np.float32), **{SAMPLES_META_KEY: np.asarray(json.dumps(record))})
    return p


def read_samples_meta(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sampling record of a ``samples.npz`` (None for an archive written without one)."""
    import json

    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        if SAMPLES_META_KEY not in data.files:
            return None
        return json.loads(str(data[SAMPLES_META_KEY]))


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
    points, smp, _ = _sample_lion(
        ckpt, n, sampler, steps, seed, points, batch_size, eta, use_ema, progress, code_temperature, device
    )
    return points, smp


def _sample_lion(
    ckpt: str | os.PathLike,
    n: int,
    sampler: str,
    steps: int | None,
    seed: int,
    points: int | None,
    batch_size: int,
    eta: float,
    use_ema: bool,
    progress: bool,
    code_temperature: float,
    device: str | None,
) -> tuple[Any, Any, dict[str, Any]]:
    """:func:`sample_lion`, and the sampling record of the result (:func:`sampling_record`)."""
    import numpy as np
    import torch

    from gen3d.diffusion import step_progress
    from gen3d.errors import InputError
    from gen3d.inference.lion import SAMPLING_STAGES, default_sampling_steps, load_lion
    from gen3d.utils.device import resolve_device

    if n < 1 or batch_size < 1:
        raise InputError(f"--n and --batch-size must be positive, got {n} and {batch_size}")
    device = resolve_device(device)
    loaded = load_lion(ckpt, use_ema=use_ema)
    if loaded.stage not in SAMPLING_STAGES:
        raise InputError("this checkpoint is from the 'vae' stage; sample from the 'prior' stage's checkpoint", ckpt)
    steps = steps if steps is not None else default_sampling_steps(sampler, loaded.net.schedule.num_train_timesteps)
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
    walks = 1 if loaded.stage == "pvd" else 2  # LION: the shape-latent prior, then the latent-point prior
    with step_progress(len(sizes) * walks * len(smp.timesteps), "sampling", disable=None if progress else True):
        for b in sizes:
            x = loaded.net.sample(b, smp, generator=g, num_points=points, code_temperature=code_temperature)
            chunks.append(loaded.denormalize(x.cpu()).numpy().astype(np.float32))
    out = np.concatenate(chunks)
    record = sampling_record(
        ckpt,
        "pvd" if loaded.stage == "pvd" else "lion",
        sampler=sampler,
        steps=steps,
        seed=seed,
        n=n,
        code_temperature=code_temperature,
        eta=eta,
        ema=bool(use_ema and float(loaded.hparams.get("ema_decay", 0.999) or 0.0) > 0),  # as load_lion applies it
        points=int(out.shape[1]),
        batch_size=batch_size,
        device=str(device),
        sampler_config=smp.to_dict(),
    )
    return out, smp, record


def sample_lion_to_files(
    ckpt: str | os.PathLike, out_dir: str | os.PathLike, n: int, ply: bool = True, **kwargs: Any
) -> Path:
    """Sample ``n`` shapes (:func:`sample_lion`, which takes ``kwargs``) and write them to ``out_dir``; the sampling
    record goes into ``samples.npz`` (key ``meta``) and ``sampler.json``."""
    import inspect

    options = inspect.signature(sample_lion).bind(ckpt, n, **kwargs)
    options.apply_defaults()
    points, _, record = _sample_lion(**options.arguments)
    return write_point_samples(out_dir, points, record, ply)


def sample_flow(
    ckpt: str | os.PathLike,
    n: int,
    seed: int = 0,
    points: int | None = None,
    batch_size: int = 32,
    temperature: float = 1.0,
    use_ema: bool = True,
    device: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Generate ``n`` shapes from a point-flow checkpoint; returns ``(points (n, P, 3) float32 numpy, record)``.

    The flow samples in one pass (no sampler or steps) and any number of points from one shape code. Batches draw
    in order from one generator on ``device`` seeded with ``seed``, so the result depends only on the arguments
    and the device type. ``record`` is the sampling record (:func:`sampling_record`).
    """
    import numpy as np
    import torch

    from gen3d.errors import InputError
    from gen3d.inference.flow import load_flow
    from gen3d.utils.device import resolve_device

    if n < 1 or batch_size < 1:
        raise InputError(f"--n and --batch-size must be positive, got {n} and {batch_size}")
    if not temperature > 0:
        raise InputError(f"--code-temperature must be positive, got {temperature}")
    device = resolve_device(device)
    loaded = load_flow(ckpt, use_ema=use_ema)
    num_points = int(points or loaded.net.cfg.num_points)
    loaded.net.to(device)
    g = torch.Generator(device=device).manual_seed(seed)  # the flow draws its noise where it runs
    chunks = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            x = loaded.net.sample(min(batch_size, n - i), num_points, generator=g, temperature=temperature)
            chunks.append(loaded.denormalize(x.cpu()).numpy().astype(np.float32))
    out = np.concatenate(chunks)
    record = sampling_record(
        ckpt,
        "flow",
        sampler="flow",
        steps=None,
        seed=seed,
        n=n,
        temperature=temperature,
        ema=bool(use_ema and float(loaded.hparams.get("ema_decay", 0.999) or 0.0) > 0),  # as load_flow applies it
        points=num_points,
        batch_size=batch_size,
        device=str(device),
    )
    return out, record


def sample_flow_to_files(
    ckpt: str | os.PathLike, out_dir: str | os.PathLike, n: int, ply: bool = True, **kwargs: Any
) -> Path:
    """Sample ``n`` shapes from a point-flow checkpoint (:func:`sample_flow`, which takes ``kwargs``) and write the
    same files as :func:`sample_lion_to_files`."""
    points, record = sample_flow(ckpt, n, **kwargs)
    return write_point_samples(out_dir, points, record, ply)


def write_point_samples(out_dir: str | os.PathLike, points: Any, record: dict[str, Any], ply: bool = True) -> Path:
    """Write generated clouds ``(N, P, 3)``: ``samples.npz`` (with the record under ``meta``), ``ply/`` (one PLY per
    shape, unless ``ply`` is false), ``samples.png`` and ``sampler.json`` (the record)."""
    import json

    from gen3d.data.io import save_points
    from gen3d.export.grid import render_point_grid
    from gen3d.utils import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_samples(out / "samples.npz", points, record)
    if ply:
        width = max(4, len(str(len(points) - 1)))
        for i, cloud in enumerate(points):
            save_points(out / "ply" / f"sample_{i:0{width}d}.ply", cloud)
    render_point_grid(points[:64], out / "samples.png")
    atomic_write_text(out / "sampler.json", json.dumps(record, indent=2) + "\n")
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
        out_dir: output folder: ``images/sample_XX.png``, ``grid.png``, ``sampler.json`` (the sampling record,
            :func:`sampling_record`), ``turntable.gif``, ``sample_00.ply``.
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
    import json

    from gen3d.utils import atomic_write_text

    gen, z, c2w = graf_codes_and_poses(ckpt, n, seed, u, v, device)
    out = Path(out_dir)
    written = write_graf_images(gen, z, c2w, size, out)
    if u is None and v is None:
        poses = {"poses": "random from the training pose distribution", "u": None, "v": None}
    else:  # as graf_codes_and_poses: the one not given at the middle of its training range
        poses = {
            "poses": "fixed",
            "u": float(sum(gen.range_u) / 2 if u is None else u),
            "v": float(sum(gen.range_v) / 2 if v is None else v),
        }
    record = sampling_record(
        ckpt, "graf", seed=seed, n=n, ema=True, image_size=int(size or gen.image_size), **poses, device=str(z.device)
    )
    written["record"] = str(out / "sampler.json")
    atomic_write_text(written["record"], json.dumps(record, indent=2) + "\n")
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
