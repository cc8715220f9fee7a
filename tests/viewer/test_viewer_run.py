"""A run folder in the viewer: entries grouped by kind, every checkpoint a model, the CLI's sampling options, and the
mesh of a radiance field."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from gen3d.cli.main import build_parser
from gen3d.cli.sample import SAMPLERS
from gen3d.errors import InputError
from gen3d.viewer import build_viewer
from gen3d.viewer.content import DATA_PER_SPLIT, open_input

pytest.importorskip("gen3d.lit.graf_module")
pytest.importorskip("gen3d.lit.lion_module")

DATA = {("chair", "train"): 7, ("chair", "val"): 2, ("chair", "test"): 1, ("mug", "train"): 3}


def _cloud(rng, n=64) -> np.ndarray:
    return rng.normal(size=(n, 3)).astype(np.float32)


@pytest.fixture
def run(tmp_path, lion_module_factory, save_module, graf_module):
    """A run folder laid out like the demo's, tiny: a dataset, samples with PLY copies, dataset previews, a mesh,
    and the checkpoints of both LION stages and of the GAN."""
    import trimesh

    from gen3d.data.io import save_points

    rng = np.random.default_rng(0)
    run = tmp_path / "demo"
    for (cls, split), n in DATA.items():
        (run / "data" / cls / split).mkdir(parents=True)
        for i in range(n):
            np.save(run / "data" / cls / split / f"{i:05d}.npy", _cloud(rng))
    samples = np.stack([_cloud(rng) for _ in range(3)])
    np.savez(run / "samples.npz", points=samples)
    for i, cloud in enumerate(samples):  # the same shapes again, one PLY each
        save_points(run / "ply" / f"sample_{i}.ply", cloud)
    first = np.load(run / "data" / "chair" / "train" / "00000.npy")
    save_points(run / "ply" / "chair_0.ply", first[:16])  # a preview: the start of a training cloud
    # gen3d sample's layout: sampler.json marks ply/ as the copies of samples.npz
    (run / "sampled" / "ply").mkdir(parents=True)
    np.savez(run / "sampled" / "samples.npz", points=np.stack([_cloud(rng) for _ in range(2)]))
    (run / "sampled" / "sampler.json").write_text(json.dumps({"name": "ddpm"}))
    for i in range(2):
        (run / "sampled" / "ply" / f"sample_{i}.ply").write_bytes(b"not read")
    (run / "graf").mkdir()
    trimesh.creation.icosphere(subdivisions=1).export(run / "graf" / "mesh.ply")
    save_module(graf_module, run / "graf" / "graf.ckpt")
    save_module(lion_module_factory("vae"), run / "vae" / "checkpoints" / "last.ckpt")
    prior = save_module(lion_module_factory("prior"), run / "prior" / "checkpoints" / "last.ckpt")
    os.utime(prior, (prior.stat().st_mtime + 10,) * 2)  # the prior is trained after the VAE
    return run


def _press(button) -> None:
    for callback in button._impl.update_cb:
        callback(None)


def test_a_run_is_browsed_by_group(run):
    app = build_viewer(run, port=0, data_per_split=4).start()
    try:
        g = app._gui
        assert app.groups() == {"Samples": 5, "Training data": 4 + 2 + 1 + 3, "Meshes": 1, "Checkpoints": 3}
        assert g["group"].options == (
            "Samples (5)",
            "Training data (10 of 13)",
            "Meshes (1)",
            "Checkpoints (3)",
        )
        # each shape once: the set, not its PLY copies; the preview is the training cloud it starts
        assert app.entries("Samples") == [f"samples.npz [{i}]" for i in range(3)] + [
            f"sampled/samples.npz [{i}]" for i in range(2)
        ]
        assert not any(item.source.parent.name == "ply" for item in app.items if item.source is not None)
        assert sorted(app.content.copies) == [
            "ply/chair_0.ply: the same shape as data/chair/train/00000.npy",
            *(f"ply/sample_{i}.ply: the same shape as samples.npz [{i}]" for i in range(3)),
            *(f"sampled/ply/sample_{i}.ply: a copy of a shape in sampled/samples.npz" for i in range(2)),
        ]
        clouds = [item.points for item in app.items if item.mesh is None]
        assert len({c.tobytes() for c in clouds}) == len(clouds)

        # training data: the first 4 per class and split, by class then split, with the counts
        assert app.entries("Training data") == [
            *(f"data/chair/train/{i:05d}.npy" for i in range(4)),
            "data/chair/val/00000.npy",
            "data/chair/val/00001.npy",
            "data/chair/test/00000.npy",
            *(f"data/mug/train/{i:05d}.npy" for i in range(3)),
        ]
        assert app.content.data == {
            "data/chair/train": (4, 7),
            "data/chair/val": (2, 2),
            "data/chair/test": (1, 1),
            "data/mug/train": (3, 3),
        }

        fewer = open_input(run, data_per_split=1)
        assert fewer.data["data/chair/train"] == (1, 7) and len(fewer.items) == len(app.items) - 6
        assert build_parser().parse_args(["view", str(run)]).data_per_split == DATA_PER_SPLIT == 4

        # the group dropdown switches the list; the slider and the entry dropdown move within the group
        g["group"].value = "Training data (10 of 13)"
        assert app.current.label == "data/chair/train/00000.npy" and g["slider"].max == 9
        g["slider"].value = 5
        assert app.current.label == "data/chair/val/00001.npy" and g["dropdown"].value.startswith("005")
        assert "`data/chair/val`: the first 2 of its 2 clouds" in g["info"].content
        g["group"].value = "Meshes (1)"
        assert app.current.kind == "mesh" and g["dropdown"].options == ("000  graf/mesh.ply",)
        assert g["slider"].disabled
        app.select(0)
        assert g["group"].value == "Samples (5)" and app.current.label == "samples.npz [0]"
    finally:
        app.stop()


def test_every_checkpoint_is_a_model_opened_when_chosen(run):
    app = build_viewer(run, port=0)
    # last.ckpt first, the newest first: the prior is opened at start, the others are not loaded yet
    assert [m.label for m in app.models] == [
        "prior/checkpoints/last.ckpt",
        "vae/checkpoints/last.ckpt",
        "graf/graf.ckpt",
    ]
    assert app.model_index == 0 and app.sample_source is not None and app.field_source is None
    assert [m.source is None for m in app.models] == [False, True, True]
    app.start()
    try:
        g = app._gui
        assert g["generate_folder"].visible and not g["render_folder"].visible and app.last_render is None
        # the Checkpoints group of the browser lists the models; choosing the GAN's opens it with an orbit view
        g["group"].value = "Checkpoints (3)"
        assert g["dropdown"].options == (
            "000  prior/checkpoints/last.ckpt (points)",
            "001  vae/checkpoints/last.ckpt",
            "002  graf/graf.ckpt",
        )
        g["dropdown"].value = "002  graf/graf.ckpt"
        assert app.model.label == "graf/graf.ckpt" and app.field_source is not None and app.sample_source is None
        assert g["render_folder"].visible and not g["generate_folder"].visible
        assert g["model"].value == "graf/graf.ckpt (field)"
        assert app.last_render is not None and app.last_render.shape == (64, 64, 3)
        np.testing.assert_array_equal(g["render_image"].image, app.last_render)
        assert "orbit view" in g["status"].content

        # the VAE stage cannot generate: the panel says why and the GAN stays the model
        g["model"].value = "vae/checkpoints/last.ckpt"
        assert "VAE" in g["status"].content and app.model.label == "graf/graf.ckpt"
        assert g["model"].value == "graf/graf.ckpt (field)"
        assert app.models[1].title == "vae/checkpoints/last.ckpt (unusable)"
        with pytest.raises(InputError, match="VAE"):
            app.select_model("vae/checkpoints/last.ckpt")

        app.select_model("prior/checkpoints/last.ckpt")  # loaded already: switching back is immediate
        assert g["generate_folder"].visible and not g["render_folder"].visible
        (item, *_) = app.generate(seed=1, n=2, sampler="ddim", steps=2)
        assert item.points.shape == (48, 3) and g["group"].value == "This session (2)"
    finally:
        app.stop()


def test_sampler_choices_and_defaults_are_the_clis(tmp_path, lion_module_factory, save_module, monkeypatch):
    from gen3d.diffusion import SAMPLERS as DIFFUSION_SAMPLERS
    from gen3d.inference.lion import DEFAULT_SAMPLER
    from gen3d.models.lion import LION
    from gen3d.pipelines.sample import sample_lion

    ckpt = save_module(lion_module_factory("prior", timesteps=120), tmp_path / "run" / "checkpoints" / "last.ckpt")
    cli = build_parser().parse_args(["sample", "--ckpt", str(ckpt), "--out", str(tmp_path / "out")])
    cli.sampler = cli.sampler or DEFAULT_SAMPLER  # unset on the command line: gen3d sample's fallback for LION
    app = build_viewer(ckpt, port=0).start()
    try:
        g = app._gui
        assert SAMPLERS == DIFFUSION_SAMPLERS and g["sampler"].options == SAMPLERS
        assert g["sampler"].value == cli.sampler and g["temperature"].value == cli.code_temperature
        assert g["temperature"].visible
        viewer_steps = {}
        for sampler in SAMPLERS:
            g["sampler"].value = sampler  # each sampler starts at its default steps
            viewer_steps[sampler] = int(g["steps"].value)
        g["sampler"].value = cli.sampler
        assert g["steps"].value == viewer_steps[cli.sampler]

        # the samples of the panel's settings are the ones gen3d sample writes
        g["seed"].value, g["count"].value, g["sampler"].value = 4, 2, "dpm-sde"
        g["steps"].value, g["temperature"].value = 3, 1.3
        _press(g["sample_button"])
        ref, _ = sample_lion(
            str(ckpt), 2, sampler="dpm-sde", steps=3, seed=4, code_temperature=1.3, progress=False, device="cpu"
        )
        np.testing.assert_allclose(np.stack([it.points for it in app.generated]), ref, rtol=0, atol=1e-6)
        assert "temperature 1.3" in app.generated[0].label
    finally:
        app.stop()

    # gen3d sample's default steps per sampler (its network call stubbed: only the sampler it builds matters)
    monkeypatch.setattr(LION, "sample", lambda self, n, smp, **kw: torch.zeros(n, 4, 3))
    cli_steps = {s: sample_lion(str(ckpt), 1, sampler=s, progress=False, device="cpu")[1] for s in SAMPLERS}
    assert viewer_steps == {s: smp.num_inference_steps for s, smp in cli_steps.items()}
    assert viewer_steps == {"ddpm": 120, "ddim": 50, "dpm": 50, "dpm-sde": 50}


def test_the_mesh_button_meshes_the_field(graf_ckpt, open_checkpoint_viewer):
    import trimesh

    from gen3d.export.mesh import evaluate_grid, marching_cubes_field

    path, _ = graf_ckpt
    app = open_checkpoint_viewer(path)
    g = app._gui
    assert app.last_render is not None  # a GAN checkpoint opens with an orbit view
    assert g["render_folder"].visible and app.items == []

    src = app.field_source
    grid = evaluate_grid(lambda p: src.density(p, seed=2), src.aabb, 20)
    level = float(0.5 * (grid.min() + grid.max()))  # an untrained field: a level its density crosses
    g["render_seed"].value, g["mesh_resolution"].value = 2, 20
    g["auto_level"].value, g["threshold"].value = False, level
    _press(g["mesh_button"])
    item = app.current
    assert item is app.field_mesh and item.kind == "mesh" and item.group == "This session"
    assert "Meshed the field" in g["status"].content and len(item.mesh.faces) > 0
    ref = marching_cubes_field(lambda xyz: src.density(xyz, seed=2), src.aabb, resolution=20, threshold=level)
    np.testing.assert_allclose(item.mesh.vertices, ref.vertices, atol=1e-6)
    np.testing.assert_array_equal(item.mesh.faces, ref.faces)
    assert g["dropdown"].options == (f"000  {item.label}",)

    # saved on request, into the viewer folder, never over a file
    g["name"].value = "field"
    _press(g["save_ply"])
    _press(g["save_ply"])
    out = path.parent.parent.resolve() / "viewer"
    assert sorted(p.name for p in out.iterdir()) == ["field.ply", "field_1.ply"]
    saved = trimesh.load(str(out / "field.ply"), force="mesh", process=False)
    assert len(saved.faces) == len(item.mesh.faces)

    # a level the density never reaches is refused with the range to pick from; the automatic level always works
    g["threshold"].value = 1e6
    _press(g["mesh_button"])
    assert "ranges over" in g["status"].content and app.current is item
    auto = app.mesh_field(seed=2, resolution=12)
    assert len(auto.mesh.faces) > 0 and app.field_mesh is auto
