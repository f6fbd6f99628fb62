"""Running reward for visiting places the map is unsure about (informative sampling).

Samples the map's uncertainty raster (1-sigma of the mapped quantity, channel 0) along
the path; the optimiser subtracts it, weighted, from the cost.
"""
from __future__ import annotations

import torch

from ..raster import Raster


def information_gain(xy: torch.Tensor, information: Raster, dt: float) -> torch.Tensor:
    """Map uncertainty at ``xy`` times the step length ``dt`` [s] (uncertainty * s).

    Shapes:
        xy ``(..., 2)`` -> ``(...)``.
    """
    return information.sample(xy)[..., 0] * dt
