"""The waterline in the image projected onto the water plane: a local occupancy grid in ``map``.

Camera model: pinhole (fx, fy, cx, cy) [px], lens ``mount_height`` above a flat water plane,
optical axis along the heading pitched down by ``pitch`` (as the simulator's camera, see
:mod:`asv_autonomy.sim.camera`). The ray through pixel (u, v), with a = (u - cx) / fx and
b = (v - cy) / fy, has the level-frame direction (forward, left, up) =
(cos p - b sin p, -a, -(sin p + b cos p)) and meets the water at
t = mount_height / (sin p + b cos p) when that is positive (below the horizon row
v_h = cy - fy tan p).

For every image column the boundary row gives the waterline point on the plane. Cells
along the ground ray from the camera to that point are free (0), the cell of the point is
blocked (100), cells beyond are unknown (-1). A boundary at or above the horizon, or
farther than ``max_range``, means open water: free up to ``max_range``, nothing blocked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

FREE, BLOCKED, UNKNOWN = 0, 100, -1


@dataclass(frozen=True)
class ProjectionConfig:
    """Camera mounting and the grid the waterline is projected into.

    Args:
        mount_height: [m] lens height above the water plane.
        pitch: [rad] down-tilt of the optical axis (positive looks down).
        max_range: [m] farthest waterline distance trusted; beyond it, free up to it.
        resolution: [m] grid cell size.
        size: [m] side of the square grid, centred on the camera (cell-aligned to
            multiples of ``resolution`` in ``map``, so consecutive grids share cells).
    """

    mount_height: float = 1.0
    pitch: float = math.radians(3.0)
    max_range: float = 60.0
    resolution: float = 0.5
    size: float = 130.0

    def __post_init__(self):
        if not (math.isfinite(self.mount_height) and self.mount_height > 0.0):
            raise ValueError(f'mount_height must be > 0 m, got {self.mount_height}')
        if not (math.isfinite(self.pitch) and abs(self.pitch) < math.radians(80.0)):
            raise ValueError(f'pitch must be finite and within +-80 deg, got {self.pitch} rad')
        if not (math.isfinite(self.max_range) and self.max_range > 0.0):
            raise ValueError(f'max_range must be > 0 m, got {self.max_range}')
        if not (math.isfinite(self.resolution) and self.resolution > 0.0):
            raise ValueError(f'resolution must be > 0 m, got {self.resolution}')
        if not (math.isfinite(self.size) and self.size >= 2.0 * self.resolution):
            raise ValueError(f'size must be >= 2 x resolution, got {self.size} m')
        if self.size / self.resolution > 4096:
            raise ValueError(f'grid of {self.size / self.resolution:.0f} cells per side is '
                             f'too large (max 4096)')


class ProjectedGrid(NamedTuple):
    """Occupancy grid with the fields of ``ros.conversions.GridArray`` (``GridArray(*g)``).

    Cell [row, col] covers x = origin_x + (col + 0.5) * resolution, y = origin_y +
    (row + 0.5) * resolution in ``map``.
    """

    data: np.ndarray        # (rows, cols) int8: 0 free, 100 blocked, -1 unknown
    resolution: float       # [m]
    origin_x: float         # [m] corner of cell [0, 0]
    origin_y: float         # [m]
    origin_yaw: float = 0.0


def boundary_ground_points(boundary_rows: np.ndarray, intrinsics, config: ProjectionConfig,
                           columns: np.ndarray | None = None):
    """Waterline points on the water plane in the level camera frame.

    Args:
        boundary_rows: (N,) [px] boundary row of each column.
        intrinsics: (fx, fy, cx, cy) [px].
        config: mounting and range.
        columns: (N,) [px] column of each row value (default 0 .. N-1).

    Returns:
        forward, left: (N,) [m] ground point of each column's waterline, cut at
        ``max_range``; blocked: (N,) bool, the point is a real obstacle (False: open water
        up to ``max_range``).
    """
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    rows = np.asarray(boundary_rows, dtype=np.float64).reshape(-1)
    if columns is None:
        columns = np.arange(rows.size, dtype=np.float64)
    a = (np.asarray(columns, np.float64) - cx) / fx
    b = (np.nan_to_num(rows, nan=-1e9) - cy) / fy
    sp, cp = math.sin(config.pitch), math.cos(config.pitch)
    down = sp + b * cp
    below = down > 1e-9
    t = np.where(below, config.mount_height / np.where(below, down, 1.0), 0.0)
    forward = t * (cp - b * sp)
    left = -t * a
    dist = np.hypot(forward, left)
    blocked = below & (dist <= config.max_range)
    # Open water: the ray's azimuth at the horizon (b -> -tan p), out to max_range.
    az = np.where(below, np.arctan2(left, np.where(below, forward, 1.0)),
                  np.arctan2(-a * cp, 1.0))
    reach = np.where(blocked, dist, config.max_range)
    return reach * np.cos(az), reach * np.sin(az), blocked


def project_boundary(boundary_rows: np.ndarray, intrinsics, pose,
                     config: ProjectionConfig = ProjectionConfig()) -> ProjectedGrid:
    """Local occupancy grid in ``map`` of an image waterline.

    Args:
        boundary_rows: (W,) [px] waterline row of every image column (pixel centres at
            integers; water below), as ``Segmentation.boundary_rows``.
        intrinsics: (fx, fy, cx, cy) [px] of that image.
        pose: (x [m], y [m], yaw [rad]) of the camera in ``map`` (ENU, yaw from east).
        config: mounting and grid.

    Returns:
        ProjectedGrid: free (0) along each column's ground ray up to its waterline point,
        blocked (100) at the point, unknown (-1) elsewhere.
    """
    rows = np.asarray(boundary_rows, dtype=np.float64).reshape(-1)
    if rows.size == 0:
        raise ValueError('boundary_rows is empty')
    x, y, yaw = (float(v) for v in pose)
    if not np.isfinite([x, y, yaw]).all():
        raise ValueError(f'pose must be finite, got {pose}')
    fx = float(intrinsics[0])
    res = config.resolution
    # Enough rays that neighbours are at most half a cell apart at max_range.
    half_fov = math.atan(max(abs(-0.5 - intrinsics[2]), abs(rows.size - 0.5 - intrinsics[2]))
                         / fx)
    n_rays = int(min(8192, max(rows.size, math.ceil(2 * half_fov * config.max_range
                                                    / (0.5 * res)))))
    columns = np.linspace(0.0, rows.size - 1.0, n_rays)
    ray_rows = np.interp(columns, np.arange(rows.size), rows)
    fwd, lft, blocked = boundary_ground_points(ray_rows, intrinsics, config, columns)

    n = int(math.ceil(config.size / res))
    ox = math.floor((x - 0.5 * n * res) / res) * res
    oy = math.floor((y - 0.5 * n * res) / res) * res
    data = np.full((n, n), UNKNOWN, np.int8)
    cyaw, syaw = math.cos(yaw), math.sin(yaw)

    def cells(f, l):
        mx = x + f * cyaw - l * syaw
        my = y + f * syaw + l * cyaw
        col = np.floor((mx - ox) / res).astype(np.int64)
        row = np.floor((my - oy) / res).astype(np.int64)
        ok = (col >= 0) & (col < n) & (row >= 0) & (row < n)
        return row[ok], col[ok]

    reach = np.hypot(fwd, lft)
    steps = int(math.ceil(reach.max() / (0.5 * res))) + 1
    frac = np.linspace(0.0, 1.0, steps)[None, :]
    # Free up to just short of the point (the point's own cell is blocked below).
    shorten = np.where(blocked, np.maximum(reach - 0.5 * res, 0.0) / np.maximum(reach, 1e-9),
                       1.0)[:, None]
    along = shorten * frac                                            # (rays, steps)
    data[cells((fwd[:, None] * along).ravel(), (lft[:, None] * along).ravel())] = FREE
    data[cells(fwd[blocked], lft[blocked])] = BLOCKED
    return ProjectedGrid(data, res, ox, oy, 0.0)
