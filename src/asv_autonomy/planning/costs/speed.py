"""Running cost of speed over a limit (GPS lost -> slow down and hold)."""
from __future__ import annotations

import torch


def overspeed(state: torch.Tensor, max_speed: torch.Tensor | float, dt: float) -> torch.Tensor:
    """Squared excess of the speed over ground above ``max_speed`` [m/s], times ``dt`` [s]
    ((m/s)^2 s; 0 below the limit, and for ``max_speed = inf``).

    Shapes:
        state ``(..., 6)`` -> ``(...)``.
    """
    speed = state[..., 3:5].norm(dim=-1)
    return (speed - max_speed).clamp(min=0.0).square() * dt
