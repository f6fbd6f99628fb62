"""Regular node grid over the workspace shared by the finite-element and grid solvers:
node classes (free, goal, land), Dirichlet values and P1 / bilinear interpolation."""
from __future__ import annotations

import math

import torch

from asv_autonomy.planning.mdp.problem import SOLVE_DTYPE, MDPProblem


class NodeGrid:
    """Nodes every ``spacing`` [m] over the workspace extent, node (j, i) at
    ``(x0 + i h, y0 + j h)``; flat index ``j * nx + i``. ``(x0, y0)`` is the extent's corner,
    or with ``anchor`` [m] (x, y) the grid is aligned so that a node sits on the anchor
    (e.g. the goal centre) and covers the extent (nodes outside it count as land).

    Attributes:
        points: [m] (N, 2) node positions.
        free: (N,) bool, nodes whose value is unknown (free water outside the goal).
        goal: (N,) bool, nodes in the goal disc (and the node nearest to the goal).
        band: (N,) bool, land nodes within ``land_band`` [m] of the free water.
        boundary: [cost] (N,) Dirichlet value of the other nodes (0 goal, land_cost land).
    """

    def __init__(self, problem: MDPProblem, spacing: float, land_band: float = 0.0,
                 anchor=None):
        if not (math.isfinite(spacing) and spacing > 0.0):
            raise ValueError(f'spacing must be > 0 m, got {spacing}')
        extent = problem.workspace.extent
        x_min, x_max, y_min, y_max = extent
        if anchor is not None:
            x_min = anchor[0] - math.ceil((anchor[0] - x_min) / spacing - 1e-9) * spacing
            y_min = anchor[1] - math.ceil((anchor[1] - y_min) / spacing - 1e-9) * spacing
            x_max = x_min + math.ceil((x_max - x_min) / spacing - 1e-9) * spacing
            y_max = y_min + math.ceil((y_max - y_min) / spacing - 1e-9) * spacing
        self.spacing = float(spacing)
        self.origin = (x_min, y_min)
        self.nx = int(math.floor((x_max - x_min) / spacing + 1e-9)) + 1
        self.ny = int(math.floor((y_max - y_min) / spacing + 1e-9)) + 1
        if min(self.nx, self.ny) < 3:
            raise ValueError(f'spacing {spacing} m leaves fewer than 3 nodes across the '
                             f'workspace')
        device = problem.device
        xs = x_min + spacing * torch.arange(self.nx, dtype=SOLVE_DTYPE, device=device)
        ys = y_min + spacing * torch.arange(self.ny, dtype=SOLVE_DTYPE, device=device)
        self.points = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1).reshape(-1, 2)
        goal = problem.in_goal(self.points)
        goal[(self.points - problem.goal).norm(dim=-1).argmin()] = True  # goal never lost
        distance = problem.workspace.distance_to_land(self.points.float()).to(SOLVE_DTYPE)
        low = torch.tensor(extent[::2], dtype=SOLVE_DTYPE, device=device)
        high = torch.tensor(extent[1::2], dtype=SOLVE_DTYPE, device=device)
        distance = distance - (self.points - torch.minimum(torch.maximum(self.points, low),
                                                           high)).norm(dim=-1)
        self.goal = goal
        self.free = (distance > problem.clearance) & ~goal
        self.band = ~self.free & ~goal & (distance > problem.clearance - land_band)
        self.boundary = torch.where(goal, 0.0, problem.land_cost).to(SOLVE_DTYPE)

    def cell_coordinates(self, xy: torch.Tensor):
        """Cell index (i, j) of the lower-left node and fractions (fx, fy) in [0, 1].

        Shapes:
            xy ``(..., 2)`` -> four ``(...)`` tensors (long, long, float64, float64).
        """
        xy = xy.to(SOLVE_DTYPE)
        fx = ((xy[..., 0] - self.origin[0]) / self.spacing).clamp(0.0, self.nx - 1.0)
        fy = ((xy[..., 1] - self.origin[1]) / self.spacing).clamp(0.0, self.ny - 1.0)
        i = fx.floor().clamp(max=self.nx - 2.0)
        j = fy.floor().clamp(max=self.ny - 2.0)
        return i.long(), j.long(), fx - i, fy - j

    def corners(self, i: torch.Tensor, j: torch.Tensor):
        """Flat node indices n00, n10, n01, n11 of cells (i, j)."""
        n00 = j * self.nx + i
        return n00, n00 + 1, n00 + self.nx, n00 + self.nx + 1
