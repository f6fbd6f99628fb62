"""Running cost that keeps rollouts off land and obstacles (nav2 MPPI obstacle critic style).

Reads the workspace's signed distance to land [m] (positive in water). Inside the
``clearance`` a state collides: a hard penalty that grows with the penetration so that
sampled rollouts still rank by how deep they go. Within ``margin`` beyond the clearance a
quadratic barrier pushes rollouts towards open water.
"""
from __future__ import annotations

import torch

from ..raster import Raster


def land_cost(xy: torch.Tensor, distance: Raster, clearance: torch.Tensor | float,
              margin: float, collision_weight: float, barrier_weight: float) -> torch.Tensor:
    """Cost of being at ``xy``: collision penalty + near-land barrier.

    Args:
        xy: [m] positions.
        distance: signed distance to land [m] (channel 0).
        clearance: [m] distance below which the state is a collision.
        margin: [m] width of the barrier band beyond the clearance.
        collision_weight: cost of a collision (plus this much per metre of penetration).
        barrier_weight: cost at the inner edge of the barrier band (0 at its outer edge).

    Returns:
        cost per position [cost units].

    Shapes:
        xy ``(..., 2)`` -> ``(...)``.
    """
    gap = distance.sample(xy)[..., 0] - clearance
    inside = (-gap).clamp(min=0.0)
    collision = collision_weight * (gap < 0.0).to(gap.dtype) * (1.0 + inside)
    barrier = barrier_weight * ((margin - gap.clamp(min=0.0)).clamp(min=0.0) / margin).square()
    return collision + barrier
