"""Where the boat may go: water cells of a regular grid minus round obstacles and cells
that perception reports blocked, as a signed distance to the nearest boundary."""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage

from asv_autonomy.planning.raster import Raster

Obstacle = tuple[float, float, float]


def _signed_distance(water: np.ndarray, origin, resolution: float,
                     obstacles: tuple[Obstacle, ...]) -> np.ndarray:
    """[m] (ny, nx) signed distance from every cell centre to the water/land boundary
    (cell edges; outside the grid counts as land) and the obstacle discs: > 0 in water."""
    padded = np.pad(water, 1, constant_values=False)
    inside = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(~padded)[1:-1, 1:-1]
    distance = np.where(water, inside - 0.5, 0.5 - outside) * resolution
    if obstacles:
        ny, nx = water.shape
        xs = origin[0] + resolution * np.arange(nx)
        ys = origin[1] + resolution * np.arange(ny)
        for x, y, radius in obstacles:
            disc = np.hypot(xs[None, :] - x, ys[:, None] - y) - radius
            np.minimum(distance, disc, out=distance)
    return distance


class Workspace:
    """Where the boat may go.

    Args:
        water: (ny, nx) True where a cell is navigable water; rows along +y.
        origin: [m] (x0, y0) map position of the centre of cell (row 0, column 0).
        resolution: [m] cell size.
        obstacles: ((x [m], y [m], radius [m]), ...) discs on the water.
        device: where the distance raster lives.

    Attributes:
        distance: Raster, signed distance [m] to the nearest land/obstacle/blocked boundary
            (positive in water, negative inside land). Outside the grid is land.
        water: the (ny, nx) water mask given (before obstacles and blocked cells).
    """

    def __init__(self, water: np.ndarray, origin: tuple[float, float], resolution: float,
                 obstacles=(), device='cpu', _blocked: np.ndarray | None = None):
        water = np.asarray(water, bool)
        if water.ndim != 2 or min(water.shape) < 2:
            raise ValueError(f'water must be a (ny, nx) mask with ny, nx >= 2, got '
                             f'{water.shape}')
        if not water.any():
            raise ValueError('water mask holds no water')
        obstacles = tuple((float(x), float(y), float(r)) for x, y, r in obstacles)
        if any(not r > 0.0 for _, _, r in obstacles):
            raise ValueError(f'obstacle radii must be > 0 m, got {obstacles}')
        self.water = water
        self.obstacles = obstacles
        free = water if _blocked is None else water & ~_blocked
        self.distance = Raster(_signed_distance(free, origin, resolution, obstacles),
                               origin, resolution, device=device)

    @property
    def origin(self) -> tuple[float, float]:
        return self.distance.origin

    @property
    def resolution(self) -> float:
        """[m] cell size."""
        return self.distance.resolution

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """[m] (x_min, x_max, y_min, y_max) of the cell centres."""
        return self.distance.extent

    @property
    def device(self) -> torch.device:
        return self.distance.values.device

    def to(self, device) -> 'Workspace':
        """The same workspace with its raster on another device."""
        other = object.__new__(Workspace)
        other.water, other.obstacles = self.water, self.obstacles
        other.distance = self.distance.to(device)
        return other

    def distance_to_land(self, xy: torch.Tensor) -> torch.Tensor:
        """[m] signed distance to the nearest boundary (bilinear; < 0 on land).

        Shapes:
            xy ``(..., 2)`` -> ``(...)``.
        """
        return self.distance.sample(xy.to(self.distance.values))[..., 0]

    def is_water(self, xy: torch.Tensor, clearance: float = 0.0) -> torch.Tensor:
        """True where the point is farther than ``clearance`` [m] from every boundary.

        Shapes:
            xy ``(..., 2)`` -> ``(...)`` bool.
        """
        return self.distance_to_land(xy) > clearance

    def with_blocked(self, occupancy: np.ndarray, origin: tuple[float, float],
                     resolution: float, threshold: int = 50) -> 'Workspace':
        """This workspace with the blocked cells of an occupancy grid turned into land.

        Cells >= ``threshold`` (nav_msgs/OccupancyGrid: 0-100) are blocked, lower values and
        -1 (unknown) are ignored. Blocked cells from an earlier call are not kept: the result
        is this workspace's water mask and obstacles minus ``occupancy``'s blocked cells.

        Args:
            occupancy: (H, W) int occupancy values, rows along +y.
            origin: [m] map position of the centre of occupancy cell (row 0, column 0)
                (an OccupancyGrid's ``info.origin`` is a cell *corner*: add half a cell).
            resolution: [m] occupancy cell size.
            threshold: smallest blocked value.

        Shapes:
            occupancy ``(H, W)``.
        """
        occupancy = np.asarray(occupancy)
        if occupancy.ndim != 2:
            raise ValueError(f'occupancy must be 2-D, got {occupancy.shape}')
        if not (math.isfinite(resolution) and resolution > 0.0):
            raise ValueError(f'occupancy resolution must be > 0 m, got {resolution}')
        ny, nx = self.water.shape
        blocked = np.zeros((ny, nx), bool)
        rows, cols = np.nonzero(occupancy >= threshold)
        if len(rows):
            # Every workspace cell whose centre lies in a blocked occupancy cell, plus the
            # cell nearest to each blocked centre (occupancy finer than the workspace).
            half = 0.5 * resolution
            x = origin[0] + cols * resolution
            y = origin[1] + rows * resolution
            x0, y0 = self.origin
            res = self.resolution
            i_lo = np.ceil((x - half - x0) / res - 1e-9).astype(int)
            i_hi = np.floor((x + half - x0) / res + 1e-9).astype(int)
            j_lo = np.ceil((y - half - y0) / res - 1e-9).astype(int)
            j_hi = np.floor((y + half - y0) / res + 1e-9).astype(int)
            span = int(max((i_hi - i_lo).max(), (j_hi - j_lo).max(), 0)) + 1
            for dj in range(span):
                for di in range(span):
                    i, j = i_lo + di, j_lo + dj
                    ok = (i <= i_hi) & (j <= j_hi) & (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
                    blocked[j[ok], i[ok]] = True
            i = np.rint((x - x0) / res).astype(int)
            j = np.rint((y - y0) / res).astype(int)
            ok = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
            blocked[j[ok], i[ok]] = True
        return Workspace(self.water, self.origin, self.resolution, self.obstacles,
                         device=self.device, _blocked=blocked)

    @classmethod
    def from_world(cls, world, resolution: float = 5.0, min_depth: float = 0.15,
                   device='cpu') -> 'Workspace':
        """Water where the simulator world (``sim.world.World``) is at least ``min_depth``
        [m] deep (default: the vessel's draft), sampled every ``resolution`` [m] over
        ``world.extent``, plus ``world.obstacles`` as discs."""
        x_min, x_max, y_min, y_max = world.extent
        nx = int(math.floor((x_max - x_min) / resolution)) + 1
        ny = int(math.floor((y_max - y_min) / resolution)) + 1
        xs = x_min + resolution * np.arange(nx)
        ys = y_min + resolution * np.arange(ny)
        depth = world.depth(xs[None, :], ys[:, None])
        obstacles = tuple((o.x, o.y, o.radius) for o in world.obstacles)
        return cls(depth >= min_depth, (xs[0], ys[0]), resolution, obstacles, device=device)

    @classmethod
    def from_polygon(cls, polygon, resolution: float, obstacles=(), margin: float = 20.0,
                     device='cpu') -> 'Workspace':
        """Water inside ``polygon`` (V, 2) [m] (the shore), on a grid of ``resolution`` [m]
        covering the polygon plus ``margin`` [m] of land around it."""
        from matplotlib.path import Path
        polygon = np.asarray(polygon, float)
        if polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3:
            raise ValueError(f'polygon must be (V >= 3, 2) vertices, got {polygon.shape}')
        if not (math.isfinite(resolution) and resolution > 0.0 and margin >= 0.0):
            raise ValueError(f'need resolution > 0 and margin >= 0 m, got {resolution}, '
                             f'{margin}')
        low = polygon.min(0) - margin
        high = polygon.max(0) + margin
        nx, ny = (np.ceil((high - low) / resolution).astype(int) + 1)
        xs = low[0] + resolution * np.arange(nx)
        ys = low[1] + resolution * np.arange(ny)
        xx, yy = np.meshgrid(xs, ys)
        inside = Path(polygon).contains_points(np.stack([xx.ravel(), yy.ravel()], 1))
        return cls(inside.reshape(ny, nx), (xs[0], ys[0]), resolution, obstacles,
                   device=device)
