"""Lazy build and loading of gen3d's native (C++/OpenMP and CUDA) extensions.

Importing a module never compiles anything. The first call that needs a native op builds it with
``torch.utils.cpp_extension.load`` (ninja), caching the result under the gen3d cache directory keyed by a
hash of the sources, so later processes load it in milliseconds. Before compiling an extension that is not in
that cache, one line goes to stderr (``gen3d: building native kernels (~30 s, once): NAME``). If no compiler works,
a single warning is issued and callers fall back to their pure-PyTorch reference.

Environment:
    GEN3D_NO_NATIVE=1   never build or load native code; every op uses its reference.
    GEN3D_CACHE_DIR     where builds are cached (default: ``$XDG_CACHE_HOME/gen3d`` or ``~/.cache/gen3d``).

The public native-build helper of ``renderers``, also used by ``gen3d.metrics`` (``gen3d`` may import
``renderers``, never the reverse).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch

__all__ = ["cache_dir", "native_disabled", "is_built", "load_extension", "resolve_impl", "cuda_toolkit_available"]

_LOCK = threading.Lock()
_LOADED: dict[str, ModuleType | None] = {}
_SOURCE_SUFFIXES = (".h", ".hpp", ".cuh", ".cpp", ".cc", ".cu")
IMPLS = ("auto", "native", "torch")


def native_disabled() -> bool:
    """True when ``GEN3D_NO_NATIVE`` asks for the PyTorch references only."""
    return os.environ.get("GEN3D_NO_NATIVE", "").strip() not in ("", "0", "false", "False")


def cache_dir() -> Path:
    """Root of gen3d's on-disk cache (native builds, feature statistics)."""
    env = os.environ.get("GEN3D_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gen3d"


def cuda_toolkit_available() -> bool:
    """True when nvcc can be found (CUDA_HOME or on PATH)."""
    return bool(os.environ.get("CUDA_HOME") or shutil.which("nvcc"))


def _digest(files: Sequence[Path], flags: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(torch.__version__.encode())
    for flag in flags:
        h.update(flag.encode())
    for path in sorted(set(files)):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _tree_files(sources: Sequence[Path]) -> list[Path]:
    """All source/header files in the directories of ``sources`` (headers change builds too)."""
    dirs = {p.parent for p in sources}
    files = []
    for d in dirs:
        files += [p for p in d.rglob("*") if p.suffix in _SOURCE_SUFFIXES]
    return files


def is_built(build_dir: Path, module_name: str) -> bool:
    """True when ``build_dir`` holds the compiled library of ``module_name`` (loading it compiles nothing)."""
    suffix = ".pyd" if sys.platform == "win32" else ".so"
    return (build_dir / f"{module_name}{suffix}").is_file()


def load_extension(
    name: str,
    sources: Sequence[str | os.PathLike],
    cuda_sources: Sequence[str | os.PathLike] = (),
    *,
    verbose: bool = False,
) -> ModuleType | None:
    """Build (on first use) and load a native extension; ``None`` when native code is unavailable.

    Args:
        name: extension name, unique per set of sources (e.g. ``"renderers_ops"``).
        sources: C++ sources (bindings and CPU kernels).
        cuda_sources: CUDA twins; compiled and linked (with ``-DWITH_CUDA``) only when a GPU and nvcc exist.
        verbose: print the compiler's output.

    Returns:
        The loaded module, or ``None`` after warning once (build failed, or ``GEN3D_NO_NATIVE=1``).
    """
    if native_disabled():
        return None
    with _LOCK:
        if name in _LOADED:
            return _LOADED[name]
        srcs = [Path(s).resolve() for s in sources]
        cu = [Path(s).resolve() for s in cuda_sources]
        with_cuda = bool(cu) and torch.cuda.is_available() and cuda_toolkit_available()
        cflags = ["-O3", "-fopenmp"] + (["-DWITH_CUDA"] if with_cuda else [])
        cuda_flags = ["-O3", "--use_fast_math", "-DWITH_CUDA"] if with_cuda else []
        all_sources = srcs + (cu if with_cuda else [])
        digest = _digest(_tree_files(all_sources), cflags + cuda_flags)
        build_dir = cache_dir() / "torch_extensions" / f"{name}-{digest}"
        module_name = f"{name}_{digest[:8]}"
        module = None
        try:
            from torch.utils.cpp_extension import load

            build_dir.mkdir(parents=True, exist_ok=True)
            if not is_built(build_dir, module_name):
                print(f"gen3d: building native kernels (~30 s, once): {name}", file=sys.stderr, flush=True)
            module = load(
                name=module_name,
                sources=[str(s) for s in all_sources],
                extra_cflags=cflags,
                extra_cuda_cflags=cuda_flags,
                extra_ldflags=["-fopenmp"],
                build_directory=str(build_dir),
                with_cuda=with_cuda,
                verbose=verbose,
            )
        except Exception as exc:  # compiler missing, build error, ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            warnings.warn(
                f"gen3d: could not build the native extension {name!r} ({type(exc).__name__}: {first[:300]}); "
                "falling back to the PyTorch reference implementation, which is much slower. "
                "Set GEN3D_NO_NATIVE=1 to use the reference without trying to build.",
                RuntimeWarning,
                stacklevel=3,
            )
        _LOADED[name] = module
        return module


def resolve_impl(impl: str, loader) -> ModuleType | None:
    """Turn an ``impl`` switch into a native module (or ``None`` for the torch reference).

    Args:
        impl: ``"auto"`` (native when it builds, else the reference), ``"native"`` (error if it cannot
            be had) or ``"torch"`` (always the reference).
        loader: zero-argument callable returning the native module or ``None``.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "torch":
        return None
    module = loader()
    if module is None and impl == "native":
        reason = "GEN3D_NO_NATIVE is set" if native_disabled() else "the build failed (see the warning above)"
        raise RuntimeError(f"impl='native' was requested but the native extension is unavailable: {reason}")
    return module
