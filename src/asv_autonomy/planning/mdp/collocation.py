"""Semi-Lagrangian collocation shared by the kernel and finite-element solvers.

The value is a linear expansion ``V(x) = sum_j psi_j(x) V_j`` of the values at a set of
nodes, with non-negative basis functions that sum to 1 (normalised kernels, or P1 hat
functions). Each free node ``x_i`` gets the Bellman equation of the current policy in its
diffusion form, written through four sigma points (``mdp.problem.sigma_offsets``):

    V_i = c(a_i) + gamma * mean_k V(x_i + mu(x_i, a_i) + delta_k)

whose mean is ``V + mu . grad V + 1/2 tr(Sigma Hess V)`` up to third order. A sigma point
in the goal disc contributes 0 and one on land/clearance ``land_cost`` (absorbing, as in
the grid value iteration). Land nodes within a band of the water copy the value of the
nearest free node (so sigma points near the shore see no drop); goal and other nodes are
``V = 0`` (nothing free reaches the latter). Because the basis is non-negative and sums to
1 the scheme is monotone: ``I - gamma P`` is an M-matrix, every policy evaluation is bounded
by ``max c / (1 - gamma)`` and policy iteration improves monotonically. Unlike a Galerkin
discretisation with upwind diffusion it adds no crosswind smoothing beyond the
interpolation's, so sheared currents (a river's fast core next to slow banks) keep their
structure.

Policy iteration evaluates (one sparse or dense linear solve), then improves with the exact
one-step lookahead over candidate headings around ``-grad V`` (fine near it, coarse around
the circle) and all speeds, with the expansion looked up bilinearly on a grid
``LOOKUP_REFINE`` times finer than the nodes. A node keeps its action unless the new one
turns by more than ``heading_tolerance`` or changes speed; iteration stops when nothing
changes or no value changes by more than ``value_tolerance``.
"""
from __future__ import annotations

import math
from typing import Protocol

import torch

from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.mdp.problem import (SOLVE_DTYPE, MDPProblem, ValueFunctionBase,
                                               sigma_offsets, sparse_solve)

# [rad] candidate headings of the policy improvement, relative to -grad V.
HEADING_OFFSETS = (0.0, 0.03, -0.03, 0.08, -0.08, 0.16, -0.16, 0.32, -0.32, 0.64, -0.64,
                   1.2, -1.2, 2.0, -2.0, math.pi)
LOOKUP_REFINE = 4  # the policy improvement looks values up on a grid of spacing / 4



# Fractions of a step at which its way must be free of land (see Lookahead.outcome).
PATH_CHECKS = (0.25, 0.5, 0.75)

class Basis(Protocol):
    """Non-negative basis functions on nodes, evaluated locally."""

    def local(self, xy: torch.Tensor, gradient: bool = False):
        """(node index ``(n, S)``, unnormalised weights ``(n, S)``, gradients or None)."""

    def evaluate(self, xy: torch.Tensor, values: torch.Tensor, gradient: bool = False):
        """Expansion of node ``values`` (and its gradient) at points ``(..., 2)``."""

    def sampled(self, values: torch.Tensor, refine: int) -> Raster:
        """The expansion on a grid ``refine`` times finer than the nodes."""


def _triplets(basis: Basis, row: torch.Tensor, xy: torch.Tensor, scale: torch.Tensor):
    """COO triplets of ``scale * psi(xy, nodes)`` (normalised weights) in rows ``row``.

    Shapes:
        row ``(n,)``, xy ``(n, 2)``, scale ``(n,)`` -> three ``(n * S,)``.
    """
    index, k, _ = basis.local(xy)
    psi = k / k.sum(-1, keepdim=True).clamp(min=1e-300)
    rows = row[:, None].expand_as(index)
    return rows.reshape(-1), index.reshape(-1), (psi * scale[:, None]).reshape(-1)


class Lookahead:
    """One-step lookahead of a set of points: sigma-point expectation of the value with
    absorbing goal (0) and land (``land_cost``)."""

    def __init__(self, problem: MDPProblem, xy: torch.Tensor):
        self.problem, self.xy = problem, xy
        current, variance = problem.drift(xy)
        self.current = current
        self.offsets = sigma_offsets(variance)                         # (n, 4, 2)

    def targets(self, heading: torch.Tensor, speed: torch.Tensor) -> torch.Tensor:
        """[m] sigma points after one step. Shapes: heading, speed ``(n, ...)`` ->
        ``(n, ..., 4, 2)``."""
        extra = heading.dim() - 1
        shape = (-1,) + (1,) * extra + (2,)
        step = torch.stack([heading.cos(), heading.sin()], -1) * (speed * self.problem.dt)[
            ..., None]
        base = self.xy.reshape(shape) + self.current.reshape(shape) + step
        return base[..., None, :] + self.offsets.reshape((-1,) + (1,) * extra + (4, 2))

    def outcome(self, targets: torch.Tensor):
        """Absorbed sigma points: (expected absorbed value [cost], free mask).

        Shapes:
            targets ``(..., 4, 2)`` -> (``(...)``, ``(..., 4)``).
        """
        goal = self.problem.in_goal(targets)
        free = self.problem.is_free(targets) & ~goal
        # A step is ~20 m: a sigma point beyond a thinner wall or spit of land must not
        # see the water behind it, so the way there has to be free too.
        start = self.xy.reshape(self.xy.shape[:1] + (1,) * (targets.dim() - 2) + (2,))
        for fraction in PATH_CHECKS:
            waypoint = start + fraction * (targets - start)
            free = free & (self.problem.is_free(waypoint) | self.problem.in_goal(waypoint))
        land = (~free & ~goal).to(SOLVE_DTYPE)
        return self.problem.land_cost * land.mean(-1), free

    def q_values(self, values: Raster, heading: torch.Tensor) -> torch.Tensor:
        """[cost] action values for candidate headings at every speed, with the value of
        free sigma points looked up in ``values`` (the expansion on a fine grid).

        Shapes:
            heading ``(n, C)`` -> ``(n, C, S)``.
        """
        problem = self.problem
        speeds = problem.speeds
        targets = self.targets(heading[..., None].expand(-1, -1, len(speeds)),
                               speeds.expand(*heading.shape, -1))
        absorbed, free = self.outcome(targets)
        value = values.sample(targets)[..., 0] * free
        return problem.step_cost + problem.discount * (absorbed + value.mean(-1))

    def improve(self, basis: Basis, weights: torch.Tensor, values: Raster):
        """Best candidate action (headings around ``-grad V``, every speed) for the
        expansion ``weights`` (sampled finely in ``values``): heading [rad] ``(n,)`` and
        speed index ``(n,)``."""
        _, grad = basis.evaluate(self.xy, weights, gradient=True)
        towards = torch.atan2(-grad[:, 1], -grad[:, 0])
        offsets = torch.tensor(HEADING_OFFSETS, dtype=SOLVE_DTYPE, device=self.xy.device)
        candidates = towards[:, None] + offsets
        q = self.q_values(values, candidates)                          # (n, C, S)
        best = q.flatten(1).argmin(-1)
        heading = candidates.gather(1, (best // len(self.problem.speeds))[:, None])[:, 0]
        return torch.remainder(heading + math.pi, 2.0 * math.pi) - math.pi, best % len(
            self.problem.speeds)


class CollocatedValueFunction(ValueFunctionBase):
    """Solved expansion ``sum_j psi_j(x) weights_j``; the policy is the solvers' one-step
    lookahead."""

    def __init__(self, problem: MDPProblem, basis: Basis, weights: torch.Tensor,
                 solve_s: float, iterations: int):
        self.problem, self.basis, self.weights = problem, basis, weights
        self.solve_s, self.iterations = solve_s, iterations
        self._lookup = basis.sampled(weights, LOOKUP_REFINE)

    def _raw_value(self, xy):
        return self.basis.evaluate(xy, self.weights)

    def _gradient(self, xy):
        return self.basis.evaluate(xy, self.weights, gradient=True)[1]

    def _raster_value_and_gradient(self, xy):
        """Bilinear look-up (value and its gradient) in the expansion cached on a grid
        ``LOOKUP_REFINE`` times finer than the nodes."""
        lookup = self._lookup
        step = lookup.resolution
        shifts = torch.tensor([[step, 0.0], [0.0, step]], dtype=xy.dtype, device=xy.device)
        samples = lookup.sample(xy[:, None, :] + torch.cat([shifts, -shifts])[None])[..., 0]
        gradient = (samples[:, :2] - samples[:, 2:]) / (2.0 * step)
        return lookup.sample(xy)[..., 0], gradient

    def policy(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Best action by the solver's one-step lookahead (candidate headings around
        ``-grad V``, every speed).

        Shapes:
            xy ``(..., 2)`` -> (heading [rad] ``(...)``, speed [m/s] ``(...)``) float32.
        """
        xy = xy.to(device=self.problem.device, dtype=SOLVE_DTYPE)
        flat = xy.reshape(-1, 2)
        heading, index = Lookahead(self.problem, flat).improve(self.basis, self.weights,
                                                               self._lookup)
        shape = xy.shape[:-1]
        return (heading.reshape(shape).float(),
                self.problem.speeds[index].reshape(shape).float())


def policy_iteration(problem: MDPProblem, basis: Basis, nodes: torch.Tensor,
                     free: torch.Tensor, band: torch.Tensor, heading: torch.Tensor,
                     index: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Policy iteration on the collocation system (module doc).

    Args:
        problem: the MDP.
        basis: the expansion's basis on ``nodes``.
        nodes: [m] node positions.
        free: nodes with a Bellman row.
        band: land nodes that copy the nearest free node.
        heading: [rad] initial heading of the free nodes.
        index: initial speed index of the free nodes.

    Returns:
        Node values of the last policy and the number of iterations.

    Shapes:
        nodes ``(M, 2)``, free/band ``(M,)``, heading/index ``(F,)`` -> ``(M,)``.

    Raises:
        ValueError: no free node.
    """
    device = problem.device
    count = len(nodes)
    if not bool(free.any()):
        raise ValueError('no free water nodes (spacing too coarse for the workspace?)')
    rows = torch.arange(count, device=device)
    ones = torch.ones(count, dtype=SOLVE_DTYPE, device=device)
    # Every row starts with V(x_i) (the node value); land rows copy the nearest free node.
    fixed = [(rows, rows, ones)]
    if bool(band.any()):
        nearest = rows[free][torch.cdist(nodes[band], nodes[free]).argmin(-1)]
        fixed.append((rows[band], nearest, -ones[band]))
    free_rows = rows[free]
    lookahead = Lookahead(problem, nodes[free])
    weights = torch.zeros(count, dtype=SOLVE_DTYPE, device=device)
    gamma, tolerance = problem.discount, problem.config.heading_tolerance
    iterations = 0
    for iterations in range(1, problem.config.max_iterations + 1):
        targets = lookahead.targets(heading, problem.speeds[index])   # (n, 4, 2)
        absorbed, landed_free = lookahead.outcome(targets)
        scale = (-0.25 * gamma) * landed_free.to(SOLVE_DTYPE).reshape(-1)
        bellman = _triplets(basis, free_rows.repeat_interleave(4), targets.reshape(-1, 2),
                            scale)
        rhs = torch.zeros(count, dtype=SOLVE_DTYPE, device=device)
        rhs[free] = problem.step_cost[index] + gamma * absorbed
        parts = fixed + [bellman]
        previous = weights
        weights = sparse_solve(*(torch.cat([p[n] for p in parts]) for n in range(3)),
                               rhs).to(device=device, dtype=SOLVE_DTYPE)
        if float((weights - previous).abs().max()) <= problem.config.value_tolerance:
            break
        new_heading, new_index = lookahead.improve(basis, weights,
                                                   basis.sampled(weights, LOOKUP_REFINE))
        turn = torch.remainder(new_heading - heading + math.pi, 2.0 * math.pi) - math.pi
        changed = (turn.abs() > tolerance) | (new_index != index)
        if not bool(changed.any()):
            break
        heading = torch.where(changed, new_heading, heading)
        index = torch.where(changed, new_index, index)
    return weights, iterations
