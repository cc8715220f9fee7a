"""The viewer's models: every checkpoint found in the run, opened when it is first chosen.

A :class:`Model` is one checkpoint of the run (or a source handed to the viewer directly); :meth:`Model.open`
loads it the first time (through :func:`gen3d.inference.sources.load_checkpoint_source`) and keeps the source or
the reason it cannot be used. LION checkpoints are sampled with the choices and defaults of ``gen3d sample``
(:class:`gen3d.viewer.sampling.CliLionSource`): every sampler of ``--sampler``, ``--steps`` 1000 for ddpm (all
training timesteps) and 50 otherwise, ``--code-temperature`` 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen3d.diffusion import SAMPLERS
from gen3d.errors import InputError
from gen3d.inference.lion import DEFAULT_CODE_TEMPERATURE, DEFAULT_SAMPLER, default_sampling_steps
from gen3d.inference.sources import FieldSource, SampleSource, load_checkpoint_source

__all__ = [
    "DEFAULT_CODE_TEMPERATURE",
    "DEFAULT_SAMPLER",
    "SAMPLERS",
    "Model",
    "default_sampling_steps",
    "default_steps",
    "open_source",
    "takes_code_temperature",
]


def default_steps(source: Any, sampler: str) -> int:
    """Default steps of ``sampler`` for a :class:`SampleSource`: its ``steps_for(sampler)`` when it has one, else
    its ``default_steps``."""
    steps_for = getattr(source, "steps_for", None)
    return int(steps_for(sampler)) if callable(steps_for) else int(source.default_steps)


def takes_code_temperature(source: Any) -> bool:
    """Whether a :class:`SampleSource` takes a ``code_temperature`` (its ``supports_code_temperature`` flag)."""
    return bool(getattr(source, "supports_code_temperature", False))


def open_source(path: Path) -> Any:
    """Open a checkpoint as a source; LION is wrapped to sample as ``gen3d sample`` does.

    Raises:
        InputError: the checkpoint is unreadable, of no known family, or cannot generate (a VAE-stage checkpoint).
    """
    source = load_checkpoint_source(path)
    from gen3d.inference.lion import LionSampleSource

    if isinstance(source, LionSampleSource):
        from gen3d.viewer.sampling import CliLionSource

        source = CliLionSource(source.loaded, source.num_points)
    return source


@dataclass
class Model:
    """One model the viewer can generate from or render.

    Attributes:
        label: name in the panel (the checkpoint's path relative to the run directory).
        path: the checkpoint (None for a source given to the viewer directly).
        source: the opened :class:`SampleSource` or :class:`FieldSource` (None until opened).
        error: why it cannot be opened (None while it is fine or not tried yet).
    """

    label: str
    path: Path | None = None
    source: Any = None
    error: str | None = None

    @property
    def kind(self) -> str:
        """``"points"`` (a point-cloud generator), ``"field"`` (a radiance field), ``"unusable"`` or ``"unopened"``."""
        if isinstance(self.source, FieldSource):
            return "field"
        if isinstance(self.source, SampleSource):
            return "points"
        return "unusable" if self.error is not None else "unopened"

    def describe(self) -> str:
        """One line on what this model is (or why it cannot be used)."""
        return {
            "field": "radiance field: orbit views and marching-cubes meshes",
            "points": "point-cloud generator: samples and interpolations",
            "unusable": f"cannot be used: {self.error}",
            "unopened": "not opened yet (choose it to load it)",
        }[self.kind]

    @property
    def title(self) -> str:
        """The label with the kind once known (for dropdowns)."""
        suffix = {"field": " (field)", "points": " (points)", "unusable": " (unusable)"}.get(self.kind)
        return self.label + (suffix or "")

    def open(self) -> Any:
        """The source, loaded on first use.

        Raises:
            InputError: when the checkpoint cannot be opened as a point-cloud model or a radiance field (the reason
                is kept in :attr:`error`, so a second call fails at once).
        """
        if self.source is not None:
            return self.source
        if self.error is not None or self.path is None:
            raise InputError(self.error or "this model has no source", self.path)
        try:
            source = open_source(self.path)
        except InputError as exc:
            self.error = str(exc.args[0]).removeprefix(f"{self.path}: ")
            raise
        if not isinstance(source, (SampleSource, FieldSource)):
            self.error = "it is neither a point-cloud model nor a radiance field"
            raise InputError(self.error, self.path)
        self.source = source
        return source
