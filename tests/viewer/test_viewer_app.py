"""The viewer app in-process: browsing, saving, generating, rendering, and a clean shutdown."""

from __future__ import annotations

import http.client
import socket

import numpy as np
import pytest

from gen3d.errors import InputError
from gen3d.inference.sources import FieldSource, SampleSource
from gen3d.viewer import build_viewer
from gen3d.viewer.app import ViewerApp
from gen3d.viewer.content import open_input


class RingSource:
    """A stand-in generative model: seed s gives a ring of radius 1 + s (exact, so results are checkable)."""

    samplers = ("ddpm", "ddim")
    default_steps = 10

    def __init__(self, points: int = 128):
        self.points = points
        self.calls: list[tuple] = []

    def ring(self, seed: int) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, self.points, endpoint=False)
        return ((1.0 + seed) * np.stack([np.cos(t), np.zeros_like(t), np.sin(t)], 1)).astype(np.float32)

    def sample(self, seed, n, sampler, steps):
        self.calls.append(("sample", seed, n, sampler, steps))
        return np.stack([self.ring(seed + i) for i in range(n)])

    def interpolate(self, seed_a, seed_b, alpha, sampler=None, steps=None):
        self.calls.append(("interpolate", seed_a, seed_b, alpha, sampler, steps))
        return (1 - alpha) * self.ring(seed_a) + alpha * self.ring(seed_b)


class FlatField:
    """A stand-in radiance field whose image colour encodes the camera position."""

    aabb = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)
    radius = 3.0

    def __init__(self):
        self.poses: list[np.ndarray] = []

    def render(self, c2w, H, W, seed=0):
        self.poses.append(np.asarray(c2w))
        image = np.zeros((H, W, 3))
        image[..., 0] = 0.5 + 0.5 * c2w[1, 3] / self.radius
        image[..., 1] = 0.5 + 0.5 * c2w[2, 3] / self.radius
        image[..., 2] = seed / 10
        return image

    def density(self, xyz, seed=0):
        return 0.5 - xyz.norm(dim=-1)


@pytest.fixture()
def run_dir(tmp_path):
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 300, 3))
    np.savez(run / "samples" / "samples.npz", points=(v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32))
    return run


def _port_is_free(port: int) -> bool:
    """Nobody listens on the port: connecting is refused and it can be bound again (SO_REUSEADDR lets the
    bind ignore connections of the finished server still in TIME_WAIT, but not a live listener)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)  # the path is sent verbatim (no client-side normalisation)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_protocols_are_recognised():
    assert isinstance(RingSource(), SampleSource) and not isinstance(RingSource(), FieldSource)
    assert isinstance(FlatField(), FieldSource) and not isinstance(FlatField(), SampleSource)


def test_server_binds_loopback_serves_the_client_and_frees_its_port(run_dir):
    app = build_viewer(run_dir, port=0)
    assert app.host == "127.0.0.1"
    app.start()
    try:
        port = app.port
        assert port > 0 and not _port_is_free(port)
        status, body = _get(port, "/")
        assert status == 200 and b"<html" in body.lower()
        status, body = _get(port, "/../../../../etc/passwd")
        assert status == 404 and b"root:" not in body
        assert [item.label for item in app.items] == [f"samples/samples.npz [{i}]" for i in range(3)]
        assert app._gui["dropdown"].options[1].endswith("samples/samples.npz [1]")
        app.select(2)
        assert app._gui["slider"].value == 2 and app._gui["dropdown"].value.startswith("002")
    finally:
        app.stop()
    assert _port_is_free(port)


def test_save_current_writes_only_into_the_run_directory(run_dir, tmp_path):
    import trimesh

    from gen3d.data.io import load_points

    app = build_viewer(run_dir / "samples" / "samples.npz", port=0)  # a samples file: its run dir is run/
    assert app.run_dir == run_dir.resolve()
    app.select(1)
    ply = app.save_current("ply")
    assert ply == run_dir.resolve() / "viewer" / "sample_001.ply"
    np.testing.assert_array_equal(load_points(ply), app.items[1].points)

    obj = app.save_current("obj", name="sphere", poisson_depth=5)  # a point cloud is meshed first
    mesh = trimesh.load(str(obj), force="mesh", process=False)
    assert obj.parent == run_dir.resolve() / "viewer" and len(mesh.faces) > 100
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 1.0).mean() < 0.05

    before = set(tmp_path.rglob("*"))
    for bad in ("../../escape", "../../../escape", str(tmp_path / "abs")):
        with pytest.raises(InputError, match="invalid file name"):
            app.save_current("ply", name=bad)
    assert set(tmp_path.rglob("*")) == before
    with pytest.raises(InputError, match="unsupported format"):
        app.save_current("fbx")


def test_meshes_are_shown_and_saved_as_meshes(tmp_path):
    import trimesh

    run = tmp_path / "meshes_run"
    run.mkdir()
    trimesh.creation.icosphere(subdivisions=1).export(run / "ico.obj")
    app = build_viewer(run, port=0).start()
    try:
        assert app.current.kind == "mesh"
        assert "42 vertices, 80 faces" in app._gui["info"].content
        out = app.save_current("ply", name="copy")
    finally:
        app.stop()
    copy = trimesh.load(str(out), force="mesh", process=False)
    assert (len(copy.vertices), len(copy.faces)) == (42, 80)


def test_generate_and_interpolate_with_a_sample_source(run_dir):
    source = RingSource()
    app = ViewerApp(open_input(run_dir), port=0, sample_source=source).start()
    try:
        new = app.generate(seed=2, n=2, sampler="ddim", steps=7)
        assert source.calls[-1] == ("sample", 2, 2, "ddim", 7)
        np.testing.assert_array_equal(new[1].points, source.ring(3))
        assert len(app.items) == 3 + 2 and app.index == 3
        # the new shapes are a group of their own in the browser, after the file's samples
        assert app._gui["group"].options == ("Samples (3)", "This session (2)", "Checkpoints (1)")
        assert app._gui["group"].value == "This session (2)"
        assert len(app._gui["dropdown"].options) == 2 and app._gui["slider"].max == 1
        again = app.generate(seed=0, n=1)  # defaults: first sampler, default steps; replaces the last batch
        assert source.calls[-1] == ("sample", 0, 1, "ddpm", 10) and len(app.items) == 4
        np.testing.assert_array_equal(again[0].points, source.ring(0))

        item = app.interpolate(0, 4, 0.25)
        radii = np.linalg.norm(item.points, axis=1)
        np.testing.assert_allclose(radii, 0.75 * 1 + 0.25 * 5, rtol=1e-6)
        assert app.current is item and app.index == len(app.items) - 1
        with pytest.raises(InputError, match="sampler"):
            app.generate(0, 1, sampler="euler")
        with pytest.raises(InputError, match="alpha"):
            app.interpolate(0, 1, 1.5)
    finally:
        app.stop()


def test_field_source_renders_orbit_views_and_turntables(run_dir):
    from PIL import Image

    field = FlatField()
    app = ViewerApp(open_input(run_dir), port=0, field_source=field).start()
    try:
        image = app.render_view(azimuth_deg=90.0, elevation_deg=30.0, resolution=24, seed=5)
        assert image.shape == (24, 24, 3) and image.dtype == np.uint8
        eye = field.poses[-1][:3, 3]
        np.testing.assert_allclose(
            eye, 3.0 * np.array([np.cos(np.radians(30)), np.sin(np.radians(30)), 0.0]), atol=1e-9
        )
        # red from the camera height (0.75), green from its z (0), blue from the seed
        assert image[0, 0].tolist() == [191, 128, 128]
        np.testing.assert_array_equal(app._gui["render_image"].image, image)
        gif = app.save_turntable(name="orbit", frames=4, resolution=16)  # frames differ: z changes
        assert gif == run_dir.resolve() / "viewer" / "orbit.gif"
        assert app.save_turntable(name="orbit", frames=2, resolution=8) == gif.with_name("orbit_1.gif")
        with Image.open(gif) as im:
            assert (im.size, im.n_frames) == ((16, 16), 4)
        with pytest.raises(InputError, match="resolution"):
            app.render_view(0, 0, resolution=4)
    finally:
        app.stop()


def test_actions_need_the_matching_source(run_dir):
    app = build_viewer(run_dir, port=0)
    with pytest.raises(InputError, match="no point-cloud model"):
        app.generate(0)
    with pytest.raises(InputError, match="no radiance field"):
        app.render_view(0, 0)
    with pytest.raises(InputError, match="out of range"):
        app.select(3)


def test_checkpoints_open_through_registered_adapters(tmp_path, monkeypatch):
    import torch

    from gen3d.inference import sources

    built = []

    def build(path, ckpt):
        built.append((path, ckpt["hyper_parameters"]["points"]))
        return RingSource(points=ckpt["hyper_parameters"]["points"])

    monkeypatch.setitem(sources._ADAPTERS, "ring", (lambda ckpt: ckpt.get("family") == "ring", build))
    ckpt_dir = tmp_path / "run" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    torch.save({"family": "ring", "hyper_parameters": {"points": 32}}, ckpt_dir / "last.ckpt")
    app = build_viewer(ckpt_dir / "last.ckpt", port=0)
    assert built == [(ckpt_dir / "last.ckpt", 32)]
    assert isinstance(app.sample_source, RingSource) and app.field_source is None
    assert app.run_dir == (tmp_path / "run").resolve() and app.items == []
    app.start()
    try:
        assert "Sample" in app._gui["status"].content  # the panel invites to sample
        (item,) = app.generate(seed=1, n=1)
        assert item.points.shape == (32, 3)
    finally:
        app.stop()

    # A checkpoint no adapter recognises is an input error when it is all there is...
    torch.save({"family": "other"}, ckpt_dir / "other.ckpt")
    with pytest.raises(InputError, match="no viewer adapter"):
        build_viewer(ckpt_dir / "other.ckpt")
    # ...and is noted but does not stop a run directory that also holds samples.
    np.save(tmp_path / "run" / "cloud.npy", np.zeros((5, 3), np.float32))
    (ckpt_dir / "last.ckpt").unlink()
    app = build_viewer(tmp_path / "run")
    assert app.sample_source is None and len(app.items) == 1
    assert any("no viewer adapter" in s for s in app.content.skipped)


def test_view_command_serves_until_interrupted(run_dir, monkeypatch, capsys):
    from gen3d.cli.main import main
    from gen3d.viewer import app as app_module

    seen = {}

    def interrupt(_seconds):
        url = capsys.readouterr().out.split(" at ")[-1].split()[0]
        seen["port"] = int(url.rstrip("/").rsplit(":", 1)[1])
        seen["status"] = _get(seen["port"], "/")[0]
        raise KeyboardInterrupt

    monkeypatch.setattr(app_module, "_idle", interrupt)
    assert main(["view", str(run_dir), "--port", "0"]) == 0
    assert seen["status"] == 200  # it was serving while blocked
    assert _port_is_free(seen["port"])  # and Ctrl-C shut it down
