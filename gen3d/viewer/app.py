"""The viewer app: a viser server showing a run's point clouds and meshes, with a grouped sample browser and its models.

``build_viewer(path)`` opens a run directory, a samples/mesh file or a checkpoint and returns a
:class:`ViewerApp`; ``start()`` serves it (127.0.0.1 by default), ``stop()`` shuts the server down and
frees the port, ``run()`` serves until Ctrl-C. The app's actions (choose a group, select a sample, choose a model,
save, generate, interpolate, render a view, mesh a field) are plain methods, called by the GUI callbacks and usable
without a browser.

The browser lists what was found by group (:data:`gen3d.viewer.content.GROUPS`): sample files, training data,
meshes, shapes made in this session, and the run's checkpoints. Every checkpoint is a model the panel can use;
one is opened at start and the others when they are chosen.

The viewer reads only what :func:`gen3d.viewer.content.open_input` found inside the run directory and
writes only below ``<run_dir>/viewer/``: file names are plain names (no folders), and a save never replaces
a file (a taken name gets a number: ``name_1.ply``). It talks only to its own page: connections whose
``Origin`` is another site are refused (see :mod:`gen3d.viewer.origins`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gen3d.errors import Gen3DError, InputError
from gen3d.inference.sources import FieldSource, SampleSource
from gen3d.viewer.content import CHECKPOINTS, DATA, DATA_PER_SPLIT, GROUPS, SESSION, Item, ViewerInput, open_input
from gen3d.viewer.models import (
    DEFAULT_CODE_TEMPERATURE,
    SAMPLERS,
    Model,
    default_steps,
    takes_code_temperature,
)
from gen3d.viewer.origins import check_origin, origin_allowed
from gen3d.viewer.paths import resolve_inside, safe_file_name, write_new_file
from gen3d.viewer.server import install_origin_guard, is_loopback, probe_host

OUTPUT_FOLDER = "viewer"
MESH_COLOR = (120, 170, 230)
FIELD_LEVEL = 10.0  # gen3d export mesh --threshold: density iso-level of field meshes
FIELD_MESH_RESOLUTION = 64  # marching-cubes grid points per axis in the panel (gen3d export mesh uses 128)
POINT_SIZE_RANGE = (0.001, 0.05)  # the point-size slider's range
RENDER_DEFAULTS = {"azimuth": 0.0, "elevation": 20.0, "resolution": 64, "seed": 0}  # the orbit view shown on open


def _idle(seconds: float) -> None:
    """Wait while serving (a function of its own so tests can interrupt it)."""
    time.sleep(seconds)


class ViewerApp:
    """An interactive viewer of samples, meshes and models.

    Args:
        content: what to show (see :func:`gen3d.viewer.content.open_input`).
        host: interface to bind; 127.0.0.1 keeps the viewer local.
        port: port to serve on (0 picks a free one; a busy port moves to the next free one).
        sample_source: a model to draw new point-cloud samples from.
        field_source: a radiance field to render orbit views of and mesh.
        allowed_origins: web origins (``http://HOST:PORT``) allowed to connect besides the viewer's own page.

    The checkpoints of ``content`` are listed as models (:attr:`models`, opened by :meth:`select_model`); a source
    given directly is listed too, and is the current model.

    Raises:
        InputError: when an entry of ``allowed_origins`` is not an http(s) origin.
    """

    def __init__(
        self,
        content: ViewerInput,
        host: str = "127.0.0.1",
        port: int = 8080,
        sample_source: SampleSource | None = None,
        field_source: FieldSource | None = None,
        allowed_origins: Sequence[str] = (),
    ):
        self.content = content
        self.run_dir = content.run_dir
        self.host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1] -> ::1
        self.requested_port = int(port)
        self.sample_source = sample_source
        self.field_source = field_source
        self.allowed_origins = tuple(check_origin(o) for o in allowed_origins)
        self.addresses: list[str] = []
        self.file_items: list[Item] = list(content.items)
        self.generated: list[Item] = []
        self.interpolated: Item | None = None
        self.field_mesh: Item | None = None
        self.models: list[Model] = [Model(self._relative(c), path=c) for c in reversed(content.checkpoints)]
        self.model_index: int | None = None
        for given, label in ((field_source, "radiance field"), (sample_source, "point-cloud model")):
            if given is not None:
                self.models.append(Model(label, source=given))
                self.model_index = len(self.models) - 1
        self.index = 0
        self.group = self.file_items[0].group if self.file_items else (CHECKPOINTS if self.models else SESSION)
        self.point_size = 0.01
        self.last_render: np.ndarray | None = None
        self.server: Any = None
        self._gui: dict[str, Any] = {}
        self._scene_node: Any = None
        self._lock = threading.RLock()
        self._syncing = False

    # ------------------------------------------------------------------ state

    @property
    def session_items(self) -> list[Item]:
        """Shapes made in the viewer: the last generated batch, the interpolation, the field mesh."""
        made = [self.interpolated, self.field_mesh]
        return self.generated + [item for item in made if item is not None]

    @property
    def items(self) -> list[Item]:
        """Everything browsable, group after group: the files' shapes, then the shapes made in the viewer."""
        return self.file_items + self.session_items

    @property
    def current(self) -> Item | None:
        items = self.items
        return items[self.index] if items else None

    @property
    def model(self) -> Model | None:
        """The model in use (None when there is none)."""
        return None if self.model_index is None else self.models[self.model_index]

    @property
    def output_dir(self) -> Path:
        return self.run_dir / OUTPUT_FOLDER

    @property
    def port(self) -> int:
        """The port actually bound (after :meth:`start`), else the one requested."""
        return int(self.server.get_port()) if self.server is not None else self.requested_port

    @property
    def url(self) -> str:
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.run_dir).as_posix()
        except ValueError:
            return path.name

    def groups(self) -> dict[str, int]:
        """The browser's groups that hold something, in order, with their entry counts."""
        counts = {group: 0 for group in GROUPS}
        for item in self.items:
            counts[item.group] += 1
        counts[CHECKPOINTS] = len(self.models)
        return {group: n for group, n in counts.items() if n}

    def group_title(self, group: str) -> str:
        """A group's name in the dropdown, with its count (training data: clouds listed of clouds there)."""
        n = self.groups().get(group, 0)
        total = sum(t for _, t in self.content.data.values())
        if group == DATA and total > n:
            return f"{group} ({n} of {total})"
        return f"{group} ({n})"

    def entries(self, group: str) -> list[str]:
        """The names listed in a group: its shapes, or for :data:`CHECKPOINTS` the models."""
        if group == CHECKPOINTS:
            return [model.title for model in self.models]
        return [item.label for item in self.items if item.group == group]

    def _group_start(self, group: str) -> int:
        return next((i for i, item in enumerate(self.items) if item.group == group), 0)

    def _position(self) -> int:
        """Position of the current entry within :attr:`group`."""
        if self.group == CHECKPOINTS:
            return self.model_index or 0
        current = self.current
        if current is None or current.group != self.group:
            return 0
        return self.index - self._group_start(self.group)

    # ---------------------------------------------------------------- actions

    def select(self, index: int) -> Item:
        """Show sample ``index`` of :attr:`items`.

        Args:
            index: position in :attr:`items` (negative counts from the end).

        Returns:
            The selected item.
        """
        with self._lock:
            items = self.items
            if not items:
                raise InputError("there are no samples to show")
            if not -len(items) <= index < len(items):
                raise InputError(f"sample index {index} is out of range (0..{len(items) - 1})")
            self.index = index % len(items)
            self.group = items[self.index].group
            self._show(items[self.index])
            self._sync_browser()
            return items[self.index]

    def _select_item(self, item: Item) -> Item:
        return self.select(next(i for i, it in enumerate(self.items) if it is item))

    def select_group(self, group: str) -> None:
        """Show a group in the browser: its first shape (or, for :data:`CHECKPOINTS`, the list of models).

        Raises:
            InputError: for a group that is unknown or empty.
        """
        with self._lock:
            if group not in self.groups():
                known = ", ".join(self.groups()) or "none"
                raise InputError(f"no group {group!r} with entries in this viewer (groups: {known})")
            if group == CHECKPOINTS:
                self.group = group
                self._show_model_info()
                self._sync_browser()
            else:
                self.select(self._group_start(group))

    def select_in_group(self, position: int) -> None:
        """Choose entry ``position`` of the browser's current group (a shape, or a model of :data:`CHECKPOINTS`)."""
        with self._lock:
            n = len(self.entries(self.group))
            if not 0 <= position < n:
                raise InputError(f"entry {position} is out of range (0..{n - 1}) in group {self.group!r}")
            if self.group == CHECKPOINTS:
                self.select_model(position)
            else:
                self.select(self._group_start(self.group) + position)

    def select_model(self, which: int | str) -> Model:
        """Make a model current, opening its checkpoint the first time; a radiance field shows an orbit view.

        Args:
            which: position in :attr:`models`, or a model's label (its path relative to the run directory).

        Returns:
            The model.

        Raises:
            InputError: for an unknown model, or a checkpoint that cannot be used (the current model stays).
        """
        with self._lock:
            index = self._model_position(which)
            model = self.models[index]
            try:
                source = model.open()
            except InputError:
                self._sync_browser()  # the model's title now says it is unusable; the current model stays
                raise
            self.model_index = index
            if isinstance(source, FieldSource):
                self.field_source, self.sample_source = source, None
            else:
                self.sample_source, self.field_source = source, None
            self._sync_model_gui()
            self._sync_browser()
            if self.group == CHECKPOINTS:
                self._show_model_info()
        if self.field_source is not None and self.server is not None:
            self._render_default_view()
        return model

    def _model_position(self, which: int | str) -> int:
        if isinstance(which, str):
            for i, model in enumerate(self.models):
                if which in (model.label, model.title, str(model.path)):
                    return i
            raise InputError(f"no model {which!r}; models: {', '.join(m.label for m in self.models) or 'none'}")
        if not 0 <= which < len(self.models):
            raise InputError(f"model {which} is out of range (0..{len(self.models) - 1})")
        return int(which)

    def open_default_model(self) -> Model | None:
        """Open the preferred model that works: checkpoints named ``last.ckpt`` first, then the newest.

        Checkpoints that cannot be used are noted in ``content.skipped``.

        Returns:
            The model opened, or None when none works (or there is none).

        Raises:
            InputError: when no checkpoint works and the path holds nothing else to show (the preferred one's error).
        """
        errors: list[InputError] = []
        for i, model in enumerate(self.models):
            if model.path is None:
                continue
            try:
                return self.select_model(i)
            except InputError as exc:
                errors.append(exc)
                self.content.skipped.append(str(exc))
        if errors and not self.items:
            raise errors[0]
        return None

    def output_path(self, name: str, suffix: str) -> Path:
        """Where a file called ``name`` is preferably saved: ``<run_dir>/viewer/<name><suffix>``.

        Args:
            name: a plain file name (see :func:`gen3d.viewer.paths.safe_file_name`).
            suffix: the extension, with its dot.

        Raises:
            InputError: when ``name`` is not a plain name, or the viewer folder leads out of the run directory.
        """
        return resolve_inside(self.run_dir, self.output_dir / safe_file_name(name, suffix))

    def _save_new(self, name: str, suffix: str, write: Callable[[Path], object]) -> Path:
        """Write a new file named after ``name`` into the viewer folder, numbering it when the name is taken."""
        return write_new_file(self.output_path(name, suffix), write)

    def save_current(self, fmt: str, name: str | None = None, poisson_depth: int = 7) -> Path:
        """Save the current sample into the run directory.

        Args:
            fmt: ``"ply"`` (the points, or the mesh) or ``"obj"`` (the mesh; a point cloud is meshed
                with Poisson reconstruction first).
            name: plain file name, suffix optional (default ``sample_<index>``). An existing file is never
                replaced: the copy is numbered (``name_1.ply``, ``name_2.ply``, ...).
            poisson_depth: octree depth of the reconstruction of point clouds saved as OBJ.

        Returns:
            The written file.

        Raises:
            InputError: for an unknown format, no sample, or a name that is not a plain file name.
        """
        from gen3d.data.io import save_points
        from gen3d.export.mesh import poisson_mesh, save_mesh

        fmt = fmt.lower().lstrip(".")
        if fmt not in ("ply", "obj"):
            raise InputError(f"unsupported format {fmt!r}; the viewer saves 'ply' or 'obj'")
        with self._lock:
            item = self.current
            index = self.index
        if item is None:
            raise InputError("there is no sample to save")
        name = name or f"sample_{index:03d}"
        if item.mesh is not None:
            return self._save_new(name, "." + fmt, lambda dest: save_mesh(item.mesh, dest))
        if fmt == "ply":
            return self._save_new(name, ".ply", lambda dest: save_points(dest, item.points))
        self.output_path(name, ".obj")  # refuse a bad name before the reconstruction
        mesh = poisson_mesh(item.points, depth=poisson_depth)
        return self._save_new(name, ".obj", lambda dest: save_mesh(mesh, dest))

    def generate(
        self,
        seed: int,
        n: int = 4,
        sampler: str | None = None,
        steps: int | None = None,
        code_temperature: float | None = None,
    ) -> list[Item]:
        """Draw new samples from the model and show the first.

        Args:
            seed: noise seed.
            n: number of samples.
            sampler: one of ``sample_source.samplers`` (default: the first).
            steps: sampling steps (default: the sampler's default, ``gen3d sample``'s for LION).
            code_temperature: factor on the sampled shape codes (LION; default 1).

        Returns:
            The new items (they replace earlier generated ones in the browser's :data:`SESSION` group).
        """
        from gen3d.data.io import check_points

        src = self._need_sample_source()
        sampler = sampler or src.samplers[0]
        if sampler not in src.samplers:
            raise InputError(f"unknown sampler {sampler!r}; expected one of {', '.join(src.samplers)}")
        steps = int(steps or default_steps(src, sampler))
        if n < 1 or steps < 1:
            raise InputError(f"need at least one sample and one step, got n={n}, steps={steps}")
        extra, note = self._temperature(src, code_temperature)
        clouds = check_points(src.sample(int(seed), int(n), sampler, steps, **extra), "generated samples", ndim=(3,))
        with self._lock:
            first_shapes = not self.items
            self.generated = [
                Item(f"seed {seed} #{i} ({sampler}, {steps} steps{note})", points=c, group=SESSION)
                for i, c in enumerate(clouds)
            ]
            self._select_item(self.generated[0])
            self._frame_first_shapes(first_shapes)
            return list(self.generated)

    @staticmethod
    def _temperature(src: Any, code_temperature: float | None) -> tuple[dict[str, float], str]:
        """The keyword to pass a source for ``code_temperature``, and the note for labels."""
        if code_temperature is None or (
            code_temperature == DEFAULT_CODE_TEMPERATURE and not takes_code_temperature(src)
        ):
            return {}, ""
        if not takes_code_temperature(src):
            raise InputError("this model takes no code temperature (it has no shape code)")
        if not code_temperature > 0:
            raise InputError(f"the code temperature must be positive, got {code_temperature}")
        note = "" if code_temperature == DEFAULT_CODE_TEMPERATURE else f", temperature {code_temperature:g}"
        return {"code_temperature": float(code_temperature)}, note

    def interpolate(
        self,
        seed_a: int,
        seed_b: int,
        alpha: float,
        sampler: str | None = None,
        steps: int | None = None,
        code_temperature: float | None = None,
    ) -> Item:
        """Show the sample interpolated between two seeds.

        Args:
            seed_a: seed at alpha = 0.
            seed_b: seed at alpha = 1.
            alpha: mixing weight in [0, 1].
            sampler: sampler name (default: the model's first).
            steps: sampling steps (default: the sampler's default).
            code_temperature: factor on the sampled shape codes (LION; default 1).

        Returns:
            The interpolated item (it replaces the previous interpolation in the browser).
        """
        from gen3d.data.io import check_points

        src = self._need_sample_source()
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha must lie in [0, 1], got {alpha}")
        extra, _ = self._temperature(src, code_temperature)
        if sampler is not None and steps is None:
            steps = default_steps(src, sampler)
        cloud = src.interpolate(int(seed_a), int(seed_b), float(alpha), sampler=sampler, steps=steps, **extra)
        cloud = check_points(cloud, "interpolated sample", ndim=(2,))
        with self._lock:
            first_shapes = not self.items
            self.interpolated = Item(
                f"interpolation {seed_a} -> {seed_b}, alpha {alpha:.2f}", points=cloud, group=SESSION
            )
            self._select_item(self.interpolated)
            self._frame_first_shapes(first_shapes)
            return self.interpolated

    def render_view(
        self,
        azimuth_deg: float,
        elevation_deg: float,
        resolution: int = 128,
        seed: int = 0,
        radius: float | None = None,
    ) -> np.ndarray:
        """Render the radiance field from a camera on its orbit and show the image in the panel.

        Args:
            azimuth_deg: camera azimuth around the y axis.
            elevation_deg: camera elevation.
            resolution: image height and width.
            seed: latent seed of the scene.
            radius: camera distance (default: the source's).

        Returns:
            (resolution, resolution, 3) uint8 image.
        """
        from gen3d.export.images import to_uint8
        from gen3d.export.raster import orbit_poses

        src = self._need_field_source()
        if not 8 <= resolution <= 1024:
            raise InputError(f"resolution must be between 8 and 1024 pixels, got {resolution}")
        c2w = orbit_poses(1, radius or src.radius, elevation_deg, start_deg=azimuth_deg)[0]
        image = src.render(c2w, int(resolution), int(resolution), seed=int(seed))
        image = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
        image = to_uint8(image)
        with self._lock:
            self.last_render = image
            if "render_image" in self._gui:
                self._gui["render_image"].image = image
        return image

    def mesh_field(
        self, seed: int = 0, resolution: int = FIELD_MESH_RESOLUTION, threshold: float | None = None
    ) -> Item:
        """Extract the surface of the radiance field by marching cubes and show it (as ``gen3d export mesh`` does).

        The density of scene ``seed`` is sampled on a ``resolution^3`` lattice over the field's box and meshed at
        the level ``threshold``; surfaces cut by the box are capped, so the mesh is closed. Save it with the
        **Save** panel.

        Args:
            seed: latent seed of the scene.
            resolution: lattice points per axis (2..512).
            threshold: density iso-level; None picks 10 (``gen3d export mesh``'s default) when the density
                reaches it, else the middle of the density's range on the grid (as the demo meshes its field).

        Returns:
            The mesh item (it replaces the previous field mesh in the browser's :data:`SESSION` group).

        Raises:
            InputError: no radiance field is loaded, a bad resolution, or a level the density never crosses
                (the message gives the density's range to pick from).
        """
        from gen3d.export.mesh import evaluate_grid, marching_cubes_grid

        src = self._need_field_source()
        if not 2 <= resolution <= 512:
            raise InputError(f"the mesh resolution must be between 2 and 512, got {resolution}")
        grid = evaluate_grid(lambda xyz: src.density(xyz, seed=int(seed)), src.aabb, int(resolution))
        finite = grid[np.isfinite(grid)]
        if not finite.size:
            raise InputError(f"the density of scene {seed} is NaN or infinite everywhere on the grid; no surface")
        lo, hi = float(finite.min()), float(finite.max())
        if threshold is None:
            threshold = FIELD_LEVEL if lo < FIELD_LEVEL < hi else 0.5 * (lo + hi)
        if not lo < threshold < hi:
            raise InputError(
                f"the density of scene {seed} ranges over [{lo:.4g}, {hi:.4g}] on the grid, so the threshold "
                f"{threshold:g} gives no surface; pick a threshold inside that range"
            )
        mesh = marching_cubes_grid(grid, src.aabb, float(threshold))
        label = f"field mesh, seed {seed} (level {threshold:g}, {resolution}^3)"
        with self._lock:
            first_shapes = not self.items
            self.field_mesh = Item(label, mesh=mesh, group=SESSION)
            item = self._select_item(self.field_mesh)
            self._frame_first_shapes(first_shapes)
            return item

    def save_turntable(self, name: str = "turntable", frames: int = 24, resolution: int = 96, seed: int = 0) -> Path:
        """Render an orbit of the radiance field and save it as a GIF in the viewer folder.

        Args:
            name: plain file name; a taken name gets a number (``turntable_1.gif``).
            frames: views on the orbit.
            resolution: image height and width.
            seed: latent seed of the scene.

        Returns:
            The written file.
        """
        from gen3d.export.turntable import turntable_field, write_animation

        src = self._need_field_source()
        self.output_path(name, ".gif")  # refuse a bad name before rendering
        images = turntable_field(
            lambda c2w, h, w: src.render(c2w, h, w, seed=seed), n_frames=frames, size=resolution, radius=src.radius
        )
        return self._save_new(name, ".gif", lambda dest: write_animation(images, dest))

    def _need_sample_source(self) -> SampleSource:
        if self.sample_source is None:
            raise InputError("no point-cloud model is loaded; choose a point-cloud checkpoint to generate samples")
        return self.sample_source

    def _need_field_source(self) -> FieldSource:
        if self.field_source is None:
            raise InputError("no radiance field is loaded; choose a field checkpoint to render views")
        return self.field_source

    # ------------------------------------------------------------- rendering

    def _show(self, item: Item) -> None:
        if self.server is None:
            return
        from gen3d.export.raster import height_colors

        scene = self.server.scene
        if self._scene_node is not None:
            self._scene_node.remove()
        if item.mesh is not None:
            self._scene_node = scene.add_mesh_simple(
                "/sample",
                vertices=np.asarray(item.mesh.vertices, dtype=np.float32),
                faces=np.asarray(item.mesh.faces, dtype=np.uint32),
                color=MESH_COLOR,
                side="double",
            )
        else:
            pts = np.asarray(item.points, dtype=np.float32)
            self._scene_node = scene.add_point_cloud(
                "/sample",
                points=pts,
                colors=height_colors(pts),
                point_size=self.point_size,
                point_shape="circle",
            )
        if "info" in self._gui:
            self._gui["info"].content = self._describe(item)

    def _describe(self, item: Item) -> str:
        """The info lines of a shape: its size, its file, and for training data how much of its folder is listed."""
        if item.mesh is not None:
            lines = [f"mesh: {len(item.mesh.vertices)} vertices, {len(item.mesh.faces)} faces"]
        else:
            lines = [f"point cloud: {len(item.points)} points"]
        if item.source is not None:
            lines.append(f"file: `{self._relative(item.source)}`")
            if item.group == DATA:
                folder = item.source.parent.relative_to(self.content.path).as_posix()
                shown, total = self.content.data.get(folder, (0, 0))
                lines.append(f"`{folder}`: the first {shown} of its {total} clouds are listed")
        return "  \n".join(lines)

    def _show_model_info(self) -> None:
        if "info" in self._gui:
            model = self.model if self.group != CHECKPOINTS else self.models[self._position()]
            self._gui["info"].content = (
                "" if model is None else f"checkpoint `{model.label}`: {model.describe()}  \nuse it in the panels below"
            )

    def _sync_browser(self) -> None:
        """Bring the group dropdown, the entry dropdown and the slider in line with :attr:`group` and :attr:`index`."""
        gui = self._gui
        if "dropdown" not in gui:
            return
        groups = list(self.groups())
        if self.group not in groups and groups:
            self.group = groups[0]
        titles = [self.group_title(g) for g in groups] or ["(empty)"]
        entries = [f"{i:03d}  {name}" for i, name in enumerate(self.entries(self.group))] or ["(no samples)"]
        position = min(self._position(), len(entries) - 1)
        self._syncing = True
        try:
            if tuple(gui["group"].options) != tuple(titles):
                gui["group"].options = titles
            gui["group"].value = titles[groups.index(self.group)] if groups else titles[0]
            if tuple(gui["dropdown"].options) != tuple(entries):
                gui["dropdown"].options = entries
            gui["slider"].max = max(len(entries) - 1, 1)
            gui["slider"].disabled = len(entries) < 2
            gui["dropdown"].value = entries[position]
            gui["slider"].value = position
            if "model" in gui and self.models:
                titles = [m.title for m in self.models]
                if tuple(gui["model"].options) != tuple(titles):
                    gui["model"].options = titles
                gui["model"].value = titles[self.model_index or 0]
        finally:
            self._syncing = False

    def _sync_model_gui(self) -> None:
        """Show the panels of the current model (Generate/Interpolate or Render/Mesh) with its options."""
        gui, src = self._gui, self.sample_source
        if "model_info" not in gui:
            return
        model = self.model
        gui["model_info"].content = "" if model is None else model.describe()
        gui["generate_folder"].visible = gui["interpolate_folder"].visible = src is not None
        gui["render_folder"].visible = self.field_source is not None
        if src is None:
            return
        self._syncing = True
        try:
            samplers = tuple(src.samplers)
            if tuple(gui["sampler"].options) != samplers:
                gui["sampler"].options = samplers
            gui["sampler"].value = samplers[0]
            gui["steps"].value = default_steps(src, samplers[0])
            gui["temperature"].value = DEFAULT_CODE_TEMPERATURE
            gui["temperature"].visible = takes_code_temperature(src)
        finally:
            self._syncing = False

    def _frame_first_shapes(self, first_shapes: bool) -> None:
        """Frame the camera on the shape just shown when it is the first (the viewer opened a checkpoint alone)."""
        if first_shapes and self.server is not None:
            self._fit_camera()
            if "point_size" in self._gui:
                self._gui["point_size"].value = round(self.point_size, 3)

    def _fit_camera(self) -> None:
        """Point the camera at the current shape (a three-quarter view) and size the points to it."""
        item = self.current
        if item is None:
            return
        pts = item.vertices()
        lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)  # a few stray points do not count
        center = 0.5 * (lo + hi)
        extent = float(np.linalg.norm(hi - lo)) or 1.0
        self.point_size = min(max(0.004 * extent, POINT_SIZE_RANGE[0]), POINT_SIZE_RANGE[1])
        cam = self.server.initial_camera
        cam.look_at = tuple(center)
        direction = np.array([0.9, 0.6, 1.2]) / np.linalg.norm([0.9, 0.6, 1.2])  # a three-quarter view from above
        cam.position = tuple(center + 1.0 * extent * direction)
        cam.up = (0.0, 1.0, 0.0)

    def _render_default_view(self) -> None:
        """The orbit view shown when a radiance field opens (the Render panel's settings); errors go to the panel."""
        g = self._gui
        args = (
            (
                float(g["azimuth"].value),
                float(g["elevation"].value),
                int(g["resolution"].value),
                int(g["render_seed"].value),
            )
            if "azimuth" in g
            else tuple(RENDER_DEFAULTS[k] for k in ("azimuth", "elevation", "resolution", "seed"))
        )
        try:
            self.render_view(*args)
            self._report("Rendered an orbit view of the field; **Mesh** shows its surface in 3D")
        except Gen3DError as exc:
            self._report(f"**Error:** {exc}")

    # ------------------------------------------------------------------ GUI

    def _report(self, text: str) -> None:
        if "status" in self._gui:
            self._gui["status"].content = text

    def _guarded(self, action: Any) -> Any:
        """Wrap a GUI callback: gen3d errors are shown in the panel instead of killing the callback."""

        def callback(_event: Any) -> None:
            try:
                action()
            except Gen3DError as exc:
                self._report(f"**Error:** {exc}")

        return callback

    def _on_change(self, handle: Any, action: Callable[[], object]) -> None:
        """Run ``action`` (guarded) when the user changes ``handle``; changes made by the viewer itself are ignored.
        After a refused change the browser is brought back in line."""

        def callback(_event: Any) -> None:
            if self._syncing:
                return
            try:
                action()
            except Gen3DError as exc:
                self._report(f"**Error:** {exc}")
                self._sync_browser()

        handle.on_update(callback)

    def _build_gui(self) -> None:
        gui = self.server.gui
        g = self._gui
        title = self.content.path.name or str(self.content.path)
        header = f"**gen3d viewer** — `{title}`"
        copies = len(self.content.copies)
        if copies:
            what = "copy of a listed shape is" if copies == 1 else "copies of listed shapes are"
            header += f"  \n{copies} stored {what} not listed again"
        gui.add_markdown(header)

        with gui.add_folder("Samples"):
            g["group"] = gui.add_dropdown("Group", ["(empty)"])
            g["dropdown"] = gui.add_dropdown("Sample", ["(no samples)"])
            g["slider"] = gui.add_slider("Index", min=0, max=1, step=1, initial_value=0, disabled=True)
            g["info"] = gui.add_markdown("")
            g["point_size"] = gui.add_slider(
                "Point size", *POINT_SIZE_RANGE, step=0.001, initial_value=round(self.point_size, 3)
            )
        self._sync_browser()

        def pick_group() -> None:
            titles = [self.group_title(group) for group in self.groups()]
            self.select_group(list(self.groups())[titles.index(g["group"].value)])

        self._on_change(g["group"], pick_group)
        self._on_change(
            g["dropdown"], lambda: self.select_in_group(list(g["dropdown"].options).index(g["dropdown"].value))
        )
        self._on_change(g["slider"], lambda: self.select_in_group(int(g["slider"].value)))

        @g["point_size"].on_update
        def _(_event: Any) -> None:
            self.point_size = float(g["point_size"].value)
            if self._scene_node is not None and self.current is not None and self.current.mesh is None:
                self._scene_node.point_size = self.point_size

        if self.models:
            with gui.add_folder("Model"):
                titles = [m.title for m in self.models]
                g["model"] = gui.add_dropdown("Checkpoint", titles, initial_value=titles[self.model_index or 0])
                g["model_info"] = gui.add_markdown("")
            self._on_change(
                g["model"], lambda: self.select_model([m.title for m in self.models].index(g["model"].value))
            )
            self._build_generate_gui()
            self._build_render_gui()
            self._sync_model_gui()

        with gui.add_folder("Save"):
            g["name"] = gui.add_text("File name", "sample")
            save_ply = g["save_ply"] = gui.add_button("Save PLY")
            save_obj = g["save_obj"] = gui.add_button("Save OBJ")
            g["status"] = gui.add_markdown(f"Saves into `{self.run_dir.name}/{OUTPUT_FOLDER}/`")
        save_ply.on_click(self._guarded(lambda: self._report(f"Saved `{self.save_current('ply', g['name'].value)}`")))
        save_obj.on_click(self._guarded(lambda: self._report(f"Saved `{self.save_current('obj', g['name'].value)}`")))

    def _build_generate_gui(self) -> None:
        gui, g = self.server.gui, self._gui
        with gui.add_folder("Generate") as g["generate_folder"]:
            g["seed"] = gui.add_number("Seed", 0, min=0, step=1)
            g["count"] = gui.add_number("Count", 4, min=1, max=64, step=1)
            g["sampler"] = gui.add_dropdown("Sampler", SAMPLERS, initial_value=SAMPLERS[0])
            g["steps"] = gui.add_number("Steps", 1000, min=1, max=100000, step=1)
            g["temperature"] = gui.add_number(
                "Code temperature", DEFAULT_CODE_TEMPERATURE, min=0.05, max=10.0, step=0.05
            )
            sample_button = g["sample_button"] = gui.add_button("Sample")
        with gui.add_folder("Interpolate", expand_by_default=False) as g["interpolate_folder"]:
            g["seed_a"] = gui.add_number("Seed A", 0, min=0, step=1)
            g["seed_b"] = gui.add_number("Seed B", 1, min=0, step=1)
            g["alpha"] = gui.add_slider("Alpha", min=0.0, max=1.0, step=0.05, initial_value=0.5)
            interp_button = gui.add_button("Interpolate")

        def temperature() -> float | None:
            return float(g["temperature"].value) if g["temperature"].visible else None

        def do_sample() -> None:
            self.generate(
                int(g["seed"].value), int(g["count"].value), g["sampler"].value, int(g["steps"].value), temperature()
            )
            self._report(f"Generated {int(g['count'].value)} samples from seed {int(g['seed'].value)}")

        def do_interp() -> None:
            a, b, alpha = int(g["seed_a"].value), int(g["seed_b"].value), float(g["alpha"].value)
            self.interpolate(a, b, alpha, g["sampler"].value, int(g["steps"].value), temperature())
            self._report(f"Interpolated seeds {a} -> {b} at alpha {alpha:.2f}")

        def new_sampler() -> None:  # each sampler starts at its default steps
            if self.sample_source is not None:
                g["steps"].value = default_steps(self.sample_source, g["sampler"].value)

        self._on_change(g["sampler"], new_sampler)
        sample_button.on_click(self._guarded(do_sample))
        interp_button.on_click(self._guarded(do_interp))

    def _build_render_gui(self) -> None:
        gui, g = self.server.gui, self._gui
        with gui.add_folder("Render") as g["render_folder"]:
            g["render_seed"] = gui.add_number("Seed", RENDER_DEFAULTS["seed"], min=0, step=1)
            g["resolution"] = gui.add_number("Resolution", RENDER_DEFAULTS["resolution"], min=8, max=1024, step=8)
            g["azimuth"] = gui.add_slider(
                "Azimuth", min=-180.0, max=180.0, step=5.0, initial_value=RENDER_DEFAULTS["azimuth"]
            )
            g["elevation"] = gui.add_slider(
                "Elevation", min=-10.0, max=80.0, step=5.0, initial_value=RENDER_DEFAULTS["elevation"]
            )
            render_button = gui.add_button("Render view")
            turntable_button = gui.add_button("Save turntable (GIF)")
            g["render_image"] = gui.add_image(np.full((64, 64, 3), 255, dtype=np.uint8), label="Field view")
            g["mesh_resolution"] = gui.add_number("Mesh resolution", FIELD_MESH_RESOLUTION, min=8, max=512, step=8)
            g["auto_level"] = gui.add_checkbox(
                "Auto threshold", True, hint="10 when the density reaches it, else the middle of its range"
            )
            g["threshold"] = gui.add_number("Threshold", FIELD_LEVEL, step=0.5)
            mesh_button = g["mesh_button"] = gui.add_button("Mesh")

        def do_render() -> None:
            self.render_view(
                float(g["azimuth"].value),
                float(g["elevation"].value),
                int(g["resolution"].value),
                int(g["render_seed"].value),
            )

        def do_turntable() -> None:
            path = self.save_turntable(resolution=int(g["resolution"].value), seed=int(g["render_seed"].value))
            self._report(f"Saved `{path}`")

        def do_mesh() -> None:
            item = self.mesh_field(
                int(g["render_seed"].value),
                int(g["mesh_resolution"].value),
                None if g["auto_level"].value else float(g["threshold"].value),
            )
            self._report(f"Meshed the field: {len(item.mesh.faces)} faces, {item.label} (save it below)")

        render_button.on_click(self._guarded(do_render))
        turntable_button.on_click(self._guarded(do_turntable))
        mesh_button.on_click(self._guarded(do_mesh))

    # ------------------------------------------------------------ lifecycle

    def start(self) -> ViewerApp:
        """Start serving (returns at once; the server runs in background threads).

        Only the viewer's own page (and ``allowed_origins``) may connect; other sites get HTTP 403. A radiance
        field in use shows an orbit view at once.

        Raises:
            InputError: when the viewer cannot listen on its host (unknown name, not an address of this machine).
        """
        with self._lock:
            if self.server is not None:
                return self
            self.addresses = probe_host(self.host, self.requested_port)
            self.server = self._serve()
            self.server.scene.set_up_direction("+y")
            self._fit_camera()
            self._build_gui()
            if self.items:
                self.select(min(self.index, len(self.items) - 1))
            elif self.sample_source is not None:
                self._report("Press **Sample** to draw shapes from the model")
        if self.field_source is not None:
            self._render_default_view()
        return self

    def _serve(self) -> Any:
        """Start the viser server, guarded against connections from other sites."""
        import viser

        server = viser.ViserServer(host=self.host, port=self.requested_port, label="gen3d viewer", verbose=False)
        port = int(server.get_port())
        try:
            install_origin_guard(server, lambda origin: origin_allowed(origin, self.host, port, self.allowed_origins))
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def network_visible(self) -> bool:
        """Whether the bound address lets other machines connect (known after :meth:`start`)."""
        return bool(self.addresses) and not is_loopback(self.addresses)

    def stop(self) -> None:
        """Stop the server and free its port."""
        with self._lock:
            server, self.server = self.server, None
            self._gui = {}
            self._scene_node = None
        if server is not None:
            server.stop()

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        self.start()
        if self.network_visible:
            print(
                f"gen3d: warning: the viewer on {self.host or 'all interfaces'} is reachable from the network: "
                "anyone who can connect sees the samples and can save files into the run directory",
                file=sys.stderr,
                flush=True,
            )
        print(f"gen3d viewer: serving {self.content.path} at {self.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                _idle(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> ViewerApp:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def build_viewer(
    path: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8080,
    allowed_origins: Sequence[str] = (),
    data_per_split: int = DATA_PER_SPLIT,
) -> ViewerApp:
    """Open ``path`` for viewing.

    Every checkpoint found is listed as a model; the preferred one that works (``last.ckpt`` first, then the newest)
    is opened now, the others when they are chosen.

    Args:
        path: a run directory (or folder of samples/meshes), a samples file (.npz/.npy/.ply), a mesh file,
            or a model checkpoint.
        host: interface to bind (127.0.0.1 by default: only this machine can connect).
        port: port to serve on (0 picks a free one).
        allowed_origins: web origins (``http://HOST:PORT``) allowed to connect besides the viewer's own page.
        data_per_split: training clouds listed per class and split of a dataset in the run.

    Returns:
        A :class:`ViewerApp`, not yet started.

    Raises:
        InputError: when ``path`` is missing, holds nothing viewable, or a file in it is corrupt (a checkpoint that
            cannot be opened counts when it is all there is), or an allowed origin is malformed.
    """
    allowed_origins = tuple(check_origin(o) for o in allowed_origins)
    content = open_input(path, data_per_split=data_per_split)
    app = ViewerApp(content, host=host, port=port, allowed_origins=allowed_origins)
    app.open_default_model()
    return app
