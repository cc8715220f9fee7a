"""Lazy package attributes (PEP 562): a package's public names imported on first access."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names are imported from submodules when first used.

    Args:
        package: the package's ``__name__``.
        names: public name -> module that defines it.

    Returns:
        ``(__getattr__, __dir__)``; assign them at the package's top level. A name, once imported, is stored
        in the package, so later lookups skip ``__getattr__``.

    Example:
        >>> __getattr__, __dir__ = lazy_attributes(__name__, {"save_png": "gen3d.export.images"})
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
