"""Reference solver: semi-Lagrangian value iteration on a fine regular grid.

    V(x) <- min_a [ c(a) + gamma * mean_k V(x + mu(x, a) + sigma_k) ]

over ``headings`` x ``speeds`` actions, with the expectation taken at the four sigma points
``+/- sqrt(2) sigma`` along x and y (they reproduce the mean and the isotropic covariance of
one step exactly) and V interpolated bilinearly between nodes. Free nodes start at
``land_cost`` (an upper bound), so the iteration converges once the goal's influence has
travelled across the workspace. It uses the same moments as the kernel and finite-element
solvers but neither the Taylor expansion nor their function spaces: the tests compare them
with it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from asv_autonomy.planning.mdp.mesh import NodeGrid
from asv_autonomy.planning.mdp.problem import (SOLVE_DTYPE, MDPProblem, ValueFunctionBase,
                                               sigma_offsets)


@dataclass(frozen=True)
class GridConfig:
    """Args:
        spacing: [m] node spacing.
        max_iterations: limit of value-iteration sweeps.
        tolerance: [cost] stop when no value changes by more in one sweep.
    """

    spacing: float = 10.0
    max_iterations: int = 3000
    tolerance: float = 1e-3

    def __post_init__(self):
        if not (math.isfinite(self.spacing) and self.spacing > 0.0):
            raise ValueError(f'spacing must be > 0 m, got {self.spacing}')
        if self.max_iterations < 1:
            raise ValueError(f'max_iterations must be >= 1, got {self.max_iterations}')
        if not self.tolerance > 0.0:
            raise ValueError(f'tolerance must be > 0, got {self.tolerance}')


def _actions(problem: MDPProblem) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(heading [rad] (A,), speed index (A,), displacement through water [m] (A, 2))."""
    count = problem.config.headings
    headings = torch.arange(count, dtype=SOLVE_DTYPE, device=problem.device) * (
        2.0 * math.pi / count)
    heading = headings.repeat(len(problem.speeds))
    index = torch.arange(len(problem.speeds), device=problem.device).repeat_interleave(count)
    step = problem.speeds[index] * problem.dt
    return heading, index, torch.stack([heading.cos(), heading.sin()], -1) * step[:, None]


class _Lookahead:
    """Fixed bilinear stencils of the sigma points of every action from a set of points,
    so that one Bellman backup is a gather and a weighted sum."""

    def __init__(self, problem: MDPProblem, grid: NodeGrid, xy: torch.Tensor):
        _, _, displacement = _actions(problem)
        current, variance = problem.drift(xy)
        targets = (xy[:, None, None, :] + current[:, None, None, :]
                   + displacement[None, :, None, :] + sigma_offsets(variance)[:, None])
        i, j, fx, fy = grid.cell_coordinates(targets)                     # (P, A, 4)
        n00, n10, n01, n11 = grid.corners(i, j)
        self.nodes = torch.stack([n00, n10, n01, n11], -1).flatten(2)       # (P, A, 16)
        weights = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy],
                              -1)
        self.weights = (0.25 * weights).flatten(2)
        self.problem = problem
        _, index, _ = _actions(problem)
        self.cost = problem.step_cost[index]                               # (A,)

    def q_values(self, node_values: torch.Tensor) -> torch.Tensor:
        """[cost] (P, A) action values for node values (N,)."""
        expected = (node_values[self.nodes] * self.weights).sum(-1)
        return self.cost + self.problem.discount * expected


class GridValueFunction(ValueFunctionBase):
    """Bilinear interpolation of the node values; the policy is the one-step lookahead."""

    def __init__(self, problem: MDPProblem, grid: NodeGrid, node_values: torch.Tensor,
                 solve_s: float, iterations: int):
        self.problem, self.grid = problem, grid
        self.node_values = node_values
        self.solve_s, self.iterations = solve_s, iterations

    def _raw_value(self, xy):
        i, j, fx, fy = self.grid.cell_coordinates(xy)
        v00, v10, v01, v11 = (self.node_values[n] for n in self.grid.corners(i, j))
        return (v00 * (1 - fx) + v10 * fx) * (1 - fy) + (v01 * (1 - fx) + v11 * fx) * fy

    def _gradient(self, xy):
        i, j, fx, fy = self.grid.cell_coordinates(xy)
        v00, v10, v01, v11 = (self.node_values[n] for n in self.grid.corners(i, j))
        gx = (v10 - v00) * (1 - fy) + (v11 - v01) * fy
        gy = (v01 - v00) * (1 - fx) + (v11 - v10) * fx
        return torch.stack([gx, gy], -1) / self.grid.spacing

    def policy(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Best of the ``headings`` x ``speeds`` actions by one-step lookahead.

        Shapes:
            xy ``(..., 2)`` -> (heading [rad] ``(...)``, speed [m/s] ``(...)``) float32.
        """
        xy = xy.to(device=self.problem.device, dtype=SOLVE_DTYPE)
        flat = xy.reshape(-1, 2)
        heading, index, _ = _actions(self.problem)
        best = torch.cat([_Lookahead(self.problem, self.grid, chunk).q_values(
            self.node_values).argmin(-1) for chunk in flat.split(8192)])
        shape = xy.shape[:-1]
        return (heading[best].reshape(shape).float(),
                self.problem.speeds[index[best]].reshape(shape).float())


def solve_grid(problem: MDPProblem, config: GridConfig = GridConfig()) -> GridValueFunction:
    """Value iteration until no value changes by more than ``config.tolerance``.

    Returns:
        The value function, with ``solve_s`` [s] and ``iterations`` (sweeps).
    """
    start = time.perf_counter()
    grid = NodeGrid(problem, config.spacing)
    lookahead = _Lookahead(problem, grid, grid.points[grid.free])
    values = grid.boundary.clone()
    iterations = 0
    for iterations in range(1, config.max_iterations + 1):
        update = lookahead.q_values(values).min(-1).values
        change = (update - values[grid.free]).abs().max()
        values[grid.free] = update
        if float(change) <= config.tolerance:
            break
    if problem.device.type == 'cuda':
        torch.cuda.synchronize(problem.device)
    return GridValueFunction(problem, grid, values, time.perf_counter() - start, iterations)
