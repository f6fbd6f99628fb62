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

Policy iteration starts from the shortest 8-connected path through the free supporting
states (no land crossings), evaluates (one sparse or dense linear solve), then improves
with the exact one-step lookahead over candidate headings around ``-grad V`` (fine near
it, coarse around the circle) and all speeds, with the expansion looked up bilinearly on
a grid ``LOOKUP_REFINE`` times finer than the supporting states. A state keeps its action
unless the new one turns by more than ``heading_tolerance`` or changes speed; iteration
stops when nothing changes or no value changes by more than ``value_tolerance``. Kernels
are evaluated locally through the grid of supporting states (each point only meets the
kernels whose support reaches it), so every step costs O(points), on CPU or CUDA.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.mdp.problem import (SOLVE_DTYPE, MDPProblem, ValueFunctionBase,
                                               sigma_offsets, sparse_solve)

KERNELS = ('wendland', 'gaussian')
GAUSSIAN_REACH = 4.0  # Gaussian kernels are cut off at this many lengthscales
# [rad] candidate headings of the policy improvement, relative to -grad V.
HEADING_OFFSETS = (0.0, 0.03, -0.03, 0.08, -0.08, 0.16, -0.16, 0.32, -0.32, 0.64, -0.64,
                   1.2, -1.2, 2.0, -2.0, math.pi)
LOOKUP_REFINE = 4  # the policy improvement looks values up on a grid of spacing / 4


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
    x_min, y_min = extent[0] - pad * h, extent[2] - pad * h
    nx = int(math.floor((extent[1] - extent[0]) / h + 1e-9)) + 1 + 2 * pad
    ny = int(math.floor((extent[3] - extent[2]) / h + 1e-9)) + 1 + 2 * pad
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
    heading = shortest_path_headings(free.reshape(ny, nx), path_end.reshape(ny, nx),
                                     (x_min, y_min), h, problem.goal).reshape(-1)[free]
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
    return basis, free[used], band[used], heading


NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


def shortest_path_headings(free: torch.Tensor, goal: torch.Tensor, origin, spacing: float,
                           target: torch.Tensor) -> torch.Tensor:
    """Headings along the shortest 8-connected path through free grid nodes to the goal
    (min-plus iterations on the grid: device-agnostic torch); nodes that cannot reach it
    head straight for ``target``.

    Args:
        free: nodes the path may use.
        goal: nodes where the path ends.
        origin: [m] (x0, y0) of node (0, 0).
        spacing: [m] node spacing.
        target: [m] (2,) goal centre.

    Returns:
        [rad] heading at every node.

    Shapes:
        free, goal ``(ny, nx)`` bool -> ``(ny, nx)``.
    """
    ny, nx = free.shape
    device = free.device
    inf = torch.tensor(float('inf'), dtype=SOLVE_DTYPE, device=device)
    padded = torch.full((ny + 2, nx + 2), float('inf'), dtype=SOLVE_DTYPE, device=device)
    length = torch.tensor([math.hypot(di, dj) * spacing for di, dj in NEIGHBOURS],
                          dtype=SOLVE_DTYPE, device=device)[:, None, None]
    distance = torch.where(goal, 0.0, inf)
    passable = free | goal
    for _ in range(ny * nx):
        padded[1:-1, 1:-1] = distance
        through = torch.stack([padded[1 + dj:1 + dj + ny, 1 + di:1 + di + nx]
                               for di, dj in NEIGHBOURS]) + length
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


def _triplets(basis: KernelBasis, row: torch.Tensor, xy: torch.Tensor, scale: torch.Tensor):
    """COO triplets of ``scale * psi(xy, centres)`` (normalised kernels) in rows ``row``.

    Shapes:
        row ``(n,)``, xy ``(n, 2)``, scale ``(n,)`` -> three ``(n * S,)``.
    """
    index, k, _ = basis.local(xy)
    psi = k / k.sum(-1, keepdim=True).clamp(min=1e-300)
    rows = row[:, None].expand_as(index)
    return rows.reshape(-1), index.reshape(-1), (psi * scale[:, None]).reshape(-1)


class _Lookahead:
    """One-step lookahead of the free states: sigma-point expectation of the kernel value
    with absorbing goal (0) and land (``land_cost``)."""

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

    def improve(self, basis: KernelBasis, weights: torch.Tensor, values: Raster):
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


class KernelValueFunction(ValueFunctionBase):
    """Solved normalised-kernel expansion of the supporting states' values ``weights``."""

    def __init__(self, problem: MDPProblem, config: KernelConfig, basis: KernelBasis,
                 weights: torch.Tensor, solve_s: float, iterations: int):
        self.problem, self.config = problem, config
        self.basis, self.weights = basis, weights
        self.solve_s, self.iterations = solve_s, iterations
        self._lookup = basis.sampled(weights, LOOKUP_REFINE)

    @property
    def centres(self) -> torch.Tensor:
        """[m] (M, 2) supporting states."""
        return self.basis.centres

    def _raw_value(self, xy):
        return self.basis.evaluate(xy, self.weights)

    def _gradient(self, xy):
        return self.basis.evaluate(xy, self.weights, gradient=True)[1]

    def _raster_value_and_gradient(self, xy):
        """Bilinear look-up (value and its gradient) in the expansion cached on a grid
        ``LOOKUP_REFINE`` times finer than the supporting states."""
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
        heading, index = _Lookahead(self.problem, flat).improve(self.basis, self.weights,
                                                                self._lookup)
        shape = xy.shape[:-1]
        return (heading.reshape(shape).float(),
                self.problem.speeds[index].reshape(shape).float())


def solve_kernel(problem: MDPProblem, config: KernelConfig = KernelConfig()
                 ) -> KernelValueFunction:
    """Policy iteration on the semi-Lagrangian kernel collocation system (module doc).

    Returns:
        The value function of the last policy, with ``solve_s`` [s] and ``iterations``.
    """
    start = time.perf_counter()
    basis, free, band, heading = _layout(problem, config)
    centres, device = basis.centres, problem.device
    count = len(centres)
    rows = torch.arange(count, device=device)
    ones = torch.ones(count, dtype=SOLVE_DTYPE, device=device)
    if not bool(free.any()):
        raise ValueError('no free water for the kernel supporting states (spacing '
                         f'{config.spacing} m too coarse for the workspace?)')
    # Every row starts with V(x_i) (the node value); land rows copy the nearest free node.
    fixed = [(rows, rows, ones)]
    nearest = rows[free][torch.cdist(centres[band], centres[free]).argmin(-1)]
    fixed.append((rows[band], nearest, -ones[band]))
    free_rows = rows[free]
    lookahead = _Lookahead(problem, centres[free])
    _, index = problem.initial_policy(centres[free])
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
    if problem.device.type == 'cuda':
        torch.cuda.synchronize(problem.device)
    return KernelValueFunction(problem, config, basis, weights,
                               time.perf_counter() - start, iterations)
