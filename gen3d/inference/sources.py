"""Model sources: what a checkpoint must offer to be sampled and browsed interactively (by the viewer, exports).

The viewer talks to models through two small protocols, so it works with any model that implements them
(and tests can drive it with simple analytic sources):

- :class:`SampleSource` — a generative model of point clouds (e.g. LION, the point flow): new samples from a seed with a
  chosen sampler and step count, and interpolation between two seeds.
- :class:`FieldSource` — a generative radiance field (e.g. GRAF): images from a camera pose and the
  density of the field, for orbit views and marching-cubes meshes.

:func:`load_checkpoint_source` opens a checkpoint and returns the matching adapter. Adapters are
registered per model family with :func:`register_adapter`; a checkpoint no adapter recognises raises
:class:`gen3d.errors.InputError` naming the families that are known.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gen3d.errors import InputError


@runtime_checkable
class SampleSource(Protocol):
    """A generative model of point clouds.

    Attributes:
        samplers: names of the sampling algorithms offered (e.g. ``("ddpm", "ddim")``), first = default.
        default_steps: default number of sampling steps.

    A source may also offer ``steps_for(sampler) -> int`` (default steps per sampler) and set
    ``supports_code_temperature = True`` when ``sample`` and ``interpolate`` take a ``code_temperature`` keyword;
    the viewer then uses them.
    """

    samplers: tuple[str, ...]
    default_steps: int

    def sample(self, seed: int, n: int, sampler: str, steps: int) -> np.ndarray:
        """Draw ``n`` clouds from the noise of ``seed``.

        Returns:
            (N, P, 3) float32 points.
        """
        ...

    def interpolate(
        self, seed_a: int, seed_b: int, alpha: float, sampler: str | None = None, steps: int | None = None
    ) -> np.ndarray:
        """One cloud generated from the noise/latents of ``seed_a`` and ``seed_b`` mixed by ``alpha`` (0 = a).

        Returns:
            (P, 3) float32 points.
        """
        ...


@runtime_checkable
class FieldSource(Protocol):
    """A generative radiance field.

    Attributes:
        aabb: (6,) box (xmin, ymin, zmin, xmax, ymax, zmax) holding the scene, for meshing.
        radius: default camera distance from the origin.
    """

    aabb: tuple[float, float, float, float, float, float]
    radius: float

    def render(self, c2w: np.ndarray, H: int, W: int, seed: int = 0) -> np.ndarray:
        """Render the scene of latent ``seed`` from camera-to-world pose ``c2w`` (4, 4), OpenGL convention.

        Returns:
            (H, W, 3) float image in [0, 1].
        """
        ...

    def density(self, xyz: Any, seed: int = 0) -> Any:
        """Volume density sigma at positions ``xyz`` (M, 3) (a torch tensor), as (M,)."""
        ...


Adapter = Callable[[Path, dict], Any]
_ADAPTERS: dict[str, tuple[Callable[[dict], bool], Adapter]] = {}


def register_adapter(family: str, matches: Callable[[dict], bool], build: Adapter) -> None:
    """Register how to turn a checkpoint of one model family into a source.

    Args:
        family: name of the family (shown in error messages), e.g. ``"lion"``.
        matches: predicate on the loaded checkpoint dict.
        build: ``build(path, checkpoint)`` returning a :class:`SampleSource` or :class:`FieldSource`.
    """
    _ADAPTERS[family] = (matches, build)


def load_checkpoint_source(path: str | os.PathLike) -> Any:
    """Open a checkpoint as a :class:`SampleSource` or :class:`FieldSource`.

    Args:
        path: a ``.ckpt``/``.pt`` file written by gen3d's training.

    Returns:
        The adapter of the first registered family whose predicate accepts the checkpoint.
    """
    from gen3d.inference.checkpoint import read_checkpoint

    _register_builtin_adapters()
    ckpt = read_checkpoint(path, lightning=False)
    for family, (matches, build) in _ADAPTERS.items():
        if matches(ckpt):
            try:
                return build(Path(path), ckpt)
            except InputError:
                raise
            except (KeyError, RuntimeError, ValueError, TypeError) as exc:
                raise InputError(f"could not build a {family} model from this checkpoint ({exc})", path) from exc
    known = ", ".join(sorted(_ADAPTERS)) or "none available in this installation"
    raise InputError(f"no viewer adapter recognises this checkpoint (model families: {known})", path)


def _register_builtin_adapters() -> None:
    """Register the adapters of gen3d's own model families (their modules are imported when a checkpoint opens)."""
    from gen3d.inference import graf, lion
    from gen3d.inference.checkpoint import is_flow_checkpoint, is_graf_checkpoint, is_lion_checkpoint

    if "lion" not in _ADAPTERS:
        register_adapter("lion", is_lion_checkpoint, lion.build_lion_source)
    if "flow" not in _ADAPTERS:
        register_adapter("flow", is_flow_checkpoint, _build_flow_source)
    if "graf" not in _ADAPTERS:
        register_adapter("graf", is_graf_checkpoint, graf.build_graf_source)


def _build_flow_source(path: Path, ckpt: dict) -> Any:
    """The point flow's adapter (:func:`gen3d.inference.flow.build_flow_source`), imported when a checkpoint opens."""
    from gen3d.inference.flow import build_flow_source

    return build_flow_source(path, ckpt)
