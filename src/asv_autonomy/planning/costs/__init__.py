"""Cost terms of the sampling-based planner, one plain batched function per file
(nav2 MPPI critics style), and their weighted sum.

Cost units are seconds: the terminal value-to-go (or time to goal) is in seconds, energy
is priced in seconds per joule, time near or on land in seconds per second. The optimiser evaluates
:func:`running_cost` after every rollout step and :func:`terminal_cost` at the end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from ..rollout import Scene
from ..vessel import VesselParams
from .effort import energy
from .goal import time_to_goal, value_to_go
from .information import information_gain
from .land import land_cost
from .speed import overspeed

__all__ = ['CostWeights', 'running_cost', 'terminal_cost', 'energy', 'time_to_goal',
           'value_to_go', 'information_gain', 'land_cost', 'overspeed']


@dataclass(frozen=True)
class CostWeights:
    """Weights of the cost terms (all >= 0).

    Args:
        terminal: multiplier on the terminal value-to-go / time-to-goal [-].
        nominal_speed: [m/s] speed that converts the distance to the goal into time when
            no value-to-go raster is given (``Scene.max_speed`` when that is lower).
        energy: [s/J] price of thruster energy (1/500: 500 W costs as much as the time).
        collision: [s/s] per second spent inside the clearance (+ as much per metre inside).
        barrier: [s/s] per second at the clearance edge, falling to 0 at ``land_margin``.
        land_margin: [m] width of the near-land barrier band beyond the clearance.
        information: [s per (uncertainty * s)] reward for visiting uncertain map cells.
        overspeed: [s / ((m/s)^2 s)] cost of exceeding ``Scene.max_speed``.
    """

    terminal: float = 1.0
    nominal_speed: float = 1.2
    energy: float = 1.0 / 500.0
    collision: float = 1000.0
    barrier: float = 1.0
    land_margin: float = 10.0
    information: float = 0.0
    overspeed: float = 100.0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'CostWeights.{f.name} must be finite and >= 0, got {value}')
        for name in ('nominal_speed', 'land_margin'):
            if getattr(self, name) <= 0.0:
                raise ValueError(f'CostWeights.{name} must be > 0, got {getattr(self, name)}')


def running_cost(state: torch.Tensor, thrust: torch.Tensor, scene: Scene, weights: CostWeights,
                 dt: float, params: VesselParams) -> torch.Tensor:
    """Cost of one rollout step of ``dt`` [s] that ended in ``state`` with ``thrust``.

    Args:
        state: vessel states after the step.
        thrust: [N] delivered thrust after the step (before efficiency).

    Returns:
        cost per rollout [s].

    Shapes:
        state ``(K, 6)``, thrust ``(K, 2)`` -> ``(K,)``.
    """
    xy = state[..., :2]
    cost = dt * land_cost(xy, scene.distance, scene.clearance, weights.land_margin,
                          weights.collision, weights.barrier)
    cost = cost + weights.energy * energy(thrust, scene.thrust_efficiency, dt, params)
    cost = cost + weights.overspeed * overspeed(state, scene.max_speed, dt)
    if scene.information is not None and weights.information > 0.0:
        cost = cost - weights.information * information_gain(xy, scene.information, dt)
    return cost


def terminal_cost(state: torch.Tensor, scene: Scene, weights: CostWeights) -> torch.Tensor:
    """Cost-to-go [s] from the last rollout state: value-to-go, or time to the goal at the
    nominal speed or the scene's speed limit if lower (holding at 0.3 m/s with GPS lost, a
    metre away costs what it takes to come back at that speed).

    Shapes:
        state ``(K, 6)`` -> ``(K,)``.
    """
    xy = state[..., :2]
    if scene.value is not None:
        return weights.terminal * value_to_go(xy, scene.value)
    speed = torch.clamp(scene.max_speed, max=weights.nominal_speed)
    return weights.terminal * time_to_goal(xy, scene.goal, speed)
