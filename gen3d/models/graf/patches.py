"""GRAF's patch sampling schedule (``FlexGridRaySampler`` in ``graf/transforms.py``).

Each training image is seen through a K x K grid of rays with a random scale ``s ~ U(s_min(t), s_max)``
(s = 1 spans the whole image) and a random shift keeping the patch inside the image
(:func:`renderers.sample_patch_grid`). The smallest scale is annealed from coarse to fine:
``s_min(t) = min(0.9, max(min_scale, max_scale * exp(-k * anneal)))`` with ``k = 3 * (t // 1000)``
(GRAF's code; ``anneal <= 0`` disables annealing).
"""

from __future__ import annotations

import math


def graf_min_scale(iteration: int, min_scale: float = 0.25, max_scale: float = 1.0, anneal: float = 0.0025) -> float:
    """The smallest patch scale at ``iteration`` (GRAF: min_scale 0.25, max_scale 1, scale_anneal 0.0025).

    Args:
        iteration: training iteration (0-based).
        min_scale: asymptotic smallest scale.
        max_scale: largest scale.
        anneal: decay rate per "k" (see module docstring); <= 0 returns ``min_scale`` at once.

    Returns:
        The current lower bound of the scale distribution.
    """
    if anneal <= 0:
        return float(min_scale)
    k = (int(iteration) // 1000) * 3
    return min(0.9, max(float(min_scale), float(max_scale) * math.exp(-k * anneal)))
