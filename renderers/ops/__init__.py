"""Native rendering ops, each with a pure-PyTorch twin (``<op>_ref``) and an ``impl`` switch.

- :func:`composite`: fused volume compositing (forward + analytic backward) with early termination.
- :func:`raymarch`: batched ray marching through per-scene occupancy bitfields with empty-space skipping.

``impl="auto"`` uses the compiled ``renderers_ops`` extension when it builds (on first use, cached) and the
reference otherwise; ``GEN3D_NO_NATIVE=1`` forces the reference.
"""

from renderers.ops.composite import DEFAULT_EPS, composite, composite_ref
from renderers.ops.raymarch import pack_bits, raymarch, raymarch_ref, unpack_bits

__all__ = ["DEFAULT_EPS", "composite", "composite_ref", "raymarch", "raymarch_ref", "pack_bits", "unpack_bits"]
