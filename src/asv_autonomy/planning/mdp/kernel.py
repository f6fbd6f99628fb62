"""Mesh-free value function: kernels centred on supporting states, solved by collocation.

``V(x) = sum_j V_j k(|x - x_j|) / sum_j k(|x - x_j|)``: normalised radial kernels (compact
Wendland C2 or Gaussian; a partition of unity, Shepard's method) centred on supporting
states ``x_j`` on a regular grid (optionally jittered), weighted by the values ``V_j`` at
the supporting states. Each supporting state gets one collocation row:

* free water: the Bellman equation of the current policy in its diffusion form,
  ``V(x) = c(a) + gamma * mean_k V(x + mu + delta_k)`` with the four sigma points
  ``delta_k = +/- sqrt(2 Sigma)`` along x and y (``mdp.problem.sigma_offsets``). Their mean
  is ``V + mu . grad V + 1/2 tr(Sigma Hess V)`` up to third-order terms, i.e. exactly the
  second-order Taylor (diffusion) approximation of ``E[V(x')]``, written without
  derivatives of the kernels (semi-Lagrangian collocation). A sigma point in the goal disc
  contributes 0 and one on land/clearance ``land_cost`` (absorbing, as in the grid value
  iteration);
* land within ``land_band`` of the water (and beyond the workspace extent): the value of
  the nearest free supporting state, so that sigma points near the shore see no drop;
* the goal disc: ``V = 0``.

Why normalised kernels: with plain (interpolating) kernel weights the transition
``mean_k psi(x + mu + delta_k)`` has negative entries and the system ``I - gamma P`` was
nearly singular on the simulated lake (values of +/-10^5 next to the shore and islands,
whatever the kernel and spacing). Normalised kernels are non-negative and sum to 1, so the
scheme is monotone: ``I - gamma P`` is an M-matrix, every policy evaluation is bounded by
``max c / (1 - gamma)`` and policy iteration improves monotonically. The price is
smoothing of the value's curvature over about a kernel width (like the finite elements'
upwind diffusion); linear trends are reproduced up to the small ripple of the kernel sum
on a regular grid.

The slots are aligned with the goal centre (one supporting state there; a workspace
symmetric about a line through the goal gets a symmetric layout). Policy iteration (``mdp.collocation.policy_iteration``, shared with the finite
elements) starts from the cheapest 8-connected path through the free supporting states in
the mean current (:func:`fastest_path_policy`: no land crossings, crabbing into the
current, so a river's slow banks are found from the first iteration). Kernels
are evaluated locally through the grid of supporting states (each point only meets the
kernels whose support reaches it), so every step costs O(points), on CPU or CUDA.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.mdp.collocation import (CollocatedValueFunction,
                                                   policy_iteration)
from asv_autonomy.planning.mdp.problem import SOLVE_DTYPE, MDPProblem

KERNELS = ('wendland', 'gaussian')
GAUSSIAN_REACH = 4.0  # Gaussian kernels are cut off at this many lengthscales


@dataclass(frozen=True)
class KernelConfig:
    """Supporting states and kernel shape.

    Args:
        spacing: [m] distance between neighbouring supporting states.
        kernel: ``'wendland'`` (compact C2 Wendland ``(1 - r)^4 (4 r + 1)``,
            ``r = d / support``) or ``'gaussian'`` (``exp(-d^2 / 2 l^2)``, cut off at
            ``GAUSSIAN_REACH`` lengthscales).
        width: kernel size in spacings: the Wendland kernel's support radius or the
            Gaussian's lengthscale.
        jitter: random displacement of the free supporting states, as a fraction of the
            spacing (0 = regular grid, < 0.5).
        land_band: [spacings] land within this distance of the free water gets supporting
            states (extrapolation rows).
        seed: random seed of the jitter.
    """

    spacing: float = 30.0
    kernel: str = 'wendland'
    width: float = 1.6
    jitter: float = 0.0
    land_band: float = 2.0
    seed: int = 0

    def __post_init__(self):
        if not (math.isfinite(self.spacing) and self.spacing > 0.0):
            raise ValueError(f'spacing must be > 0 m, got {self.spacing}')
        if self.kernel not in KERNELS:
            raise ValueError(f'kernel must be one of {KERNELS}, got {self.kernel!r}')
        if not (math.isfinite(self.width) and self.width > 0.0):
            raise ValueError(f'width must be > 0 spacings, got {self.width}')
        if self.kernel == 'wendland' and self.width <= 1.0:
            raise ValueError(f'a Wendland kernel needs width > 1 spacing (it must reach the '
                             f'neighbours), got {self.width}')
        if not 0.0 <= self.jitter < 0.5:
            raise ValueError(f'jitter must be in [0, 0.5), got {self.jitter}')
        if not (math.isfinite(self.land_band) and self.land_band >= 1.0):
            raise ValueError(f'land_band must be >= 1 spacing (the extrapolation rows need '
                             f'it), got {self.land_band}')


class KernelBasis:
    """Radial kernels on supporting states that sit on (or near) the slots of a regular
    grid, at most one per slot, evaluated locally through that grid.

    Args:
        centres: [m] kernel centres.
        slots: centre index per grid slot (-1: none); slot (j, i) at
            ``origin + (i, j) * spacing``.
        origin: [m] (x0, y0) of slot (0, 0).
        spacing: [m] slot spacing.
        kernel: ``'wendland'`` or ``'gaussian'``.
        size: [m] Wendland support radius or Gaussian lengthscale.
        jitter: largest displacement of a centre from its slot, in spacings per axis.

    Shapes:
        centres ``(M, 2)``, slots ``(ny, nx)``.
    """

    def __init__(self, centres: torch.Tensor, slots: torch.Tensor, origin, spacing: float,
                 kernel: str, size: float, jitter: float = 0.0):
        self.centres, self.slots = centres, slots
        self.origin = torch.tensor(origin, dtype=SOLVE_DTYPE, device=centres.device)
        self.spacing, self.kernel, self.size = spacing, kernel, size
        radius = size * (GAUSSIAN_REACH if kernel == 'gaussian' else 1.0)
        reach = int(math.floor(radius / spacing + jitter))
        steps = torch.arange(-reach, reach + 2, device=centres.device)
        self.offsets = torch.stack(torch.meshgrid(steps, steps, indexing='xy'), -1).reshape(-1, 2)

    def local(self, xy: torch.Tensor, gradient: bool = False):
        """Kernels that may reach each point: their indices, values and (optionally)
        gradients with respect to the point; absent kernels have value 0.

        Shapes:
            xy ``(n, 2)`` -> (index ``(n, S)`` long, k ``(n, S)``, grad ``(n, S, 2)`` or None).
        """
        ny, nx = self.slots.shape
        cell = ((xy - self.origin) / self.spacing).floor().long()
        ij = cell[:, None, :] + self.offsets
        inside = (ij[..., 0] >= 0) & (ij[..., 0] < nx) & (ij[..., 1] >= 0) & (ij[..., 1] < ny)
        index = self.slots[ij[..., 1].clamp(0, ny - 1), ij[..., 0].clamp(0, nx - 1)]
        present = inside & (index >= 0)
        index = index.clamp(min=0)
        diff = xy[:, None, :] - self.centres[index]
        d2 = (diff * diff).sum(-1)
        if self.kernel == 'gaussian':
            inv = 1.0 / (self.size * self.size)
            k = torch.exp(-0.5 * d2 * inv) * present
            grad = -diff * (k * inv)[..., None] if gradient else None
            return index, k, grad
        r = (d2.sqrt() / self.size).clamp(max=1.0)
        one = 1.0 - r
        one3 = one * one * one * present
        k = one3 * one * (4.0 * r + 1.0)
        grad = (-20.0 / (self.size * self.size)) * one3[..., None] * diff if gradient else None
        return index, k, grad

    def evaluate(self, xy: torch.Tensor, values: torch.Tensor, gradient: bool = False):
        """Normalised-kernel (Shepard) expansion ``sum_j values_j k_j(x) / sum_j k_j(x)``
        (and its gradient) at points; 0 where no kernel reaches.

        Shapes:
            xy ``(..., 2)``, values ``(M,)`` -> ``(...)`` (and ``(..., 2)``).
        """
        flat = xy.reshape(-1, 2).to(SOLVE_DTYPE)
        results, grads = [], []
        for chunk in flat.split(32768):
            index, k, grad = self.local(chunk, gradient)
            v = values[index]
            total = k.sum(-1).clamp(min=1e-300)
            value = (k * v).sum(-1) / total
            results.append(value)
            if gradient:
                grads.append(((grad * (v - value[:, None])[..., None]).sum(-2))
                             / total[:, None])
        value = torch.cat(results).reshape(xy.shape[:-1])
        if not gradient:
            return value
        return value, torch.cat(grads).reshape(*xy.shape[:-1], 2)

    def sampled(self, weights: torch.Tensor, refine: int) -> Raster:
        """The expansion evaluated on a grid ``refine`` times finer than the slots (for
        fast bilinear look-ups of the policy improvement and of rasters).

        Shapes:
            weights ``(M,)`` -> Raster ``(1, refine (ny - 1) + 1, refine (nx - 1) + 1)``.
        """
        ny, nx = self.slots.shape
        step = self.spacing / refine
        grid = Raster(torch.zeros(1, refine * (ny - 1) + 1, refine * (nx - 1) + 1),
                      tuple(self.origin.tolist()), step, device=self.centres.device,
                      dtype=SOLVE_DTYPE)
        return Raster(self.evaluate(grid.cell_centres(), weights), grid.origin, step,
                      dtype=SOLVE_DTYPE)


def _layout(problem: MDPProblem, config: KernelConfig):
    """Supporting states on the slots of a regular grid and their collocation roles.

    Returns:
        (basis, free mask, band mask) over the centres, and the initial policy's heading
        [rad] at the free ones (along the shortest path through free water).
    """
    extent = problem.workspace.extent
    h = config.spacing
    pad = int(math.ceil(config.land_band))  # slots beyond the extent (land there)
    # A slot on the goal centre (the tip of the value's cone) and the others aligned with
    # it, covering the extent plus the padding. (Slots aligned with the extent's corner
    # instead could leave the goal disc without a supporting state and favoured one bank
    # of a river over the other.)
    goal_x, goal_y = (float(c) for c in problem.goal)
    x_min = goal_x - math.ceil((goal_x - extent[0]) / h - 1e-9) * h - pad * h
    y_min = goal_y - math.ceil((goal_y - extent[2]) / h - 1e-9) * h - pad * h
    nx = int(math.ceil((extent[1] - x_min) / h - 1e-9)) + 1 + pad
    ny = int(math.ceil((extent[3] - y_min) / h - 1e-9)) + 1 + pad
    device = problem.device
    xs = x_min + h * torch.arange(nx, dtype=SOLVE_DTYPE, device=device)
    ys = y_min + h * torch.arange(ny, dtype=SOLVE_DTYPE, device=device)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1).reshape(-1, 2)
    low = torch.tensor(extent[::2], dtype=SOLVE_DTYPE, device=device)
    high = torch.tensor(extent[1::2], dtype=SOLVE_DTYPE, device=device)
    outside = (grid - torch.minimum(torch.maximum(grid, low), high)).norm(dim=-1)
    distance = problem.workspace.distance_to_land(grid.float()).to(SOLVE_DTYPE) - outside
    goal = problem.in_goal(grid)
    free = (distance > problem.clearance) & ~goal
    band = ~free & ~goal & (distance > problem.clearance - config.land_band * h)
    path_end = goal.clone()
    path_end[(grid - problem.goal).norm(dim=-1).argmin()] = True
    heading, index = fastest_path_policy(problem, grid[free], free.reshape(ny, nx),
                                         path_end.reshape(ny, nx), (x_min, y_min), h)
    if config.jitter > 0.0:
        generator = torch.Generator().manual_seed(config.seed)
        offset = torch.rand(grid.shape, generator=generator, dtype=SOLVE_DTYPE) - 0.5
        moved = grid + (2.0 * config.jitter * h) * offset.to(device)
        keep = free & problem.is_free(moved) & ~problem.in_goal(moved)
        grid = torch.where(keep[:, None], moved, grid)
    used = free | band | goal
    slots = torch.full((ny * nx,), -1, dtype=torch.long, device=device)
    slots[used] = torch.arange(int(used.sum()), device=device)
    basis = KernelBasis(grid[used], slots.reshape(ny, nx), (x_min, y_min), h, config.kernel,
                        config.width * h, config.jitter)
    return basis, free[used], band[used], heading, index


NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


def shortest_path_headings(free: torch.Tensor, goal: torch.Tensor, origin, spacing: float,
                           target: torch.Tensor, metre_cost: torch.Tensor | None = None
                           ) -> torch.Tensor:
    """Directions of the cheapest 8-connected path through free grid nodes to the goal
    (min-plus iterations on the grid: device-agnostic torch); nodes that cannot reach it
    point straight at ``target``.

    Args:
        free: nodes the path may use.
        goal: nodes where the path ends.
        origin: [m] (x0, y0) of node (0, 0).
        spacing: [m] node spacing.
        target: [m] (2,) goal centre.
        metre_cost: [cost/m] cost per metre of leaving each node towards each of the
            ``NEIGHBOURS`` (``inf``: impossible); None: 1 (the shortest path).

    Returns:
        [rad] direction of the path's first edge at every node.

    Shapes:
        free, goal ``(ny, nx)`` bool, metre_cost ``(8, ny, nx)`` -> ``(ny, nx)``.
    """
    ny, nx = free.shape
    device = free.device
    inf = torch.tensor(float('inf'), dtype=SOLVE_DTYPE, device=device)
    padded = torch.full((ny + 2, nx + 2), float('inf'), dtype=SOLVE_DTYPE, device=device)
    length = torch.tensor([math.hypot(di, dj) * spacing for di, dj in NEIGHBOURS],
                          dtype=SOLVE_DTYPE, device=device)[:, None, None]
    edge = length if metre_cost is None else length * metre_cost
    distance = torch.where(goal, 0.0, inf)
    passable = free | goal
    for _ in range(ny * nx):
        padded[1:-1, 1:-1] = distance
        through = torch.stack([padded[1 + dj:1 + dj + ny, 1 + di:1 + di + nx]
                               for di, dj in NEIGHBOURS]) + edge
        best, choice = through.min(0)
        update = torch.where(passable & ~goal, torch.minimum(distance, best), distance)
        if bool((update == distance).all()):
            break
        distance = update
    steps = torch.tensor(NEIGHBOURS, dtype=SOLVE_DTYPE, device=device)[choice]
    ys = origin[1] + spacing * torch.arange(ny, dtype=SOLVE_DTYPE, device=device)
    xs = origin[0] + spacing * torch.arange(nx, dtype=SOLVE_DTYPE, device=device)
    towards = target - torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1)
    direction = torch.where((torch.isfinite(distance) & (distance > 0.0))[..., None], steps,
                            towards)
    return torch.atan2(direction[..., 1], direction[..., 0])


def fastest_path_policy(problem: MDPProblem, xy: torch.Tensor, free: torch.Tensor,
                        goal: torch.Tensor, origin, spacing: float):
    """Initial policy of the free nodes ``xy``: follow the cheapest 8-connected path in the
    mean current (:meth:`MDPProblem.track` costs per metre, so a river's slow banks and a
    following current attract it), crabbing into the current along the path's first edge;
    nodes without a path head for the goal (:meth:`MDPProblem.initial_policy`).

    Returns:
        heading [rad] and speed index per free node.

    Shapes:
        xy ``(n, 2)``, free/goal ``(ny, nx)`` with n = free.sum() -> ``(n,)``, ``(n,)``.
    """
    ny, nx = free.shape
    device = xy.device
    units = torch.tensor(NEIGHBOURS, dtype=SOLVE_DTYPE, device=device)
    units = units / units.norm(dim=-1, keepdim=True)
    metre_cost = torch.full((len(NEIGHBOURS), ny * nx), math.inf, dtype=SOLVE_DTYPE,
                            device=device)
    metre_cost[:, free.reshape(-1)] = problem.track(xy[None], units[:, None, :])[2]
    direction = shortest_path_headings(free, goal, origin, spacing, problem.goal,
                                       metre_cost.reshape(-1, ny, nx)).reshape(-1)[
                                           free.reshape(-1)]
    unit = torch.stack([direction.cos(), direction.sin()], -1)
    heading, index, cost = problem.track(xy, unit)
    straight_heading, straight_index = problem.initial_policy(xy)
    stuck = ~torch.isfinite(cost)
    return (torch.where(stuck, straight_heading, heading),
            torch.where(stuck, straight_index, index))


class KernelValueFunction(CollocatedValueFunction):
    """Solved normalised-kernel expansion of the supporting states' values ``weights``."""

    def __init__(self, problem: MDPProblem, config: KernelConfig, basis: KernelBasis,
                 weights: torch.Tensor, solve_s: float, iterations: int):
        super().__init__(problem, basis, weights, solve_s, iterations)
        self.config = config

    @property
    def centres(self) -> torch.Tensor:
        """[m] (M, 2) supporting states."""
        return self.basis.centres


def solve_kernel(problem: MDPProblem, config: KernelConfig = KernelConfig()
                 ) -> KernelValueFunction:
    """Policy iteration on the semi-Lagrangian kernel collocation system (module doc).

    Returns:
        The value function of the last policy, with ``solve_s`` [s] and ``iterations``.
    """
    start = time.perf_counter()
    basis, free, band, heading, index = _layout(problem, config)
    weights, iterations = policy_iteration(problem, basis, basis.centres, free, band,
                                           heading, index)
    if problem.device.type == 'cuda':
        torch.cuda.synchronize(problem.device)
    return KernelValueFunction(problem, config, basis, weights,
                               time.perf_counter() - start, iterations)
