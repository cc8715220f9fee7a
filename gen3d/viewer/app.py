"""The viewer app: a viser server showing point clouds and meshes with a sample browser.

``build_viewer(path)`` opens a run directory, a samples/mesh file or a checkpoint and returns a
:class:`ViewerApp`; ``start()`` serves it (127.0.0.1 by default), ``stop()`` shuts the server down and
frees the port, ``run()`` serves until Ctrl-C. The app's actions (select a sample, save it, generate,
interpolate, render a view) are plain methods, called by the GUI callbacks and usable without a browser.

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
from gen3d.inference.sources import FieldSource, SampleSource, load_checkpoint_source
from gen3d.viewer.content import Item, ViewerInput, open_input
from gen3d.viewer.origins import check_origin, origin_allowed
from gen3d.viewer.paths import resolve_inside, safe_file_name, write_new_file
from gen3d.viewer.server import install_origin_guard, is_loopback, probe_host

OUTPUT_FOLDER = "viewer"
MESH_COLOR = (120, 170, 230)


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
        field_source: a radiance field to render orbit views of.
        allowed_origins: web origins (``http://HOST:PORT``) allowed to connect besides the viewer's own page.

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
        self.index = 0
        self.point_size = 0.01
        self.last_render: np.ndarray | None = None
        self.server: Any = None
        self._gui: dict[str, Any] = {}
        self._scene_node: Any = None
        self._lock = threading.RLock()
        self._syncing = False

    # ------------------------------------------------------------------ state

    @property
    def items(self) -> list[Item]:
        """Everything browsable: file samples, then generated samples, then the interpolation."""
        extra = [self.interpolated] if self.interpolated is not None else []
        return self.file_items + self.generated + extra

    @property
    def current(self) -> Item | None:
        items = self.items
        return items[self.index] if items else None

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
            self._show(items[self.index])
            self._sync_browser()
            return items[self.index]

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

    def generate(self, seed: int, n: int = 4, sampler: str | None = None, steps: int | None = None) -> list[Item]:
        """Draw new samples from the model and show the first.

        Args:
            seed: noise seed.
            n: number of samples.
            sampler: one of ``sample_source.samplers`` (default: the first).
            steps: sampling steps (default: ``sample_source.default_steps``).

        Returns:
            The new items (they replace earlier generated ones in the browser).
        """
        from gen3d.data.io import check_points

        src = self._need_sample_source()
        sampler = sampler or src.samplers[0]
        if sampler not in src.samplers:
            raise InputError(f"unknown sampler {sampler!r}; expected one of {', '.join(src.samplers)}")
        steps = int(steps or src.default_steps)
        if n < 1 or steps < 1:
            raise InputError(f"need at least one sample and one step, got n={n}, steps={steps}")
        clouds = check_points(src.sample(int(seed), int(n), sampler, steps), "generated samples", ndim=(3,))
        with self._lock:
            first_shapes = not self.items
            self.generated = [
                Item(f"seed {seed} #{i} ({sampler}, {steps} steps)", points=c) for i, c in enumerate(clouds)
            ]
            if first_shapes and self.server is not None:  # a checkpoint opened alone: frame its first samples
                self._fit_camera()
                if "point_size" in self._gui:
                    self._gui["point_size"].value = min(max(round(self.point_size, 3), 0.001), 0.05)
            self.select(len(self.file_items))
            return list(self.generated)

    def interpolate(
        self, seed_a: int, seed_b: int, alpha: float, sampler: str | None = None, steps: int | None = None
    ) -> Item:
        """Show the sample interpolated between two seeds.

        Args:
            seed_a: seed at alpha = 0.
            seed_b: seed at alpha = 1.
            alpha: mixing weight in [0, 1].
            sampler: sampler name (default: the model's first).
            steps: sampling steps (default: the model's default).

        Returns:
            The interpolated item (it replaces the previous interpolation in the browser).
        """
        from gen3d.data.io import check_points

        src = self._need_sample_source()
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha must lie in [0, 1], got {alpha}")
        cloud = src.interpolate(int(seed_a), int(seed_b), float(alpha), sampler=sampler, steps=steps)
        cloud = check_points(cloud, "interpolated sample", ndim=(2,))
        with self._lock:
            self.interpolated = Item(f"interpolation {seed_a} -> {seed_b}, alpha {alpha:.2f}", points=cloud)
            self.select(len(self.items) - 1)
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
            raise InputError("no point-cloud model is loaded; open a checkpoint to generate samples")
        return self.sample_source

    def _need_field_source(self) -> FieldSource:
        if self.field_source is None:
            raise InputError("no radiance field is loaded; open a field checkpoint to render views")
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
            if item.mesh is not None:
                detail = f"mesh: {len(item.mesh.vertices)} vertices, {len(item.mesh.faces)} faces"
            else:
                detail = f"point cloud: {len(item.points)} points"
            where = "" if item.source is None else f"  \nfile: `{item.source.relative_to(self.run_dir)}`"
            self._gui["info"].content = f"{detail}{where}"

    def _sync_browser(self) -> None:
        """Bring the dropdown and slider in line with :attr:`items` and :attr:`index`."""
        gui = self._gui
        if "dropdown" not in gui:
            return
        labels = self._labels()
        self._syncing = True
        try:
            if tuple(gui["dropdown"].options) != tuple(labels):
                gui["dropdown"].options = labels
            gui["slider"].max = max(len(labels) - 1, 1)
            gui["slider"].disabled = len(labels) < 2
            gui["dropdown"].value = labels[self.index]
            gui["slider"].value = self.index
        finally:
            self._syncing = False

    def _labels(self) -> list[str]:
        return [f"{i:03d}  {item.label}" for i, item in enumerate(self.items)] or ["(no samples)"]

    def _fit_camera(self) -> None:
        items = self.items
        if not items:
            return
        pts = items[0].vertices()
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        center = 0.5 * (lo + hi)
        extent = float(np.linalg.norm(hi - lo)) or 1.0
        self.point_size = 0.004 * extent
        cam = self.server.initial_camera
        cam.look_at = tuple(center)
        direction = np.array([0.9, 0.6, 1.2]) / np.linalg.norm([0.9, 0.6, 1.2])  # a three-quarter view from above
        cam.position = tuple(center + 1.0 * extent * direction)
        cam.up = (0.0, 1.0, 0.0)

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

    def _build_gui(self) -> None:
        gui = self.server.gui
        g = self._gui
        title = self.content.path.name or str(self.content.path)
        gui.add_markdown(f"**gen3d viewer** — `{title}`")

        with gui.add_folder("Samples"):
            labels = self._labels()
            g["dropdown"] = gui.add_dropdown("Sample", labels, initial_value=labels[0])
            g["slider"] = gui.add_slider(
                "Index", min=0, max=max(len(labels) - 1, 1), step=1, initial_value=0, disabled=len(labels) < 2
            )
            g["info"] = gui.add_markdown("")
            g["point_size"] = gui.add_slider(
                "Point size", min=0.001, max=0.05, step=0.001, initial_value=round(self.point_size, 3)
            )

        @g["dropdown"].on_update
        def _(_event: Any) -> None:
            if not self._syncing and self.items:
                self._guarded(lambda: self.select(self._labels().index(g["dropdown"].value)))(None)

        @g["slider"].on_update
        def _(_event: Any) -> None:
            if not self._syncing and self.items:
                self._guarded(lambda: self.select(min(int(g["slider"].value), len(self.items) - 1)))(None)

        @g["point_size"].on_update
        def _(_event: Any) -> None:
            self.point_size = float(g["point_size"].value)
            if self._scene_node is not None and self.current is not None and self.current.mesh is None:
                self._scene_node.point_size = self.point_size

        if self.sample_source is not None:
            self._build_generate_gui()
        if self.field_source is not None:
            self._build_render_gui()

        with gui.add_folder("Save"):
            g["name"] = gui.add_text("File name", "sample")
            save_ply = g["save_ply"] = gui.add_button("Save PLY")
            save_obj = g["save_obj"] = gui.add_button("Save OBJ")
            g["status"] = gui.add_markdown(f"Saves into `{self.run_dir.name}/{OUTPUT_FOLDER}/`")
        save_ply.on_click(self._guarded(lambda: self._report(f"Saved `{self.save_current('ply', g['name'].value)}`")))
        save_obj.on_click(self._guarded(lambda: self._report(f"Saved `{self.save_current('obj', g['name'].value)}`")))

    def _build_generate_gui(self) -> None:
        gui, g, src = self.server.gui, self._gui, self.sample_source
        assert src is not None
        with gui.add_folder("Generate"):
            g["seed"] = gui.add_number("Seed", 0, min=0, step=1)
            g["count"] = gui.add_number("Count", 4, min=1, max=64, step=1)
            g["sampler"] = gui.add_dropdown("Sampler", list(src.samplers), initial_value=src.samplers[0])
            g["steps"] = gui.add_number("Steps", int(src.default_steps), min=1, max=10000, step=1)
            sample_button = gui.add_button("Sample")
        with gui.add_folder("Interpolate"):
            g["seed_a"] = gui.add_number("Seed A", 0, min=0, step=1)
            g["seed_b"] = gui.add_number("Seed B", 1, min=0, step=1)
            g["alpha"] = gui.add_slider("Alpha", min=0.0, max=1.0, step=0.05, initial_value=0.5)
            interp_button = gui.add_button("Interpolate")

        def do_sample() -> None:
            self.generate(int(g["seed"].value), int(g["count"].value), g["sampler"].value, int(g["steps"].value))
            self._report(f"Generated {int(g['count'].value)} samples from seed {int(g['seed'].value)}")

        def do_interp() -> None:
            a, b, alpha = int(g["seed_a"].value), int(g["seed_b"].value), float(g["alpha"].value)
            self.interpolate(a, b, alpha, sampler=g["sampler"].value, steps=int(g["steps"].value))
            self._report(f"Interpolated seeds {a} -> {b} at alpha {alpha:.2f}")

        sample_button.on_click(self._guarded(do_sample))
        interp_button.on_click(self._guarded(do_interp))

    def _build_render_gui(self) -> None:
        gui, g, src = self.server.gui, self._gui, self.field_source
        assert src is not None
        with gui.add_folder("Render"):
            g["render_seed"] = gui.add_number("Seed", 0, min=0, step=1)
            g["resolution"] = gui.add_number("Resolution", 64, min=8, max=1024, step=8)
            g["azimuth"] = gui.add_slider("Azimuth", min=-180.0, max=180.0, step=5.0, initial_value=0.0)
            g["elevation"] = gui.add_slider("Elevation", min=-10.0, max=80.0, step=5.0, initial_value=20.0)
            render_button = gui.add_button("Render view")
            turntable_button = gui.add_button("Save turntable (GIF)")
            g["render_image"] = gui.add_image(np.full((64, 64, 3), 255, dtype=np.uint8), label="Field view")

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

        render_button.on_click(self._guarded(do_render))
        turntable_button.on_click(self._guarded(do_turntable))

    # ------------------------------------------------------------ lifecycle

    def start(self) -> ViewerApp:
        """Start serving (returns at once; the server runs in background threads).

        Only the viewer's own page (and ``allowed_origins``) may connect; other sites get HTTP 403.

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
    path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8080, allowed_origins: Sequence[str] = ()
) -> ViewerApp:
    """Open ``path`` for viewing.

    Args:
        path: a run directory (or folder of samples/meshes), a samples file (.npz/.npy/.ply), a mesh file,
            or a model checkpoint.
        host: interface to bind (127.0.0.1 by default: only this machine can connect).
        port: port to serve on (0 picks a free one).
        allowed_origins: web origins (``http://HOST:PORT``) allowed to connect besides the viewer's own page.

    Returns:
        A :class:`ViewerApp`, not yet started.

    Raises:
        InputError: when ``path`` is missing, holds nothing viewable, or a file in it is corrupt, or an
            allowed origin is malformed.
    """
    allowed_origins = tuple(check_origin(o) for o in allowed_origins)
    content = open_input(path)
    sample_source = field_source = None
    if content.checkpoints:
        try:
            source = load_checkpoint_source(content.checkpoints[-1])
        except InputError:
            if not content.items:  # the checkpoint is all there is: its error is the answer
                raise
            source = None
            content.skipped.append(f"{content.checkpoints[-1]}: no viewer adapter for this checkpoint")
        if isinstance(source, FieldSource):
            field_source = source
        elif isinstance(source, SampleSource):
            sample_source = source
    return ViewerApp(
        content,
        host=host,
        port=port,
        sample_source=sample_source,
        field_source=field_source,
        allowed_origins=allowed_origins,
    )
