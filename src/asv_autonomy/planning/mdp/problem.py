"""The boat's navigation as a continuous-state Markov decision process over position.

State: position ``x`` (east, north) [m] in ``map``. Action: heading [rad] (from east, CCW)
and speed through the water [m/s]. One decision step lasts ``dt`` [s]; its motion has

    mean        mu(x, a)    = (speed * [cos h, sin h] + current_mean(x)) * dt      [m]
    covariance  Sigma(x)    = (spread(x)^2 * dt^2 + process_noise^2 * dt) * I      [m^2]

and costs ``c(a) = (time_weight + energy_weight * P(speed)) * dt`` where ``P`` [W] is the
thruster power holding that speed through the water (steady state of the vessel model).
The solvers use the Bellman equation in its diffusion (second-order Taylor) form

    V(x) = min_a [ c(a) + gamma * (V(x) + mu . grad V + 1/2 tr(Sigma Hess V)) ]

with ``V = 0`` in the goal disc. Land (and water within ``clearance`` of it) is handled two
ways. The grid value iteration and the kernel solver (semi-Lagrangian sigma points, see
``mdp.kernel``) make it absorbing with ``V = land_cost``. The finite-element solver cannot
represent the jump from water values to ``land_cost`` (its P1 space rings across the whole
lake), so it solves the same equation on a band of land around the water where every step
costs ``land_penalty`` times the largest step cost extra: the value rises steeply but
continuously into land and the greedy policy turns away from it. ``value()`` reports
``land_cost`` outside free water for every solver. The cost does not depend on the heading
and ``Sigma`` does not depend on the action, so for a given gradient the best heading is
exactly ``-grad V / |grad V|`` (:meth:`MDPProblem.greedy`): the finite-element solver uses
it, the kernel solver searches candidate headings around it by one-step lookahead, the grid
value iteration tries ``headings`` directions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from asv_autonomy.planning.flow import FlowField
from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.vessel import VesselParams, thruster_power
from asv_autonomy.planning.workspace import Workspace

SOLVE_DTYPE = torch.float64  # the linear solves need it: Gaussian kernel matrices are ill-conditioned


@dataclass(frozen=True)
class MDPConfig:
    """Actions, costs and boundary conditions of the navigation MDP.

    Args:
        speeds: [m/s] speeds through the water the boat may choose (each > 0 and reachable
            at full forward thrust in calm water).
        headings: number of evenly spaced headings of the grid value iteration (the kernel
            and finite-element solvers optimise the heading continuously).
        dt: [s] length of one decision step (~1-2 support spacings at cruise speed).
        discount: per-step discount factor gamma, 0 < gamma < 1.
        time_weight: [cost/s] cost of time.
        energy_weight: [cost/J] cost of thruster energy. The default (133 J cost as
            much as 1 s) leans to battery over time: from 200 J it took the
            strong-current benchmark's passage from -18 % to -28 % energy against the
            baseline, and from +8 % to +22 % time; lower it where time matters more.
        process_noise: [m/s^0.5] diffusion of the position not explained by the current's
            spread (steering errors, waves).
        goal_radius: [m] radius of the goal disc (V = 0 inside).
        land_cost: [cost] value on land; 0: the discounted cost of never arriving,
            ``max_a c(a) / (1 - gamma)`` (larger than any value of a water state).
        land_penalty: extra cost of a step on land for the kernel and finite-element
            solvers, in multiples of the largest step cost (see module doc).
        clearance: [m] distance to land/obstacles that counts as land; NaN: the hull radius.
        max_iterations: limit of policy-iteration steps.
        heading_tolerance: [rad] policy iteration stops when no heading changes by more and
            no speed changes,
        value_tolerance: [cost] or when no value changes by more (continuous headings keep
            turning by tiny amounts long after the values have settled).
    """

    speeds: tuple[float, ...] = (0.6, 1.2, 1.8)
    headings: int = 16
    dt: float = 15.0
    discount: float = 0.995
    time_weight: float = 1.0
    energy_weight: float = 0.0075
    process_noise: float = 0.1
    goal_radius: float = 15.0
    land_cost: float = 0.0
    land_penalty: float = 10.0
    clearance: float = math.nan
    max_iterations: int = 8
    heading_tolerance: float = 0.01
    value_tolerance: float = 0.5

    def __post_init__(self):
        if not self.speeds or any(not (math.isfinite(s) and s > 0.0) for s in self.speeds):
            raise ValueError(f'speeds must be a non-empty tuple of speeds > 0 m/s, got '
                             f'{self.speeds}')
        if self.headings < 4:
            raise ValueError(f'headings must be >= 4, got {self.headings}')
        if not (math.isfinite(self.dt) and self.dt > 0.0):
            raise ValueError(f'dt must be > 0 s, got {self.dt}')
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f'discount must be in (0, 1), got {self.discount}')
        for name in ('time_weight', 'energy_weight', 'process_noise'):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0.0):
                raise ValueError(f'{name} must be finite and >= 0, got {getattr(self, name)}')
        if self.time_weight == 0.0 and self.energy_weight == 0.0:
            raise ValueError('time_weight and energy_weight cannot both be 0 (nothing to '
                             'minimise)')
        if not self.goal_radius > 0.0:
            raise ValueError(f'goal_radius must be > 0 m, got {self.goal_radius}')
        if not (math.isfinite(self.land_cost) and self.land_cost >= 0.0):
            raise ValueError(f'land_cost must be > 0 (0: automatic), got {self.land_cost}')
        if not (math.isfinite(self.land_penalty) and self.land_penalty > 0.0):
            raise ValueError(f'land_penalty must be > 0, got {self.land_penalty}')
        if not (math.isnan(self.clearance) or self.clearance >= 0.0):
            raise ValueError(f'clearance must be >= 0 m, got {self.clearance}')
        if self.max_iterations < 1:
            raise ValueError(f'max_iterations must be >= 1, got {self.max_iterations}')
        if not self.heading_tolerance > 0.0:
            raise ValueError(f'heading_tolerance must be > 0 rad, got {self.heading_tolerance}')
        if not self.value_tolerance >= 0.0:
            raise ValueError(f'value_tolerance must be >= 0, got {self.value_tolerance}')


def steady_thrust(speed: float, vessel: VesselParams) -> float:
    """[N] total surge thrust holding ``speed`` [m/s] through calm water (surge damping)."""
    return (vessel.damping_surge_linear + vessel.damping_surge_quadratic * speed) * speed


def steady_power(speeds, vessel: VesselParams, thrust_efficiency=(1.0, 1.0)) -> np.ndarray:
    """[W] (S,) power the thrusters draw holding each of ``speeds`` [m/s] through calm
    water: each delivers half the surge thrust (one with efficiency e is commanded 1 / e of
    it; one with e = 0 idles)."""
    command = np.array([[steady_thrust(speed, vessel) / 2.0 / e if e > 0 else 0.0
                         for e in thrust_efficiency] for speed in speeds])
    return thruster_power(command, vessel)


def calm_water_price(config: MDPConfig, vessel: VesselParams) -> float:
    """[s/m] cheapest cost of a metre through calm water at the MDP's speeds (both
    thrusters healthy), in units of the time weight: what a metre towards the goal is
    worth to the rollouts when no value-to-go is at hand."""
    power = steady_power(config.speeds, vessel)
    return float(min((config.time_weight + config.energy_weight * watts)
                     / (speed * config.time_weight)
                     for speed, watts in zip(config.speeds, power)))


def max_steady_speed(vessel: VesselParams, thrust_efficiency=(1.0, 1.0)) -> float:
    """[m/s] fastest straight course through the water: both thrusters deliver the same force
    (no yaw moment), the weaker one at full forward thrust."""
    force = 2.0 * min(thrust_efficiency) * vessel.max_thrust_forward
    a, b = vessel.damping_surge_quadratic, vessel.damping_surge_linear
    if a == 0.0:
        return force / b
    return (-b + math.sqrt(b * b + 4.0 * a * force)) / (2.0 * a)


class MDPProblem:
    """One navigation MDP: where to go, through which water and current, with which boat.

    Args:
        workspace: where the boat may go.
        flow: mean current and spread.
        goal: [m] (x, y) centre of the goal disc.
        vessel: boat parameters (steady-state thrust and power per speed).
        config: actions, costs and boundary conditions.
        thrust_efficiency: (left, right) multiplier of each thruster (1 = healthy): a
            degraded thruster lowers the reachable speed (configured speeds above it are
            replaced by it) and raises the power for a given speed.

    Attributes:
        speeds: [m/s] (S,) available speeds through the water.
        step_cost: [cost] (S,) cost of one step at each speed.
        land_cost: [cost] value on land.
        clearance: [m] distance to land that counts as land.
        device: the workspace's device.

    Raises:
        ValueError: a configured speed is unreachable by the healthy vessel, the goal is not
            in water, or the efficiencies leave no way to hold a course.
    """

    def __init__(self, workspace: Workspace, flow: FlowField, goal, vessel: VesselParams =
                 VesselParams(), config: MDPConfig = MDPConfig(),
                 thrust_efficiency=(1.0, 1.0)):
        efficiency = tuple(float(e) for e in thrust_efficiency)
        if len(efficiency) != 2 or any(not 0.0 <= e <= 1.0 for e in efficiency):
            raise ValueError(f'thrust_efficiency must be (left, right) in [0, 1], got '
                             f'{thrust_efficiency}')
        healthy_max = max_steady_speed(vessel)
        if max(config.speeds) > healthy_max + 1e-9:
            raise ValueError(f'speed {max(config.speeds)} m/s is unreachable: the vessel '
                             f'holds at most {healthy_max:.2f} m/s at full forward thrust')
        reachable = max_steady_speed(vessel, efficiency)
        if reachable < 0.05:
            raise ValueError(f'thrust_efficiency {efficiency} leaves no straight course '
                             f'(max {reachable:.3f} m/s)')
        speeds = sorted({min(s, reachable) for s in config.speeds})
        self.workspace, self.config, self.vessel = workspace, config, vessel
        self.device = workspace.device
        self.flow = flow.to(self.device)
        self.goal = torch.as_tensor(goal, dtype=SOLVE_DTYPE, device=self.device).reshape(2)
        self.thrust_efficiency = efficiency
        self.clearance = vessel.hull_radius if math.isnan(config.clearance) else config.clearance
        if not bool(workspace.is_water(self.goal.float(), self.clearance)):
            raise ValueError(f'goal {tuple(self.goal.tolist())} is not in water with '
                             f'{self.clearance} m clearance')
        self.speeds = torch.tensor(speeds, dtype=SOLVE_DTYPE, device=self.device)
        power = torch.as_tensor(steady_power(speeds, vessel, efficiency), dtype=SOLVE_DTYPE,
                                device=self.device)
        self.step_cost = (config.time_weight + config.energy_weight * power) * config.dt
        self.land_cost = (config.land_cost if config.land_cost > 0.0
                          else float(self.step_cost.max()) / (1.0 - config.discount))

    @property
    def discount(self) -> float:
        return self.config.discount

    @property
    def dt(self) -> float:
        return self.config.dt

    def is_free(self, xy: torch.Tensor) -> torch.Tensor:
        """True where the boat may be (water farther than the clearance from land).

        Shapes:
            xy ``(..., 2)`` -> ``(...)`` bool.
        """
        return self.workspace.is_water(xy.float(), self.clearance)

    def in_goal(self, xy: torch.Tensor) -> torch.Tensor:
        """True inside the goal disc. Shapes: ``(..., 2)`` -> ``(...)``."""
        return (xy.to(self.goal) - self.goal).norm(dim=-1) <= self.config.goal_radius

    def drift(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step current displacement [m] and position variance [m^2] of one step.

        Shapes:
            xy ``(..., 2)`` -> (``(..., 2)``, ``(...)``), float64.
        """
        mean, spread = self.flow.sample(xy.float())
        dt = self.config.dt
        variance = spread.to(SOLVE_DTYPE) ** 2 * dt * dt + self.config.process_noise ** 2 * dt
        return mean.to(SOLVE_DTYPE) * dt, variance

    def running_cost(self, xy: torch.Tensor, speed_index: torch.Tensor) -> torch.Tensor:
        """[cost] one step's cost at points, with the land penalty outside free water
        (kernel and finite-element solvers).

        Shapes:
            xy ``(..., 2)``, speed_index ``(...)`` -> ``(...)`` float64.
        """
        penalty = self.config.land_penalty * float(self.step_cost.max())
        return self.step_cost[speed_index] + penalty * (~self.is_free(xy)).to(SOLVE_DTYPE)

    def greedy(self, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Best action for a value gradient [cost/m] under the diffusion Bellman operator:
        heading along ``-grad``, speed index minimising ``c(s) - gamma dt s |grad|``.

        Shapes:
            grad ``(..., 2)`` -> (heading [rad] ``(...)``, speed index ``(...)`` long).
        """
        heading = torch.atan2(-grad[..., 1], -grad[..., 0])
        slope = grad.norm(dim=-1, keepdim=True)
        q = self.step_cost - self.discount * self.dt * self.speeds * slope
        return heading, q.argmin(dim=-1)

    def mean_displacement(self, xy: torch.Tensor, heading: torch.Tensor,
                          speed_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step's mean displacement mu [m] and variance [m^2] for actions at points.

        Shapes:
            xy ``(..., 2)``, heading/speed_index ``(...)`` -> (``(..., 2)``, ``(...)``).
        """
        current, variance = self.drift(xy)
        speed = self.speeds[speed_index] * self.dt
        through_water = torch.stack([heading.cos(), heading.sin()], dim=-1) * speed[..., None]
        return through_water + current, variance

    def track(self, xy: torch.Tensor, direction: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cheapest way to make good a ground track along unit ``direction`` in the mean
        current: with ``c.d`` the current along and ``c_perp`` across the track, speed ``s``
        gives ground speed ``g = c.d + sqrt(s^2 - c_perp^2)`` (none if ``s < |c_perp|`` or
        ``g <= 0``) and heading through the water along ``g d - c`` (crabbing into the
        current); the cost per metre is ``c(s) / (g dt)``.

        Returns:
            heading [rad], speed index (cheapest per metre), cost per metre [cost/m]
            (``inf`` where no speed makes headway).

        Shapes:
            xy ``(..., 2)``, direction ``(..., 2)`` -> three ``(...)``.
        """
        current = self.drift(xy)[0] / self.dt                           # [m/s] (..., 2)
        along = (current * direction).sum(-1, keepdim=True)
        across2 = (current * current).sum(-1, keepdim=True) - along * along
        room = self.speeds ** 2 - across2                                 # (..., S)
        ground = along + room.clamp(min=0.0).sqrt()
        makes_way = (room >= 0.0) & (ground > 1e-6)
        per_metre = torch.where(makes_way, self.step_cost / (ground.clamp(min=1e-6) * self.dt),
                                math.inf)
        cost, index = per_metre.min(-1)
        g = ground.gather(-1, index[..., None])
        water = g * direction - current
        return torch.atan2(water[..., 1], water[..., 0]), index, cost

    def initial_policy(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Head straight for the goal at the middle speed. Shapes: ``(..., 2)`` -> ``(...)``."""
        towards = self.goal - xy.to(self.goal)
        heading = torch.atan2(towards[..., 1], towards[..., 0])
        index = torch.full(heading.shape, (len(self.speeds) - 1) // 2, dtype=torch.long,
                           device=self.device)
        return heading, index


class ValueFunction(Protocol):
    """A solved MDP: value-to-go and policy anywhere in the workspace."""

    problem: MDPProblem
    solve_s: float
    iterations: int

    def value(self, xy: torch.Tensor) -> torch.Tensor:
        """[cost] value-to-go; ``land_cost`` outside the free water. Shapes: (..., 2) -> (...)"""

    def policy(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(heading [rad], speed [m/s] through the water). Shapes: (..., 2) -> (...), (...)"""

    def to_raster(self, resolution: float) -> Raster:
        """Channels value, cos(heading), sin(heading), speed over the workspace extent."""


class ValueFunctionBase:
    """Shared parts of the solvers' results: masking, policy from a gradient, rasters."""

    problem: MDPProblem
    solve_s: float = 0.0
    iterations: int = 0

    def _raw_value(self, xy: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _gradient(self, xy: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def value(self, xy: torch.Tensor) -> torch.Tensor:
        """[cost] value-to-go at map points: the solved value in free water, ``land_cost``
        outside it, 0 in the goal disc.

        Shapes:
            xy ``(..., 2)`` -> ``(...)`` float32.
        """
        xy = xy.to(device=self.problem.device)
        return self._masked(xy, self._raw_value(xy))

    def _masked(self, xy: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        value = raw.clamp(0.0, self.problem.land_cost)
        value = torch.where(self.problem.is_free(xy), value, self.problem.land_cost)
        return torch.where(self.problem.in_goal(xy), 0.0, value).float()

    def _raster_value_and_gradient(self, xy: torch.Tensor):
        """Unmasked value and its gradient for :meth:`to_raster` (solvers may answer from
        a cached fine grid). Shapes: ``(n, 2)`` -> (``(n,)``, ``(n, 2)``)."""
        return self._raw_value(xy), self._gradient(xy)

    def policy(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy action of the solved value: (heading [rad], speed [m/s] through water).

        Shapes:
            xy ``(..., 2)`` -> (``(...)``, ``(...)``) float32.
        """
        xy = xy.to(device=self.problem.device)
        heading, index = self.problem.greedy(self._gradient(xy))
        return heading.float(), self.problem.speeds[index].float()

    def to_raster(self, resolution: float) -> Raster:
        """Value and policy sampled on a grid of ``resolution`` [m] over the workspace
        extent: channels value [cost], cos(heading), sin(heading), speed [m/s]. The policy
        channels are the greedy action of the value's gradient (:meth:`MDPProblem.greedy`,
        the diffusion Bellman operator's minimiser) rather than :meth:`policy` at every
        cell, which keeps this a few batched look-ups (it runs once per goal).

        Shapes:
            -> Raster ``(4, ny, nx)``.
        """
        x_min, x_max, y_min, y_max = self.problem.workspace.extent
        nx = int(math.floor((x_max - x_min) / resolution)) + 1
        ny = int(math.floor((y_max - y_min) / resolution)) + 1
        grid = Raster(torch.zeros(1, ny, nx), (x_min, y_min), resolution,
                      device=self.problem.device)
        xy = grid.cell_centres().reshape(-1, 2)
        raw, gradient = self._raster_value_and_gradient(xy)
        heading, index = self.problem.greedy(gradient)
        speed = self.problem.speeds[index].float()
        values = torch.stack([self._masked(xy, raw), heading.cos().float(),
                              heading.sin().float(), speed]).reshape(4, ny, nx)
        return Raster(values, (x_min, y_min), resolution)


def sigma_offsets(variance: torch.Tensor) -> torch.Tensor:
    """[m] sigma-point offsets ``+/- sqrt(2 variance)`` along x and y: the four points
    reproduce the mean (0) and the isotropic covariance ``variance * I`` of one step, so
    ``mean_k V(x + mu + offset_k) = V + mu . grad V + 1/2 tr(Sigma Hess V)`` up to third
    order (the diffusion / second-order Taylor Bellman operator).

    Shapes:
        variance ``(...)`` -> ``(..., 4, 2)``.
    """
    r = (2.0 * variance).sqrt()
    zero = torch.zeros_like(r)
    return torch.stack([torch.stack([r, zero], -1), torch.stack([-r, zero], -1),
                        torch.stack([zero, r], -1), torch.stack([zero, -r], -1)], -2)


def sparse_solve(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
                 rhs: torch.Tensor) -> torch.Tensor:
    """Solve the square system given as COO triplets (duplicates summed): SuperLU (scipy)
    on the CPU, dense ``torch.linalg.solve`` on other devices (same equations).

    Shapes:
        rows, cols, values ``(T,)``, rhs ``(n,)`` -> ``(n,)``.
    """
    n = len(rhs)
    if rhs.device.type == 'cpu':
        from scipy.sparse import csc_matrix
        from scipy.sparse.linalg import spsolve
        matrix = csc_matrix((values.numpy(), (rows.numpy(), cols.numpy())), shape=(n, n))
        return torch.from_numpy(np.asarray(spsolve(matrix, rhs.numpy())))
    dense = torch.zeros(n, n, dtype=values.dtype, device=values.device)
    dense.index_put_((rows, cols), values, accumulate=True)
    return torch.linalg.solve(dense, rhs)


def policy_changed(old_heading, old_index, heading, index, tolerance: float) -> bool:
    """True if any speed changed or any heading turned by more than ``tolerance`` [rad]."""
    turn = torch.remainder(heading - old_heading + math.pi, 2.0 * math.pi) - math.pi
    return bool((index != old_index).any() or (turn.abs() > tolerance).any())
