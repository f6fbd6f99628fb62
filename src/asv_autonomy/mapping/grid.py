"""The regular grid a map is published on (``map/<field>`` cells, the uncertainty grid)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# Truth grid points this close to the true track [m] make the surveyed area a map is scored
# over (the mission report's `map_rmse`, the plume benchmark).
SURVEYED_RADIUS_M = 15.0


@dataclass(frozen=True)
class MapGridConfig:
    """Args:
        extent: [m] (xmin, xmax, ymin, ymax) in ``map``; all zero: the bounding box of the
            samples plus ``margin``, growing with the survey.
        resolution: [m] cell size.
        margin: [m] added around the samples' bounding box (automatic extent).
        max_cells: the cell size is a whole multiple of ``resolution`` large enough that
            the grid has at most this many cells (bounds the cost of each publication).
    """

    extent: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    resolution: float = 2.0
    margin: float = 20.0
    max_cells: int = 20000

    def __post_init__(self):
        if not all(math.isfinite(v) for v in self.extent):
            raise ValueError(f'extent must be finite, got {self.extent}')
        xmin, xmax, ymin, ymax = self.extent
        if not self.automatic and not (xmin < xmax and ymin < ymax):
            raise ValueError(f'extent must be (xmin, xmax, ymin, ymax) with xmin < xmax and '
                             f'ymin < ymax, or all zero (automatic), got {self.extent}')
        if not (math.isfinite(self.resolution) and self.resolution > 0.0):
            raise ValueError(f'resolution must be > 0 m, got {self.resolution}')
        if not (math.isfinite(self.margin) and self.margin >= 0.0):
            raise ValueError(f'margin must be >= 0 m, got {self.margin}')
        if self.max_cells < 1:
            raise ValueError(f'max_cells must be >= 1, got {self.max_cells}')

    @property
    def automatic(self) -> bool:
        return not any(self.extent)


class GridCells(NamedTuple):
    """Cells of a grid: cell [row, col] is centred at x = origin_x + (col + 0.5) *
    resolution, y = origin_y + (row + 0.5) * resolution (``conversions.GridArray``)."""

    xy: np.ndarray            # (rows * cols, 2) [m] cell centres, row-major (row = y)
    shape: tuple[int, int]    # (rows, cols)
    origin_x: float           # [m] corner of cell [0, 0]
    origin_y: float
    resolution: float         # [m]


class MapGrid:
    """The cells to predict a map on: a fixed extent, or the area the samples cover.

    Args:
        config: extent and cell size.
    """

    def __init__(self, config: MapGridConfig = MapGridConfig()):
        self.config = config
        self._bounds = None if config.automatic else np.array(config.extent, dtype=float)
        self._cells: GridCells | None = None

    def cover(self, xy: np.ndarray) -> None:
        """Grow an automatic extent to cover samples at ``xy`` (N, 2) [m] (plus the margin);
        a fixed extent ignores them."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        if not self.config.automatic or len(xy) == 0:
            return
        m = self.config.margin
        low, high = xy.min(axis=0) - m, xy.max(axis=0) + m
        box = np.array([low[0], high[0], low[1], high[1]])
        if self._bounds is not None:
            box = np.array([min(box[0], self._bounds[0]), max(box[1], self._bounds[1]),
                            min(box[2], self._bounds[2]), max(box[3], self._bounds[3])])
            if np.array_equal(box, self._bounds):
                return
        self._bounds = box
        self._cells = None

    def cells(self) -> GridCells | None:
        """The current cells (the same object until the extent changes); None while an
        automatic extent has no samples yet."""
        if self._bounds is None:
            return None
        if self._cells is None:
            self._cells = self._make_cells(self._bounds)
        return self._cells

    def _make_cells(self, bounds: np.ndarray) -> GridCells:
        xmin, xmax, ymin, ymax = bounds
        base = self.config.resolution
        factor = 1
        while True:
            res = base * factor
            # Corners on multiples of the cell size, so cells stay put as the extent grows.
            x0, y0 = math.floor(xmin / res) * res, math.floor(ymin / res) * res
            cols = max(int(math.ceil((xmax - x0) / res - 1e-9)), 1)
            rows = max(int(math.ceil((ymax - y0) / res - 1e-9)), 1)
            if rows * cols <= self.config.max_cells:
                break
            factor = max(factor + 1,
                         int(factor * math.sqrt(rows * cols / self.config.max_cells)))
        x = x0 + (np.arange(cols) + 0.5) * res
        y = y0 + (np.arange(rows) + 0.5) * res
        gx, gy = np.meshgrid(x, y)
        return GridCells(np.column_stack([gx.ravel(), gy.ravel()]), (rows, cols),
                         float(x0), float(y0), float(res))
