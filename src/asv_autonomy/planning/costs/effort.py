"""Running cost of thruster effort: electrical energy [J] spent over a step."""
from __future__ import annotations

import torch

from ..vessel import VesselParams, thruster_power


def energy(thrust: torch.Tensor, thrust_efficiency: torch.Tensor, dt: float,
           params: VesselParams) -> torch.Tensor:
    """[J] energy drawn over ``dt`` [s] while delivering ``thrust * thrust_efficiency`` [N].

    Shapes:
        thrust ``(..., 2)``, thrust_efficiency ``(2,)`` -> ``(...)``.
    """
    return thruster_power(thrust * thrust_efficiency, params) * dt
