"""gen3d: 3D-aware and point-cloud generative modelling.

Subpackages are imported on demand (``import gen3d.data``, ``import gen3d.metrics``, ...) so that
``import gen3d`` and the ``gen3d`` command stay fast.
"""

from gen3d.errors import Gen3DError, InputError

__version__ = "0.1.0"
__all__ = ["Gen3DError", "InputError", "__version__"]
