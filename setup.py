"""Build settings that pyproject.toml cannot express.

setuptools builds wheels through a ``build/`` folder in the source tree; here it is a temporary folder instead,
removed when the build ends, so ``pip wheel .`` and ``python -m build`` leave no ``build/`` behind. Everything
else (metadata, dependencies, package data) is in pyproject.toml.
"""

import atexit
import shutil
import tempfile

from setuptools import setup
from setuptools.command.build import build


class TemporaryBuild(build):
    """setuptools' ``build`` with ``build_base`` in a temporary folder (``--build-base`` still overrides it)."""

    def initialize_options(self) -> None:
        super().initialize_options()
        self.build_base = tempfile.mkdtemp(prefix="gen3d-build-")
        atexit.register(shutil.rmtree, self.build_base, ignore_errors=True)


setup(cmdclass={"build": TemporaryBuild})
