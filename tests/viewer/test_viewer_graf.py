"""GRAF checkpoints in the viewer and in ``gen3d export``: the field adapter against GRAF's own API."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("gen3d.lit.graf_module")


def test_adapter_renders_and_queries_the_same_scene_as_graf(graf_ckpt):
    import renderers
    from gen3d.export.raster import orbit_poses
    from gen3d.inference.sources import FieldSource, load_checkpoint_source

    path, module = graf_ckpt
    source = load_checkpoint_source(path)
    assert isinstance(source, FieldSource)
    assert source.radius == pytest.approx(2.5) and source.aabb == (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0)

    # The viewer's camera at azimuth 0 on the horizon sits on +z (y up), which is GRAF's -y (z up).
    image = source.render(orbit_poses(1, 2.5, elevation_deg=0.0)[0], 16, 16, seed=3)
    z = module.generator_ema.field.sample_z(1, generator=torch.Generator().manual_seed(3), device="cpu")
    c2w = renderers.look_at(torch.tensor([[0.0, -2.5, 0.0]]))  # GRAF's own look-at, z up
    ref = module.generator_ema.render(z, c2w, size=16)["rgb"][0].permute(1, 2, 0)  # (16, 16, 3) in [-1, 1]
    np.testing.assert_allclose(image, ((ref + 1) / 2).numpy(), atol=1e-6)
    assert image.shape == (16, 16, 3) and image.min() >= 0.0 and image.max() <= 1.0

    xyz = torch.tensor([[0.1, 0.2, 0.3], [-0.4, 0.0, 0.25]])  # y up
    ref_sigma = module.generator_ema.field.density(torch.tensor([[[0.1, -0.3, 0.2], [-0.4, -0.25, 0.0]]]), z)[0]
    torch.testing.assert_close(source.density(xyz, seed=3), ref_sigma)


def test_viewer_opens_a_graf_checkpoint(graf_ckpt, open_checkpoint_viewer):
    path, _ = graf_ckpt
    app = open_checkpoint_viewer(path)
    assert app.field_source is not None and app.sample_source is None
    image = app.render_view(30.0, 20.0, resolution=16)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(app._gui["render_image"].image, image)


def test_export_mesh_and_turntable_from_a_graf_checkpoint(graf_ckpt, tmp_path):
    import trimesh
    from PIL import Image

    from gen3d.cli.main import main
    from gen3d.export.mesh import evaluate_grid
    from gen3d.inference.sources import load_checkpoint_source

    path, _ = graf_ckpt
    source = load_checkpoint_source(path)
    grid = evaluate_grid(lambda p: source.density(p, seed=1), source.aabb, 32)
    level = float(0.5 * (grid.min() + grid.max()))  # an untrained field: pick a level the density crosses
    assert grid.max() > grid.min()

    out = tmp_path / "field.ply"
    args = ["export", "mesh", str(path), str(out), "--resolution", "32", "--threshold", f"{level}", "--seed", "1"]
    assert main(args) == 0
    mesh = trimesh.load(str(out), force="mesh", process=False)
    assert mesh.is_watertight and len(mesh.faces) > 0
    step = 2.0 / 31
    assert np.all(np.abs(mesh.vertices) <= 1.0 + 1e-3 * step)  # caps on the box faces
    # Vertices inside the box lie on the level set: the field there is close to the level.
    interior = np.all(np.abs(mesh.vertices) < 1.0 - 1e-3 * step, axis=1)
    assert interior.sum() > 10
    sigma = source.density(torch.as_tensor(mesh.vertices[interior], dtype=torch.float32), seed=1).numpy()
    spread = float(grid.max() - grid.min())
    assert np.median(np.abs(sigma - level)) < 0.02 * spread

    assert (
        main(["export", "mesh", str(path), str(tmp_path / "none.obj"), "--threshold", "1e9", "--resolution", "16"]) == 2
    )
    gif = tmp_path / "orbit.gif"
    assert main(["export", "turntable", str(path), str(gif), "--frames", "3", "--size", "16"]) == 0
    with Image.open(gif) as im:
        assert im.size == (16, 16) and im.n_frames == 3
