"""The dataset preparation scripts on small fixtures in their real source formats."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

from gen3d.data.datasets import PC15kDataset

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _off(mesh, quirk):
    counts = f"{len(mesh.vertices)} {len(mesh.faces)} 0"
    head = f"OFF{counts}\n" if quirk else f"OFF\n{counts}\n"
    v = "\n".join(" ".join(f"{c:.6f}" for c in row) for row in mesh.vertices)
    f = "\n".join("3 " + " ".join(map(str, row)) for row in mesh.faces)
    return head + v + "\n" + f + "\n"


def test_prepare_modelnet40(tmp_path, capsys):
    src = tmp_path / "ModelNet40"
    tall = trimesh.creation.box(extents=[1.0, 0.5, 4.0])  # z-up source: tallest along z
    for split, n in (("train", 2), ("test", 1)):
        (src / "lamp" / split).mkdir(parents=True)
        for i in range(n):
            (src / "lamp" / split / f"lamp_{i:04d}.off").write_text(_off(tall, quirk=i == 0))
    (src / "lamp" / "train" / "lamp_9999.off").write_text("OFF\n3 1 0\n")  # broken: skipped and reported
    out = tmp_path / "pc"
    script = _script("prepare_modelnet40")
    assert script.main(["--src", str(src), "--out", str(out), "--points", "600"]) == 0
    captured = capsys.readouterr()
    assert "wrote 3 clouds" in captured.out and "lamp_9999.off: truncated OFF file" in captured.err
    cloud = np.load(out / "lamp" / "train" / "lamp_0000.npy")
    assert cloud.shape == (600, 3) and cloud.dtype == np.float32
    ext = cloud.max(axis=0) - cloud.min(axis=0)
    assert ext[1] == pytest.approx(1.0, abs=1e-6)  # z-up turned y-up, box-normalised: the tall axis is y
    np.testing.assert_allclose(ext, [0.25, 1.0, 0.125], atol=0.01)
    first = (out / "lamp" / "train" / "lamp_0000.npy").read_bytes()
    assert script.main(["--src", str(src), "--out", str(out), "--points", "600"]) == 0
    assert (out / "lamp" / "train" / "lamp_0000.npy").read_bytes() == first  # seeded per file
    ds = PC15kDataset(out, ["lamp"], "test", tr_sample_size=300, te_sample_size=100)
    assert len(ds) == 1 and ds[0]["test_points"].shape == (100, 3)
    assert script.main(["--src", str(tmp_path / "none"), "--out", str(out)]) == 2


def test_prepare_shapenet_pc15k(tmp_path, capsys):
    from gen3d.data import shapes

    shapes.build_dataset(tmp_path / "pc", "chair", per_class=3, points=15000)
    script = _script("prepare_shapenet_pc15k")
    assert script.main(["--root", str(tmp_path / "pc"), "--json", str(tmp_path / "s.json")]) == 0
    assert "ok: 3 clouds validated" in capsys.readouterr().out
    assert (tmp_path / "s.json").is_file()
    np.save(tmp_path / "pc" / "chair" / "train" / "bad.npy", np.zeros((100, 2), np.float32))
    assert script.main(["--root", str(tmp_path / "pc")]) == 2
    err = capsys.readouterr().err
    assert "bad.npy" in err and err.count("\n") == 1


def test_prepare_cgal_meshes_from_a_tarball(tmp_path, capsys):
    tarball = tmp_path / "data.tar.gz"
    box = trimesh.creation.box()
    members = {
        "data/meshes/cube.off": _off(box, quirk=False).encode(),
        "data/meshes/tri.ply": trimesh.exchange.ply.export_ply(box),
        "data/points_3/cloud.xyz": b"0 0 0\n",
        "data/images/x.inr": b"binary",
        "../evil.off": _off(box, quirk=False).encode(),
    }
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "cgal"
    script = _script("prepare_cgal_meshes")
    assert script.main(["--tarball", str(tarball), "--out", str(out)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "meshes/cube.off",
        "meshes/tri.ply",
    ]
    assert not (tmp_path / "evil.off").exists()
    assert "2 load as triangle meshes" in capsys.readouterr().out
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    assert script.main(["--tarball", str(tmp_path / "junk.tar.gz"), "--out", str(out)]) == 2


@pytest.mark.skipif(
    not Path("/usr/share/doc/libcgal-dev/data.tar.gz").is_file(), reason="libcgal-demo is not installed"
)
@pytest.mark.slow
def test_prepare_cgal_meshes_real_package(tmp_path, capsys):
    script = _script("prepare_cgal_meshes")
    assert script.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "meshes" / "elephant.off").is_file()
    assert "load as triangle meshes" in capsys.readouterr().out
