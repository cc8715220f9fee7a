"""A voxel-grid radiance field: a 3D conv generator from the code to a ``C x R^3`` grid, trilinear lookups.

The code ``z`` is mapped to a ``4^3`` volume by a linear layer and grown to ``R^3`` by ``x2`` transposed
3D convolution + LeakyReLU(0.2) stages (:class:`~gen3d.models.graf.triplane.ConvVolumeGenerator`), then a
1x1x1 convolution gives ``C`` channels. Points are interpolated trilinearly and decoded by a tiny MLP, or, with
``decoder_width=0``, read directly (channel 0 the raw density, 1-3 the colour logits), as voxel-grid GANs
(PlatonicGAN, HoloGAN-style volumes) store them.
"""

from __future__ import annotations

from jaxtyping import Float, Int
from torch import Tensor

from gen3d.models.graf.feature_fields import FeatureDecoder, FeatureField, linear_lookup
from gen3d.models.graf.triplane import ConvVolumeGenerator


class VoxelField(FeatureField):
    """Voxel-grid field (see the module docstring).

    Args:
        z_dim: latent dimension.
        channels: feature channels per voxel ``C`` (at least 4 for direct decoding).
        resolution: grid side ``R``.
        base_channels: conv generator channels at 4^3.
        min_channels: lower bound of the conv generator's channels.
        decoder_width: decoder hidden width, or 0 for direct decoding.
        bound: half side of the field's cube.
        view_dependent: colour depends on the viewing direction (needs a decoder).
        dir_freqs: octaves of the direction encoding when view-dependent.
        density_shift: added to the raw density before the softplus.
        colour_code: add a per-scene colour offset, a linear map of ``z`` (see ``FeatureField``).
    """

    def __init__(
        self,
        z_dim: int = 64,
        channels: int = 8,
        resolution: int = 32,
        base_channels: int = 64,
        min_channels: int = 16,
        decoder_width: int = 16,
        bound: float = 0.6,
        view_dependent: bool = False,
        dir_freqs: int = 2,
        density_shift: float = -1.0,
        colour_code: bool = False,
    ):
        super().__init__(z_dim, bound, density_shift, colour_code)
        self.channels, self.resolution = int(channels), int(resolution)
        self.backbone = ConvVolumeGenerator(3, self.z_dim, self.channels, self.resolution, base_channels, min_channels)
        self.decoder = FeatureDecoder(self.channels, decoder_width, view_dependent, dir_freqs)

    def volume(self, z: Float[Tensor, "B Z"]) -> Tensor:
        """The grid, channels last: ``(B, R, R, R, C)``, indexed ``[b, i, j, k]`` = point ``(x_i, y_j, z_k)``."""
        return self.backbone(z).permute(0, 2, 3, 4, 1).contiguous()

    def features(self, volume: Tensor, xn: Float[Tensor, "M 3"], scene: Int[Tensor, " M"]) -> Float[Tensor, "M C"]:
        """Trilinear features of ``xn``."""
        return linear_lookup(volume, xn, scene)
