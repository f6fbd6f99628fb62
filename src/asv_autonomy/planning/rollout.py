"""Batched vessel dynamics for sampling-based planning: K rollouts advanced together.

One rollout step reads the water current from a flow :class:`Raster` (channels: east and
north mean [m/s], 1-sigma spread [m/s]) at each rollout's position, adds that rollout's
sampled disturbance (a standard-normal pair held over the horizon, scaled by the local
spread: one plausible "true" current per rollout) and advances the shared vessel model
(:func:`asv_autonomy.planning.vessel.step`, RK4 with the exact thruster lag).

Everything a rollout reads lives in a :class:`Scene` of tensors and rasters, so the
planner can replace the flow, the distance to land or the value-to-go between calls
without recompiling the ``torch.compile``-d step (shapes stay fixed per workspace).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .raster import Raster
from .vessel import VesselParams, step

#: [s] largest ``dt * drag_scale`` for which the vessel model's RK4 stays stable over every
#: state the rollouts' random thrust reaches (see :func:`asv_autonomy.planning.vessel.step`).
#: It was 0.5 s, from forward motion only: a rollout reversing at 1.2 m/s while turning
#: diverged to NaN within 6 steps of 0.5 s and took the whole optimisation down.
STABLE_STEP_S = 0.2

_NO_WIND = (0.0, 0.0)


@dataclass
class Scene:
    """Everything the rollout dynamics and the cost terms read, on the planner's device.

    Args:
        flow: current raster, 3 channels: east, north mean [m/s] and 1-sigma spread [m/s].
        distance: signed distance to the nearest land/obstacle [m] (positive in water).
        goal: [m] (x, y) goal position in ``map``.
        value: value-to-go raster (channel 0) [cost units, s]; ``None``: the terminal cost
            is the straight-line distance to the goal over the nominal speed.
        information: map uncertainty raster (1-sigma of the mapped quantity, channel 0);
            ``None``: no information reward.
        thrust_efficiency: per-thruster multiplier on the delivered force (1 healthy,
            0 failed).
        drag_scale: multiplier on hydrodynamic damping (0-d tensor).
        max_speed: [m/s] speed over ground above which the speed cost applies
            (0-d tensor, ``inf`` for no limit; GPS lost -> slow).
        clearance: [m] distance to land below which a state counts as a collision
            (0-d tensor; hull radius plus a safety margin).

    Shapes:
        goal ``(2,)``, thrust_efficiency ``(2,)``, drag_scale/max_speed/clearance ``()``.
    """

    flow: Raster
    distance: Raster
    goal: torch.Tensor
    value: Raster | None = None
    information: Raster | None = None
    thrust_efficiency: torch.Tensor | None = None
    drag_scale: torch.Tensor | None = None
    max_speed: torch.Tensor | None = None
    clearance: torch.Tensor | None = None

    def __post_init__(self):
        device, dtype = self.distance.values.device, self.distance.values.dtype

        def tensor(value, default):
            return torch.as_tensor(default if value is None else value, dtype=dtype,
                                   device=device)

        if self.flow.values.shape[0] != 3:
            raise ValueError(f'Scene.flow must have 3 channels (u, v, spread), got '
                             f'{self.flow.values.shape[0]}')
        self.goal = tensor(self.goal, None)
        self.thrust_efficiency = tensor(self.thrust_efficiency, (1.0, 1.0))
        self.drag_scale = tensor(self.drag_scale, 1.0)
        self.max_speed = tensor(self.max_speed, math.inf)
        self.clearance = tensor(self.clearance, 0.0)
        if self.goal.shape != (2,) or self.thrust_efficiency.shape != (2,):
            raise ValueError(f'Scene.goal and thrust_efficiency must have shape (2,), got '
                             f'{tuple(self.goal.shape)} and '
                             f'{tuple(self.thrust_efficiency.shape)}')
        if not float(self.drag_scale) > 0.0:
            raise ValueError(f'Scene.drag_scale must be > 0, got {float(self.drag_scale)}')


def stable_substeps(dt: float, drag_scale: float) -> int:
    """Number of RK4 sub-steps that keep one rollout step of ``dt`` [s] stable."""
    return max(1, math.ceil(dt * drag_scale / STABLE_STEP_S - 1e-9))


def sample_current(flow: Raster, xy: torch.Tensor, disturbance: torch.Tensor) -> torch.Tensor:
    """[m/s] water current (east, north) seen by each rollout: mean + spread * disturbance.

    Args:
        flow: raster with channels (u, v, spread) [m/s].
        xy: [m] positions.
        disturbance: standard-normal sample per rollout and component.

    Shapes:
        xy ``(..., 2)``, disturbance ``(..., 2)`` -> ``(..., 2)``.
    """
    sampled = flow.sample(xy)
    return sampled[..., :2] + sampled[..., 2:3] * disturbance


def rollout_step(state: torch.Tensor, thrust: torch.Tensor, command: torch.Tensor,
                 disturbance: torch.Tensor, scene: Scene, dt: float, params: VesselParams,
                 substeps: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Advance every rollout by ``dt`` [s] under its thrust command and current.

    The current is looked up once per sub-step at the sub-step's start position; there
    is no wind in the planning model.

    Args:
        state: vessel states (x, y, yaw, u, v, r), see :mod:`~asv_autonomy.planning.vessel`.
        thrust: [N] thrust each thruster delivers now (before efficiency; the lag state).
        command: [N] thrust command (saturated inside).
        disturbance: standard-normal current disturbance per rollout.
        scene: flow raster, thrust efficiency and drag scale.
        dt: [s] step length.
        params: vessel parameters.
        substeps: RK4 sub-steps (:func:`stable_substeps`).

    Returns:
        (new state, new thrust).

    Shapes:
        state ``(K, 6)``, thrust/command/disturbance ``(K, 2)`` -> (``(K, 6)``, ``(K, 2)``).
    """
    h = dt / substeps
    for _ in range(substeps):
        current = sample_current(scene.flow, state[..., :2], disturbance)
        state, thrust = step(state, thrust, command, current, _NO_WIND, h, params,
                             scene.thrust_efficiency, scene.drag_scale)
    return state, thrust


def rollout(state: torch.Tensor, thrust: torch.Tensor, controls: torch.Tensor,
            disturbance: torch.Tensor, scene: Scene, dt: float,
            params: VesselParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager rollout of whole control sequences (tests, plots; the optimiser steps itself).

    Args:
        state: [x, y, yaw, u, v, r] start state (shared by all rollouts).
        thrust: [N] delivered thrust at the start.
        controls: [N] thrust commands per rollout and step.
        disturbance: standard-normal current disturbance per rollout.

    Returns:
        (states including the start, delivered thrust after each step).

    Shapes:
        state ``(6,)``, thrust ``(2,)``, controls ``(K, T, 2)``, disturbance ``(K, 2)``
        -> (``(K, T + 1, 6)``, ``(K, T, 2)``).
    """
    k, horizon = controls.shape[:2]
    substeps = stable_substeps(dt, float(scene.drag_scale))
    x, f = state.expand(k, 6), thrust.expand(k, 2)
    states, thrusts = [x], []
    for t in range(horizon):
        x, f = rollout_step(x, f, controls[:, t], disturbance, scene, dt, params, substeps)
        states.append(x)
        thrusts.append(f)
    return torch.stack(states, dim=1), torch.stack(thrusts, dim=1)
