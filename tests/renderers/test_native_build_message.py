"""The first build of a native extension announces itself on stderr, once; a cached build loads silently."""

from __future__ import annotations

import types

import pytest

from renderers import native


@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    """``torch.utils.cpp_extension.load`` replaced by a stand-in that writes the library file it would build."""
    import torch.utils.cpp_extension as cpp

    monkeypatch.setenv("GEN3D_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GEN3D_NO_NATIVE", raising=False)
    builds = []

    def load(name, sources, build_directory, **kwargs):
        builds.append(name)
        (tmp_path / "cache").mkdir(exist_ok=True)
        open(f"{build_directory}/{name}.so", "wb").close()
        return types.SimpleNamespace(name=name)

    monkeypatch.setattr(cpp, "load", load)
    src = tmp_path / "src" / "ext.cpp"
    src.parent.mkdir()
    src.write_text("// a source\n")
    yield src, builds
    native._LOADED.pop("gen3d_test_ext", None)


def test_first_build_prints_one_line_then_cached_builds_are_silent(fake_build, capsys):
    src, builds = fake_build
    assert native.load_extension("gen3d_test_ext", [src]) is not None
    assert native.load_extension("gen3d_test_ext", [src]) is not None  # same process: loaded once
    err = capsys.readouterr().err
    assert err.count("building native kernels (~30 s, once)") == 1 and "gen3d_test_ext" in err
    native._LOADED.pop("gen3d_test_ext")  # a new process: the library is on disk
    assert native.load_extension("gen3d_test_ext", [src]) is not None
    assert "building native kernels" not in capsys.readouterr().err
    assert len(builds) == 2


def test_renderers_says_it_is_gen3ds():
    import renderers

    assert renderers.__gen3d__ is True
