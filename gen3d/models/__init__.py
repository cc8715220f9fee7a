"""Neural network modules (``nn.Module`` only): ``gen3d.models.lion``, ``gen3d.models.graf``, ...

Subpackages are imported on demand so that one model family never pays for another's imports.
"""
