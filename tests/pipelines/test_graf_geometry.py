"""3D metrics of generated radiance fields: surface extraction, the frame mapping, the metric rows and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import Tensor

from gen3d.errors import InputError
from gen3d.models.graf.field import RadianceField
from gen3d.models.graf.generator import Generator
from gen3d.pipelines.graf_geometry import (
    DEFAULT_LEVEL,
    GeometryProtocol,
    geometry_metrics,
    has_surface,
    reference_clouds,
    surface_points,
    world_to_canonical,
)

TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # the renders' (x, y, z) -> (x, -z, y)


class ConeField(RadianceField):
    """sigma = peak * max(0, 1 - |x| / radius): level L is the sphere of radius ``radius * (1 - L / peak)``."""

    z_dim = 2

    def __init__(self, peak: float = 40.0, radius: float = 0.6):
        super().__init__()
        self.peak, self.radius = peak, radius
        self.unused = torch.nn.Parameter(torch.zeros(1))  # a device for sample_z

    def condition(self, z: Tensor) -> tuple[Tensor, ...]:
        return (z,)

    def query(self, x: Tensor, d: Tensor, cond: tuple[Tensor, ...], noise_std: float = 0.0) -> tuple[Tensor, Tensor]:
        sigma = self.peak * (1 - x.norm(dim=-1) / self.radius).clamp(0, 1)
        return sigma.expand(torch.broadcast_shapes(sigma.shape, cond[0].shape[:-1])), torch.zeros_like(x)


class ConstantField(ConeField):
    def query(self, x: Tensor, d: Tensor, cond: tuple[Tensor, ...], noise_std: float = 0.0) -> tuple[Tensor, Tensor]:
        return torch.full(x.shape[:-1], self.peak), torch.zeros_like(x)


class MeshField(RadianceField):
    """The density of procedural shapes placed in GRAF's world as the renders place them: the signed distance to
    the union of their closed parts, ``sigma = 20 clamp(1/2 - sdf / width, 0, 1)`` (= 10 on the surface).

    Code ``z`` shows shape ``argmax(z)`` of ``meshes``."""

    def __init__(self, meshes: list, width: float):
        import open3d as o3d
        from trimesh.graph import connected_component_labels

        super().__init__()
        self.z_dim, self.width, self.shapes = len(meshes), width, []
        self.unused = torch.nn.Parameter(torch.zeros(1))
        for mesh in meshes:
            v = (np.asarray(mesh.vertices) @ TO_Z_UP.T).astype(np.float32)  # z up, as gen3d.data.multiview renders
            f = np.asarray(mesh.faces)
            labels = connected_component_labels(mesh.face_adjacency, node_count=len(f))  # the closed parts
            scenes = []
            for k in np.unique(labels):
                scene = o3d.t.geometry.RaycastingScene()
                scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f[labels == k].astype(np.uint32)))
                scenes.append(scene)
            self.shapes.append(scenes)

    def condition(self, z: Tensor) -> tuple[Tensor, ...]:
        return (z,)

    def query(self, x: Tensor, d: Tensor, cond: tuple[Tensor, ...], noise_std: float = 0.0) -> tuple[Tensor, Tensor]:
        import open3d as o3d

        assert x.shape[0] == 1  # one scene at a time (density_grid)
        scenes = self.shapes[int(cond[0].reshape(-1, self.z_dim)[0].argmax())]
        q = o3d.core.Tensor(x.reshape(-1, 3).numpy().astype(np.float32))
        sdf = np.min([s.compute_signed_distance(q).numpy() for s in scenes], axis=0)  # union of the parts
        sigma = 20.0 * np.clip(0.5 - sdf / self.width, 0.0, 1.0)
        return torch.from_numpy(sigma).float().reshape(x.shape[:-1]), torch.zeros_like(x)


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    from gen3d.metrics import chamfer_distance

    return float(chamfer_distance(torch.from_numpy(a)[None], torch.from_numpy(b)[None]))


@pytest.mark.parametrize("level", [10.0, 30.0])
def test_sphere_at_the_iso_level(level):
    """The solid is where sigma > level: a cone of peak 40 and radius 0.6 has its level-L surface at
    r = 0.6 (1 - L / 40) (0.45 at 10, 0.15 at 30), found to a fraction of a grid cell."""
    resolution, bound = 32, 0.7
    cell = 2 * bound / (resolution - 1)
    pts = surface_points(ConeField(), torch.zeros(2), 1024, level=level, resolution=resolution, bound=bound, seed=1)
    r = np.linalg.norm(pts, axis=1)
    assert pts.shape == (1024, 3) and pts.dtype == np.float32 and has_surface(pts)
    expected = 0.6 * (1 - level / 40.0)
    assert np.abs(r - expected).max() < 0.15 * cell  # 0.0017 at level 10, 0.0046 at level 30 (cell 0.045)
    assert abs(r.mean() - expected) < 0.1 * cell  # flat triangles are chords: the mean is a little inside
    again = surface_points(ConeField(), torch.zeros(2), 1024, level=level, resolution=resolution, bound=bound, seed=1)
    assert np.array_equal(pts, again)  # seeded


def test_no_surface_and_full_box():
    """Below the level everywhere: the origin cloud, flagged. Above it everywhere: the box is a closed solid, its
    surface within one cell outside the bound (the field counts as empty beyond it)."""
    empty = surface_points(ConeField(peak=5.0), torch.zeros(2), 64, level=DEFAULT_LEVEL, resolution=16)
    assert empty.shape == (64, 3) and not empty.any() and not has_surface(empty)
    bound, resolution = 0.5, 16
    full = surface_points(ConstantField(peak=50.0), torch.zeros(2), 500, resolution=resolution, bound=bound)
    side = np.abs(full).max(axis=1)  # inf-norm of every point
    assert has_surface(full) and side.min() > bound - 1e-6 and side.max() < bound + 2 * bound / (resolution - 1)
    nan = ConstantField(peak=float("nan"))
    assert not has_surface(surface_points(nan, torch.zeros(2), 8, resolution=8))
    with pytest.raises(InputError):
        surface_points(ConeField(), torch.zeros(2), 8, level=0.0)


def test_default_level_is_the_mesh_exports():
    from gen3d.export.field import DEFAULT_LEVEL as EXPORT_LEVEL

    assert DEFAULT_LEVEL == EXPORT_LEVEL


def test_world_to_canonical_inverts_the_renders_rotation():
    x = np.random.default_rng(0).standard_normal((5, 3))
    assert np.allclose(world_to_canonical(x @ TO_Z_UP.T), x)
    assert np.allclose(world_to_canonical(np.array([0.0, 0.0, 1.0])), [0.0, 1.0, 0.0])  # world up -> canonical up


def test_surface_of_a_procedural_shape_in_the_canonical_frame():
    """A field holding a chair as the renders place it (z up) gives the chair's own surface points (y up):
    Chamfer 6.5e-4 to shape_points (two independent 2048-point samples of one chair differ by ~3e-4), 40-60x
    less than to the chair upside down (the forward rotation applied again), mirrored front to back, or left
    in the z-up world."""
    import open3d as o3d

    from gen3d.data.shapes import make_shape, shape_points

    resolution, bound = 40, 0.55
    cell = 2 * bound / (resolution - 1)
    mesh = make_shape("chair", 0, 0)
    pts = surface_points(MeshField([mesh], 2 * cell), torch.ones(1), 2048, resolution=resolution, bound=bound)
    canonical = o3d.t.geometry.RaycastingScene()
    canonical.add_triangles(
        o3d.core.Tensor(np.asarray(mesh.vertices, np.float32)), o3d.core.Tensor(np.asarray(mesh.faces, np.uint32))
    )
    dist = canonical.compute_distance(o3d.core.Tensor(pts)).numpy()  # to the chair in its canonical frame
    assert dist.mean() < 0.1 * cell and dist.max() < 0.6 * cell  # 0.0013 and 0.012 for a cell of 0.028
    ref = shape_points("chair", 0, 0, 2048)
    cd = chamfer(pts, ref)
    assert cd < 1e-3
    wrong = {
        "upside down": pts * np.float32([1, -1, -1]),
        "mirrored": pts * np.float32([1, 1, -1]),
        "z up": (pts @ TO_Z_UP.T).astype(np.float32),
    }
    for name, cloud in wrong.items():
        assert chamfer(cloud, ref) > 20 * cd, name


def test_outer_surface_leaves_out_the_faces_inside_the_solid():
    """A car's cabin stands on its body and its wheels sink into it: the faces inside the solid are in shape_points
    but in no render. The surface a field holding the car yields is 3x closer (Chamfer) to the outer surface
    samples than to all faces (4e-4 against 1.3e-3: the former is the sampling noise of 2048 points)."""
    from gen3d.data.shapes import make_shape, shape_points
    from gen3d.pipelines.graf_geometry import outer_surface_points

    resolution, bound = 40, 0.55
    field = MeshField([make_shape("car", 0, 0)], 2 * 2 * bound / (resolution - 1))
    pts = surface_points(field, torch.ones(1), 2048, resolution=resolution, bound=bound)
    outer = outer_surface_points("car", 0, 0, 2048)
    assert outer.shape == (2048, 3) and outer.dtype == np.float32
    assert np.array_equal(outer, outer_surface_points("car", 0, 0, 2048))  # seeded
    cd_outer, cd_all = chamfer(pts, outer), chamfer(pts, shape_points("car", 0, 0, 2048))
    assert cd_outer < 6e-4 and cd_outer < 0.5 * cd_all
    assert np.array_equal(reference_clouds("car", 1, 0, 0, 2048)[0], outer)
    assert np.array_equal(reference_clouds("car", 1, 0, 0, 2048, surface="all")[0], shape_points("car", 0, 0, 2048))


def test_geometry_metrics_rows():
    """A generator that shows held-out chairs and cars scores like the held-out shapes themselves (the oracle) and
    far better than Gaussian blobs; an empty generator yields origin clouds, flagged, and finite numbers."""
    from gen3d.data.shapes import make_shape
    from gen3d.metrics import point_cloud_metrics

    protocol = GeometryProtocol("chair,car", per_class=3, heldout_first=6, n_points=256, resolution=32, bound=0.55)
    cell = 2 * 0.55 / 31
    meshes = [make_shape(name, i, 0) for name in ("chair", "car") for i in range(3, 6)]  # neither refs nor oracle
    shapes = Generator(MeshField(meshes, 2 * cell))
    empty = Generator(ConeField(peak=5.0))
    res = geometry_metrics(shapes, empty, protocol, seed=0, progress=False)
    rows = res["rows"]
    assert list(rows) == ["trained", "untrained", "oracle"]
    for row in rows.values():
        assert row["clouds"] == 6 and all(math.isfinite(v) for v in row.values())
        assert {"1-NNA-CD", "COV-CD", "MMD-CD", "JSD"} <= set(row) and "MMD-EMD" not in row
    assert (rows["trained"]["empty"], rows["untrained"]["empty"], rows["oracle"]["empty"]) == (0, 6, 0)

    refs = reference_clouds("chair,car", 3, 0, 0, 256)
    spread = float(refs.reshape(-1, 3).std(axis=0).mean())
    blobs = (refs.reshape(-1, 3).mean(0) + spread * np.random.default_rng(0).standard_normal((6, 256, 3))).astype(
        np.float32
    )
    blob = point_cloud_metrics(blobs, refs, emd="none", progress=False)
    for name in ("oracle", "trained"):
        assert rows[name]["MMD-CD"] < 0.5 * blob["MMD-CD"], name
        assert rows[name]["1-NNA-CD"] < blob["1-NNA-CD"], name
    assert rows["trained"]["MMD-CD"] < 2 * rows["oracle"]["MMD-CD"]
    assert rows["untrained"]["1-NNA-CD"] > rows["oracle"]["1-NNA-CD"]
    assert res["protocol"]["classes"] == ["chair", "car"] and "0.55" in res["protocol"]["surface"]


def test_reference_clouds_are_the_shapes_points():
    from gen3d.data.shapes import shape_points

    refs = reference_clouds("mug,car", 2, first_index=5, seed=3, n_points=100, surface="all")
    assert refs.shape == (4, 100, 3) and refs.dtype == np.float32
    assert np.array_equal(refs[3], shape_points("car", 6, 3, 100))


def test_protocol_checks_its_settings():
    p = GeometryProtocol("car", per_class=4)
    assert (p.classes, p.heldout_first, p.heldout_per_class) == (("car",), 4, 4)
    for bad in (
        dict(per_class=0),
        dict(n_points=0),
        dict(heldout_per_class=0),
        dict(resolution=1),
        dict(heldout_first=2, per_class=4),
        dict(level=-1.0),
        dict(emd="fast"),
        dict(surface="inner"),
        dict(classes="spaceship"),
    ):
        with pytest.raises(InputError):
            GeometryProtocol(**{"classes": "car", **bad})


@pytest.fixture
def graf_ckpt(tmp_path):
    from gen3d.lit.graf_module import GRAFModule

    torch.manual_seed(0)
    tiny = dict(
        z_dim=8, z_app_dim=4, net_depth=2, net_width=16, skips=(), pos_freqs=2, dir_freqs=1, image_size=16,
        patch_size=8, n_samples=6, n_importance=0, ndf=4, n_grid=2,
    )  # fmt: skip
    module = GRAFModule(**tiny)
    with torch.no_grad():  # dense in a ball: a surface at the default level
        module.generator_ema.field.sigma_head.bias.fill_(12.0)
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


def test_cli_geometry(graf_ckpt, tmp_path, monkeypatch, capsys):
    """``gen3d evaluate graf --geometry`` adds the three rows to the output (FID replaced by a stub here: the
    Inception network is not what is tested)."""
    from PIL import Image

    from gen3d.cli.main import main
    from gen3d.pipelines import graf_eval

    monkeypatch.setattr(graf_eval, "reference_statistics", lambda real: None)
    monkeypatch.setattr(graf_eval, "score_against", lambda fake, ref, seed=0: {"FID": 1.0, "KID": 0.0, "KID_std": 0.0})
    real = tmp_path / "real"
    real.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(real / f"{i}.png")
    out = tmp_path / "m.json"
    argv = ["evaluate", "graf", "--ckpt", str(graf_ckpt), "--real", str(real), "--n", "2", "--json", str(out)]
    geo = ["--geometry", "--classes", "mug", "--per-class", "2", "--heldout-first", "4", "--points", "64"]
    assert main([*argv, *geo, "--resolution", "12"]) == 0
    res = json.loads(out.read_text())
    rows = res["geometry"]["rows"]
    assert list(rows) == ["trained", "untrained", "oracle"] and all(r["clouds"] == 2 for r in rows.values())
    assert all(math.isfinite(r["1-NNA-CD"]) and math.isfinite(r["MMD-CD"]) for r in rows.values())
    assert rows["oracle"]["empty"] == 0 and res["geometry"]["protocol"]["oracle"].startswith("procedural shapes 4..5")
    assert "no surface" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--per-class", "0"], "argument --per-class: expected an integer >= 1"),
        (["--points", "0"], "argument --points: expected an integer >= 1"),
        (["--heldout-per-class", "0"], "argument --heldout-per-class: expected an integer >= 1"),
        (["--resolution", "1"], "argument --resolution: expected an integer in [2, 1024]"),
        (["--per-class", "8", "--heldout-first", "4"], "--heldout-first (4) must not be below --per-class (8)"),
        (["--level", "0"], "argument --level: expected a number > 0"),
        (["--classes", "spaceship"], "unknown procedural class"),
    ],
)
def test_cli_geometry_checks_options_first(tmp_path, capsys, flags, message):
    """Bad --geometry options exit with code 2 and a message naming the flag, before the checkpoint is read."""
    from gen3d.cli.main import main

    argv = ["evaluate", "graf", "--ckpt", str(tmp_path / "missing.ckpt"), "--real", str(tmp_path), "--geometry"]
    assert main([*argv, *flags]) == 2
    assert message in capsys.readouterr().err
