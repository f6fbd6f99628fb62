"""Mesh-based value function: P1 finite elements on a triangulated workspace.

The mesh is structured: nodes every ``spacing`` over the workspace, every cell split into
two triangles (lower-right ``n00, n10, n11`` and upper-left ``n00, n11, n01``); the value is
the P1 (piecewise-linear) interpolation of the node values. Two discretisations of the
diffusion Bellman equation (``FEMConfig.scheme``):

* ``'semi-lagrangian'`` (default): collocation at the nodes, ``V_i = c + gamma mean_k
  V(x_i + mu + delta_k)`` with the P1 interpolant at the four sigma points
  (``mdp.collocation``, shared with the kernel solver; absorbing land and goal). The hat
  functions are non-negative and sum to 1, so the scheme is monotone, and it adds no
  crosswind diffusion: in a strong sheared current (the ``river`` scenario: 2.4 m/s core,
  0.3 m/s banks) it stays within ~10 % of the grid value iteration, where the Galerkin
  scheme below with upwind diffusion ``|b| h / 2`` (~600 m^2 per step there) smeared the
  core's cost over the banks (values ~2.5x too high, asymmetric policy).
* ``'galerkin'``: writing the Bellman equation for a fixed policy as

    -D lap V - b . grad V + kappa V = c,   D = gamma |Sigma| / 2, b = gamma mu, kappa = 1 - gamma

  (per decision step), the weak form integrates the diffusion by parts; advection dominates
  (cell Peclet numbers of ~100). Stabilisation: isotropic upwind diffusion ``|b| h / 2``
  (monotone, so policy iteration converges, but first order and crosswind-diffusive);
  streamline-upwind Petrov-Galerkin weights ``tau (-b) . grad phi`` (Brooks & Hughes 1982)
  with ``tau = h / (2 |b|) (coth Pe - 1 / Pe)``, or streamline diffusion only (neither
  monotone: policy iteration exploits their wiggles in strong currents). Triangles over
  free water and a band of land (solved with the land penalty, natural boundary at the
  band's edge) are kept, goal nodes are Dirichlet ``V = 0``; the policy, current and cost
  are constant per element (sampled at the centroid).

Assembly is batched in torch; the sparse systems are solved with SuperLU (scipy) on the CPU
and densely with ``torch.linalg.solve`` on other devices (same equations, float64).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.mdp.collocation import CollocatedValueFunction, policy_iteration
from asv_autonomy.planning.mdp.kernel import fastest_path_policy
from asv_autonomy.planning.mdp.mesh import NodeGrid
from asv_autonomy.planning.mdp.problem import (SOLVE_DTYPE, MDPProblem, policy_changed,
                                               sparse_solve)

STABILISATIONS = ('upwind', 'supg', 'streamline')
SCHEMES = ('semi-lagrangian', 'galerkin')


@dataclass(frozen=True)
class FEMConfig:
    """Mesh and stabilisation.

    Args:
        spacing: [m] node spacing (triangle legs).
        scheme: ``'semi-lagrangian'`` (node collocation through sigma points, monotone,
            no crosswind diffusion) or ``'galerkin'`` (weak form, see ``stabilisation``).
        stabilisation: of the Galerkin scheme: ``'upwind'`` (isotropic artificial diffusion ``|b| h / 2``: a
            monotone M-matrix scheme on this mesh, first-order accurate; policy iteration
            converges), ``'supg'`` (streamline-upwind Petrov-Galerkin: second-order but not
            monotone, policy iteration can exploit its crosswind wiggles) or
            ``'streamline'`` (artificial streamline diffusion only).
        land_band: [spacings] width of the band of land next to the water: solved with the
            land penalty (``MDPConfig.land_penalty``, natural boundary at its edge) by the
            Galerkin scheme, copying the nearest free node's value in the semi-Lagrangian
            one (>= 1.5 so every triangle holding free water has known nodes).
    """

    spacing: float = 20.0
    scheme: str = 'semi-lagrangian'
    stabilisation: str = 'upwind'
    land_band: float = 2.0

    def __post_init__(self):
        if not (math.isfinite(self.spacing) and self.spacing > 0.0):
            raise ValueError(f'spacing must be > 0 m, got {self.spacing}')
        if self.scheme not in SCHEMES:
            raise ValueError(f'scheme must be one of {SCHEMES}, got {self.scheme!r}')
        if not (math.isfinite(self.land_band) and self.land_band >= 1.5):
            raise ValueError(f'land_band must be >= 1.5 spacings, got {self.land_band}')
        if self.stabilisation not in STABILISATIONS:
            raise ValueError(f'stabilisation must be one of {STABILISATIONS}, got '
                             f'{self.stabilisation!r}')


# Gradients [1/spacing] of the three P1 shape functions of each triangle orientation.
_SHAPE_GRADIENTS = ((((-1.0, 0.0), (1.0, -1.0), (0.0, 1.0))),   # n00, n10, n11
                    (((0.0, -1.0), (1.0, 0.0), (-1.0, 1.0))))   # n00, n11, n01


class Mesh:
    """Triangles of the node grid between unknown and goal nodes, touching an unknown.

    Attributes:
        nodes: (E, 3) flat node indices per triangle.
        gradients: [1/m] (E, 3, 2) shape-function gradients.
        centroids: [m] (E, 2).
        area: [m^2] triangle area.
    """

    def __init__(self, grid: NodeGrid, unknown: torch.Tensor):
        device = grid.points.device
        i = torch.arange(grid.nx - 1, device=device).repeat(grid.ny - 1)
        j = torch.arange(grid.ny - 1, device=device).repeat_interleave(grid.nx - 1)
        n00, n10, n01, n11 = grid.corners(i, j)
        nodes = torch.cat([torch.stack([n00, n10, n11], -1), torch.stack([n00, n11, n01], -1)])
        orientation = torch.cat([torch.zeros_like(i), torch.ones_like(i)])
        keep = unknown[nodes].any(-1) & (unknown | grid.goal)[nodes].all(-1)
        self.nodes = nodes[keep]
        templates = torch.tensor(_SHAPE_GRADIENTS, dtype=SOLVE_DTYPE, device=device)
        self.gradients = templates[orientation[keep]] / grid.spacing
        self.centroids = grid.points[self.nodes].mean(1)
        self.area = 0.5 * grid.spacing ** 2
        self.size = grid.spacing


def _element_system(problem: MDPProblem, mesh: Mesh, current, variance, heading, index,
                    stabilisation: str):
    """Local (E, 3, 3) matrices and (E, 3) right-hand sides for a per-element policy."""
    gamma = problem.discount
    kappa = 1.0 - gamma
    area, dt = mesh.area, problem.dt
    speed = problem.speeds[index] * dt
    mu = torch.stack([heading.cos(), heading.sin()], -1) * speed[:, None] + current
    b = gamma * mu
    diffusion = 0.5 * gamma * variance
    cost = problem.running_cost(mesh.centroids, index)
    if stabilisation == 'upwind':
        diffusion = diffusion + 0.5 * mesh.size * b.norm(dim=-1)
    grads = mesh.gradients
    g = grads @ b[:, :, None]                                   # (E, 3, 1): b . grad phi_i
    ones = torch.ones_like(g)
    eye = torch.eye(3, dtype=SOLVE_DTYPE, device=b.device)
    local = (diffusion[:, None, None] * area * (grads @ grads.transpose(1, 2))
             - (area / 3.0) * ones @ g.transpose(1, 2)
             + (kappa * area / 12.0) * (1.0 + eye))
    rhs = (cost * area / 3.0)[:, None].expand(-1, 3)
    speed_b = b.norm(dim=-1).clamp(min=1e-12)
    peclet = (speed_b * mesh.size / (2.0 * diffusion.clamp(min=1e-12))).clamp(max=1e6)
    upwind = 1.0 / torch.tanh(peclet) - 1.0 / peclet
    tau = (mesh.size / (2.0 * speed_b) * upwind)[:, None, None]
    if stabilisation == 'upwind':
        return local, rhs
    local = local + tau * area * (g @ g.transpose(1, 2))
    if stabilisation == 'supg':
        local = local - tau * (kappa * area / 3.0) * g @ ones.transpose(1, 2)
        rhs = rhs - (tau[:, :, 0] * area) * cost[:, None] * g[:, :, 0]
    return local, rhs


class P1Basis:
    """Hat functions of the structured triangulation's nodes (all nodes of ``grid``).

    Args:
        grid: the node grid.
    """

    def __init__(self, grid: NodeGrid):
        self.grid = grid

    def local(self, xy: torch.Tensor, gradient: bool = False):
        """Nodes of the triangle holding each point, their hat functions' values and
        (optionally) gradients [1/m] there.

        Shapes:
            xy ``(n, 2)`` -> (index ``(n, 3)`` long, weights ``(n, 3)``, grad ``(n, 3, 2)``
            or None).
        """
        grid = self.grid
        i, j, fx, fy = grid.cell_coordinates(xy)
        n00, n10, n01, n11 = grid.corners(i, j)
        lower = (fx >= fy)[:, None]
        # Lower-right triangle (n00, n10, n11), upper-left (n00, n01, n11).
        index = torch.where(lower, torch.stack([n00, n10, n11], -1),
                            torch.stack([n00, n01, n11], -1))
        weights = torch.where(lower, torch.stack([1 - fx, fx - fy, fy], -1),
                              torch.stack([1 - fy, fy - fx, fx], -1))
        if not gradient:
            return index, weights, None
        templates = torch.tensor([[[-1.0, 0.0], [1.0, -1.0], [0.0, 1.0]],
                                  [[0.0, -1.0], [-1.0, 1.0], [1.0, 0.0]]], dtype=SOLVE_DTYPE,
                                 device=xy.device) / grid.spacing
        grad = torch.where(lower[..., None], templates[0], templates[1])
        return index, weights, grad

    def evaluate(self, xy: torch.Tensor, values: torch.Tensor, gradient: bool = False):
        """P1 interpolation of node ``values`` (and its gradient) at points.

        Shapes:
            xy ``(..., 2)``, values ``(N,)`` -> ``(...)`` (and ``(..., 2)``).
        """
        flat = xy.reshape(-1, 2).to(SOLVE_DTYPE)
        index, weights, grad = self.local(flat, gradient)
        v = values[index]
        value = (weights * v).sum(-1).reshape(xy.shape[:-1])
        if not gradient:
            return value
        return value, (grad * v[..., None]).sum(-2).reshape(*xy.shape[:-1], 2)

    def sampled(self, values: torch.Tensor, refine: int) -> Raster:
        """The interpolant on a grid ``refine`` times finer than the nodes.

        Shapes:
            values ``(N,)`` -> Raster ``(1, refine (ny - 1) + 1, refine (nx - 1) + 1)``.
        """
        grid = self.grid
        step = grid.spacing / refine
        fine = Raster(torch.zeros(1, refine * (grid.ny - 1) + 1, refine * (grid.nx - 1) + 1),
                      grid.origin, step, device=values.device, dtype=SOLVE_DTYPE)
        return Raster(self.evaluate(fine.cell_centres(), values), grid.origin, step,
                      dtype=SOLVE_DTYPE)


class FEMValueFunction(CollocatedValueFunction):
    """P1 interpolation of the node values on the structured triangulation; the policy is
    the one-step lookahead (``mdp.collocation``)."""

    def __init__(self, problem: MDPProblem, grid: NodeGrid, node_values: torch.Tensor,
                 solve_s: float, iterations: int):
        super().__init__(problem, P1Basis(grid), node_values, solve_s, iterations)
        self.grid, self.node_values = grid, node_values


def _solve_semi_lagrangian(problem: MDPProblem, grid: NodeGrid) -> tuple[torch.Tensor, int]:
    """Node values and iterations of the collocation scheme (module doc)."""
    ny, nx = grid.ny, grid.nx
    heading, index = fastest_path_policy(problem, grid.points[grid.free],
                                         grid.free.reshape(ny, nx), grid.goal.reshape(ny, nx),
                                         grid.origin, grid.spacing)
    return policy_iteration(problem, P1Basis(grid), grid.points, grid.free, grid.band,
                            heading, index)


def solve_fem(problem: MDPProblem, config: FEMConfig = FEMConfig()) -> FEMValueFunction:
    """Policy iteration on the P1 discretisation ``config.scheme`` (see module doc).

    Returns:
        The value function of the last policy, with ``solve_s`` [s] and ``iterations``.
    """
    start = time.perf_counter()
    anchor = tuple(problem.goal.tolist()) if config.scheme == 'semi-lagrangian' else None
    grid = NodeGrid(problem, config.spacing, config.land_band * config.spacing, anchor)
    if config.scheme == 'semi-lagrangian':
        values, iterations = _solve_semi_lagrangian(problem, grid)
    else:
        values, iterations = _solve_galerkin(problem, grid, config.stabilisation)
    if problem.device.type == 'cuda':
        torch.cuda.synchronize(problem.device)
    return FEMValueFunction(problem, grid, values, time.perf_counter() - start, iterations)


def _solve_galerkin(problem: MDPProblem, grid: NodeGrid, stabilisation: str
                    ) -> tuple[torch.Tensor, int]:
    """Node values and iterations of policy iteration on the P1 Galerkin scheme."""
    solved = grid.free | grid.band
    mesh = Mesh(grid, solved)
    unknown = torch.full((len(grid.points),), -1, dtype=torch.long, device=problem.device)
    unknown[solved] = torch.arange(int(solved.sum()), device=problem.device)
    rows = unknown[mesh.nodes][:, :, None].expand(-1, 3, 3)
    cols = unknown[mesh.nodes][:, None, :].expand(-1, 3, 3)
    in_system = rows >= 0
    couples = in_system & (cols >= 0)
    dirichlet = grid.boundary[mesh.nodes][:, None, :].expand(-1, 3, 3)
    current, variance = problem.drift(mesh.centroids)
    heading, index = problem.initial_policy(mesh.centroids)
    values = grid.boundary.clone()
    iterations = 0
    for iterations in range(1, problem.config.max_iterations + 1):
        local, rhs = _element_system(problem, mesh, current, variance, heading, index,
                                     stabilisation)
        # Known (Dirichlet) node values move to the right-hand side.
        rhs = rhs - (local * torch.where(couples, 0.0, dirichlet)).sum(-1)
        load = torch.zeros(int(solved.sum()), dtype=SOLVE_DTYPE, device=problem.device)
        load.index_add_(0, unknown[mesh.nodes][in_system[:, :, 0]],
                        rhs[in_system[:, :, 0]])
        previous = values[solved]
        values[solved] = sparse_solve(rows[couples], cols[couples], local[couples],
                                      load).to(values)
        if float((values[solved] - previous).abs().max()) <= problem.config.value_tolerance:
            break
        gradient = (mesh.gradients * values[mesh.nodes][:, :, None]).sum(1)
        new_heading, new_index = problem.greedy(gradient)
        changed = policy_changed(heading, index, new_heading, new_index,
                                 problem.config.heading_tolerance)
        heading, index = new_heading, new_index
        if not changed:
            break
    return values, iterations
