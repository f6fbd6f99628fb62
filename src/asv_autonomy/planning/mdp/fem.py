"""Mesh-based value function: P1 finite elements on a triangulated workspace.

The mesh is structured: nodes every ``spacing`` over the workspace, every cell split into
two triangles (lower-right ``n00, n10, n11`` and upper-left ``n00, n11, n01``); triangles
over free water and a band of land (solved with the land penalty, natural boundary at the
band's edge) are kept, goal nodes are Dirichlet ``V = 0``. Writing the diffusion Bellman equation for a fixed
policy as

    -D lap V - b . grad V + kappa V = c,   D = gamma |Sigma| / 2, b = gamma mu, kappa = 1 - gamma

(per decision step), the weak form integrates the diffusion by parts; advection dominates
(cell Peclet numbers of ~100). Default stabilisation: isotropic upwind diffusion
``|b| h / 2`` (monotone, so policy iteration converges); optional: streamline-upwind
Petrov-Galerkin weights ``tau (-b) . grad phi`` (Brooks & Hughes 1982) with the classical
``tau = h / (2 |b|) (coth Pe - 1 / Pe)`` (not monotone). The policy is constant per element (the gradient
of a P1 function is) and so are the current and the cost (sampled at the centroid).
Assembly is batched in torch; the sparse system is solved with SuperLU (scipy) on the CPU
and densely with ``torch.linalg.solve`` on other devices (same equations, float64).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from asv_autonomy.planning.mdp.mesh import NodeGrid
from asv_autonomy.planning.mdp.problem import (SOLVE_DTYPE, MDPProblem, ValueFunctionBase,
                                               policy_changed, sparse_solve)

STABILISATIONS = ('upwind', 'supg', 'streamline')


@dataclass(frozen=True)
class FEMConfig:
    """Mesh and stabilisation.

    Args:
        spacing: [m] node spacing (triangle legs).
        stabilisation: ``'upwind'`` (isotropic artificial diffusion ``|b| h / 2``: a
            monotone M-matrix scheme on this mesh, first-order accurate; policy iteration
            converges), ``'supg'`` (streamline-upwind Petrov-Galerkin: second-order but not
            monotone, policy iteration can exploit its crosswind wiggles) or
            ``'streamline'`` (artificial streamline diffusion only).
        land_band: [spacings] width of the band of land solved with the land penalty
            (``MDPConfig.land_penalty``); the mesh edge there has a natural boundary.
    """

    spacing: float = 20.0
    stabilisation: str = 'upwind'
    land_band: float = 2.0

    def __post_init__(self):
        if not (math.isfinite(self.spacing) and self.spacing > 0.0):
            raise ValueError(f'spacing must be > 0 m, got {self.spacing}')
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


class FEMValueFunction(ValueFunctionBase):
    """P1 interpolation of the node values on the structured triangulation."""

    def __init__(self, problem: MDPProblem, grid: NodeGrid, node_values: torch.Tensor,
                 solve_s: float, iterations: int):
        self.problem, self.grid = problem, grid
        self.node_values = node_values
        self.solve_s, self.iterations = solve_s, iterations

    def _corner_values(self, xy):
        i, j, fx, fy = self.grid.cell_coordinates(xy)
        v00, v10, v01, v11 = (self.node_values[n] for n in self.grid.corners(i, j))
        return fx, fy, v00, v10, v01, v11

    def _raw_value(self, xy):
        fx, fy, v00, v10, v01, v11 = self._corner_values(xy)
        lower = v00 + fx * (v10 - v00) + fy * (v11 - v10)
        upper = v00 + fy * (v01 - v00) + fx * (v11 - v01)
        return torch.where(fx >= fy, lower, upper)

    def _gradient(self, xy):
        fx, fy, v00, v10, v01, v11 = self._corner_values(xy)
        lower = torch.stack([v10 - v00, v11 - v10], -1)
        upper = torch.stack([v11 - v01, v01 - v00], -1)
        return torch.where((fx >= fy)[..., None], lower, upper) / self.grid.spacing


def solve_fem(problem: MDPProblem, config: FEMConfig = FEMConfig()) -> FEMValueFunction:
    """Policy iteration on the P1 / SUPG discretisation (see module doc).

    Returns:
        The value function of the last policy, with ``solve_s`` [s] and ``iterations``.
    """
    start = time.perf_counter()
    grid = NodeGrid(problem, config.spacing, config.land_band * config.spacing)
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
                                     config.stabilisation)
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
    if problem.device.type == 'cuda':
        torch.cuda.synchronize(problem.device)
    return FEMValueFunction(problem, grid, values, time.perf_counter() - start, iterations)
