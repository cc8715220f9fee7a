"""GRAF and pi-GAN: generative radiance fields rendered through :mod:`renderers` (see docs/graf.md).

Modules: ``encoding`` (positional encoding), ``field`` (``RadianceField``, ``GRAFField``), ``pigan``
(``PiGANField``), ``generator`` (``Generator``), ``discriminator`` (``PatchDiscriminator``), ``losses``,
``patches`` (patch-scale annealing), ``fast`` (occupancy-grid rendering), ``build`` (networks from hyper-parameters).
Meshes and turntables of a field are written by :mod:`gen3d.export.field`.
"""

from gen3d.models.graf.discriminator import PatchDiscriminator
from gen3d.models.graf.encoding import PositionalEncoding
from gen3d.models.graf.field import GRAFField, RadianceField
from gen3d.models.graf.generator import Generator
from gen3d.models.graf.losses import d_loss_logistic, g_loss_nonsaturating, r1_penalty
from gen3d.models.graf.patches import graf_min_scale
from gen3d.models.graf.pigan import PiGANField

__all__ = [
    "GRAFField",
    "Generator",
    "PatchDiscriminator",
    "PiGANField",
    "PositionalEncoding",
    "RadianceField",
    "d_loss_logistic",
    "g_loss_nonsaturating",
    "graf_min_scale",
    "r1_penalty",
]
