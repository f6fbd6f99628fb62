"""Static world of the simulator: a lake bathymetry and a few obstacles on the water.

Default source: matplotlib's sample ``topobathy.npz`` (ETOPO-like 2.4 km grid of the
Salish Sea, 48-50 N, 122-126 W; ``topo`` [m] elevation, negative = water). It is far too
big and too deep for a small survey boat, so the default world is an honest *caricature*
of a piece of it, not a real lake:

* horizontal: a crop of ``crop`` cells (default: the southern Strait of Georgia and the
  Gulf Islands, 35 x 30 cells ~ 85 x 67 km) is shrunk so one source cell spans
  ``cell_size`` m (default 40 m: a scale factor of ~1:60, a 1.36 x 1.16 km world);
* vertical: water depths ``d`` (1-400 m in the crop) are compressed to lake depths
  ``min_depth + (max_depth - min_depth) * (d / d_max) ** depth_exponent``
  (default 1-40 m); land is set to ``-land_height`` (only the shoreline matters);
* the outermost ring of cells is land, which closes the lake (no open boundary);
* water depths are smoothed with a Gaussian of ``smoothing`` cells over water cells only
  (land cells keep their value, so islands keep their size): without it the bicubic
  spline rings where a shallow shelf cell meets a deep cell and makes false shoals;
* between cell centres the depth is a bicubic interpolating spline, so the shoreline
  is the smooth zero contour of that surface.

Many coastal cells of the source are stored as exactly -1 m, so the lake has broad
shallow (~3 m) shelves around a ~35 m deep basin, and one-cell islands become ~40 m
round islets.

Alternatively ``source`` is a path to a ``.npy`` depth grid or an ``.npz`` with key
``depth``: depths [m, positive down, <= 0 on land], rows = y (south to north),
columns = x (west to east), used as is (no crop, no depth mapping), with ``cell_size``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.interpolate import RectBivariateSpline


@dataclass(frozen=True)
class Obstacle:
    """A vertical cylinder standing on the water.

    Args:
        x, y: [m] centre in ``map``.
        radius: [m].
        height: [m] above the water.
        kind: ``'buoy'`` or ``'boat'``.
    """

    x: float
    y: float
    radius: float
    height: float
    kind: str


@dataclass(frozen=True)
class WorldConfig:
    """Bathymetry source and obstacle layout.

    Args:
        source: ``'topobathy'`` or a path to a ``.npy`` / ``.npz`` depth grid (module doc).
        crop: topobathy only: (column start, column stop, row start, row stop) of the
            source grid (stop exclusive).
        cell_size: [m] map size of one grid cell.
        origin: [m] map (x, y) of the centre of grid cell (row 0, column 0).
        max_depth: [m] topobathy only: depth of the deepest cropped cell.
        min_depth: [m] topobathy only: depth of the shallowest water cell.
        depth_exponent: topobathy only: < 1 compresses deep water relative to shallow.
        land_height: [m] topobathy only: elevation given to land cells.
        smoothing: [cells] Gaussian sigma of the water-only depth smoothing (0 = off).
        buoy_positions: [m] flat (x1, y1, x2, y2, ...) of buoys in ``map`` (default: four
            marker buoys 15 m outside the corners of the default survey area).
        buoy_radius, buoy_height: [m].
        boat_positions: [m] flat (x1, y1, ...) of moored boats in ``map``.
        boat_radius, boat_height: [m] cylinder enclosing a moored boat.
    """

    source: str = 'topobathy'
    crop: tuple[int, ...] = (60, 95, 25, 55)
    cell_size: float = 40.0
    origin: tuple[float, ...] = (-700.0, -600.0)
    max_depth: float = 40.0
    min_depth: float = 1.0
    depth_exponent: float = 0.5
    land_height: float = 3.0
    smoothing: float = 0.7
    buoy_positions: tuple[float, ...] = (-65.0, 25.0, 165.0, 25.0, 165.0, 205.0, -65.0, 205.0)
    buoy_radius: float = 0.4
    buoy_height: float = 1.2
    boat_positions: tuple[float, ...] = (70.0, -50.0, 260.0, 120.0)
    boat_radius: float = 3.0
    boat_height: float = 2.5

    def __post_init__(self):
        if len(self.crop) != 4 or self.crop[0] >= self.crop[1] or self.crop[2] >= self.crop[3]:
            raise ValueError(f'crop must be (col0, col1, row0, row1) with col0 < col1 and '
                             f'row0 < row1, got {self.crop}')
        if len(self.origin) != 2 or not np.isfinite(self.origin).all():
            raise ValueError(f'origin must be finite (x, y), got {self.origin}')
        if not self.cell_size > 0.0:
            raise ValueError(f'cell_size must be > 0 m, got {self.cell_size}')
        if not 0.0 < self.min_depth < self.max_depth:
            raise ValueError(f'need 0 < min_depth < max_depth, got {self.min_depth}, '
                             f'{self.max_depth}')
        if not self.depth_exponent > 0.0 or not self.land_height > 0.0:
            raise ValueError('depth_exponent and land_height must be > 0')
        if not self.smoothing >= 0.0:
            raise ValueError(f'smoothing must be >= 0 cells, got {self.smoothing}')
        for name in ('buoy_positions', 'boat_positions'):
            if len(getattr(self, name)) % 2:
                raise ValueError(f'{name} must hold x, y pairs, got {getattr(self, name)}')
        for name in ('buoy_radius', 'buoy_height', 'boat_radius', 'boat_height'):
            if not getattr(self, name) > 0.0:
                raise ValueError(f'{name} must be > 0 m')


def _load_depth_grid(config: WorldConfig) -> np.ndarray:
    """(rows, cols) depth [m, positive down] at the cell centres, lake closed at the rim."""
    if config.source == 'topobathy':
        from matplotlib import cbook  # the sample data ships with matplotlib
        topo = np.asarray(cbook.get_sample_data('topobathy.npz')['topo'], float)
        col0, col1, row0, row1 = config.crop
        if row1 > topo.shape[0] or col1 > topo.shape[1] or min(config.crop) < 0:
            raise ValueError(f'crop {config.crop} outside the topobathy grid {topo.shape}')
        topo = topo[row0:row1, col0:col1]
        water = topo < 0.0
        if not water.any():
            raise ValueError(f'crop {config.crop} of topobathy holds no water')
        depth = -topo / (-topo[water]).max()
        depth = np.where(water, config.min_depth + (config.max_depth - config.min_depth)
                         * np.clip(depth, 0.0, None) ** config.depth_exponent,
                         -config.land_height)
    else:
        path = Path(config.source)
        try:
            data = np.load(path)
            depth = np.asarray(data['depth'] if path.suffix == '.npz' else data, float)
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f'cannot read depth grid {path}: {err}') from err
        if depth.ndim != 2 or min(depth.shape) < 4 or not np.isfinite(depth).all():
            raise ValueError(f'depth grid {path} must be a finite 2-D array of at least 4x4')
    water = depth > 0.0
    if config.smoothing > 0.0:
        total = ndimage.gaussian_filter(np.where(water, depth, 0.0), config.smoothing,
                                        mode='nearest')
        weight = ndimage.gaussian_filter(water.astype(float), config.smoothing,
                                         mode='nearest')
        depth = np.where(water, total / np.maximum(weight, 1e-12), depth)
    rim = -abs(depth[~water].min()) if (~water).any() else -1.0
    depth = depth.copy()  # never write into the loaded file's array
    depth[[0, -1], :] = rim
    depth[:, [0, -1]] = rim
    return depth


class World:
    """Bathymetry and obstacles in the ``map`` frame.

    Outside the grid everything is land (the lake is closed).
    """

    def __init__(self, config: WorldConfig = WorldConfig()):
        self.config = config
        self.grid = _load_depth_grid(config)
        rows, cols = self.grid.shape
        x0, y0 = config.origin
        self._xs = x0 + config.cell_size * np.arange(cols)
        self._ys = y0 + config.cell_size * np.arange(rows)
        self._extent = (float(self._xs[0]), float(self._xs[-1]), float(self._ys[0]),
                        float(self._ys[-1]))
        self._rim = float(self.grid[0, 0])
        self._spline = RectBivariateSpline(self._xs, self._ys, self.grid.T, kx=3, ky=3)
        obstacles = []
        for positions, kind, radius, height in (
                (config.buoy_positions, 'buoy', config.buoy_radius, config.buoy_height),
                (config.boat_positions, 'boat', config.boat_radius, config.boat_height)):
            for x, y in zip(positions[::2], positions[1::2]):
                if self.depth(x, y) <= 0.0:
                    raise ValueError(f'{kind} at ({x}, {y}) m is on land')
                obstacles.append(Obstacle(float(x), float(y), radius, height, kind))
        self.obstacles: tuple[Obstacle, ...] = tuple(obstacles)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """[m] (xmin, xmax, ymin, ymax) of the grid's cell centres in ``map``."""
        return self._extent

    def depth(self, x, y) -> np.ndarray:
        """Water depth [m, positive down; <= 0 on land] at map points (x, y) [m].

        Shapes:
            x, y broadcastable -> their broadcast shape.
        """
        xmin, xmax, ymin, ymax = self.extent
        if np.ndim(x) == 0 and np.ndim(y) == 0:  # fast path for the simulator's step
            x, y = float(x), float(y)
            if not (xmin <= x <= xmax and ymin <= y <= ymax):
                return np.asarray(self._rim)
            return np.asarray(self._spline.ev(x, y))
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        inside = (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
        value = self._spline.ev(np.clip(x, xmin, xmax), np.clip(y, ymin, ymax))
        return np.where(inside, value, self._rim)

    def is_land(self, x, y) -> np.ndarray:
        """True where (x, y) [m] is land (depth <= 0). Shapes as :meth:`depth`."""
        return self.depth(x, y) <= 0.0
