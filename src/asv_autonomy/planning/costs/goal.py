"""Terminal cost: how far the end of a rollout still is from the goal [s].

With an MDP solution the value-to-go raster (channel 0, cost units: seconds plus
weighted energy) tells the remaining cost from anywhere, around land and through
currents; without one the straight-line distance over a nominal speed stands in.
"""
from __future__ import annotations

import torch

from ..raster import Raster


def value_to_go(xy: torch.Tensor, value: Raster) -> torch.Tensor:
    """Value-to-go [cost units] sampled (bilinear) from channel 0 of ``value``.

    Shapes:
        xy ``(..., 2)`` -> ``(...)``.
    """
    return value.sample(xy)[..., 0]


def time_to_goal(xy: torch.Tensor, goal: torch.Tensor,
                 nominal_speed: torch.Tensor | float) -> torch.Tensor:
    """[s] straight-line distance to ``goal`` [m] covered at ``nominal_speed`` [m/s].

    Shapes:
        xy ``(..., 2)``, goal ``(2,)``, nominal_speed ``()`` -> ``(...)``.
    """
    return (xy - goal).norm(dim=-1) / nominal_speed
