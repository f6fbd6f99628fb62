"""Regular 2-D grids of values in ``map``, sampled bilinearly on batched torch tensors.

The planner looks up many grids inside its rollouts (current mean and spread, distance to
land, value-to-go, map uncertainty, blocked cells): thousands of points per step, on CPU
or CUDA, inside ``torch.compile``. One small class does it the same way everywhere.
"""
from __future__ import annotations

import math

import numpy as np
import torch


class Raster:
    """C channels of values on a regular grid; cell (row j, column i) centred at
    ``(x0 + i * resolution, y0 + j * resolution)``.

    Args:
        values: ``(C, ny, nx)`` or ``(ny, nx)`` (one channel) values; rows along +y.
        origin: [m] (x0, y0) map position of the centre of cell (0, 0).
        resolution: [m] cell size (the same along x and y).
        device, dtype: where the tensor lives (default: float32 on the CPU).

    Shapes:
        values ``(C, ny, nx)``.
    """

    def __init__(self, values, origin: tuple[float, float], resolution: float,
                 device: torch.device | str | None = None, dtype=torch.float32):
        values = torch.as_tensor(np.asarray(values) if not torch.is_tensor(values) else values,
                                 dtype=dtype, device=device)
        if values.dim() == 2:
            values = values.unsqueeze(0)
        if values.dim() != 3 or min(values.shape[1:]) < 2:
            raise ValueError(f'Raster values must be (C, ny, nx) with ny, nx >= 2, '
                             f'got {tuple(values.shape)}')
        if not (math.isfinite(resolution) and resolution > 0):
            raise ValueError(f'Raster resolution must be > 0, got {resolution}')
        if len(origin) != 2 or not all(math.isfinite(float(o)) for o in origin):
            raise ValueError(f'Raster origin must be finite (x0, y0), got {origin}')
        self.values = values.contiguous()
        self.origin = (float(origin[0]), float(origin[1]))
        self.resolution = float(resolution)
        self._flat = self.values.reshape(values.shape[0], -1)

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx)."""
        return tuple(self.values.shape[1:])

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """[m] (x_min, x_max, y_min, y_max) of the cell centres."""
        ny, nx = self.shape
        x0, y0 = self.origin
        return (x0, x0 + (nx - 1) * self.resolution, y0, y0 + (ny - 1) * self.resolution)

    def cell_centres(self) -> torch.Tensor:
        """[m] (ny, nx, 2) map positions of every cell centre."""
        ny, nx = self.shape
        x0, y0 = self.origin
        xs = x0 + self.resolution * torch.arange(nx, device=self.values.device,
                                                 dtype=self.values.dtype)
        ys = y0 + self.resolution * torch.arange(ny, device=self.values.device,
                                                 dtype=self.values.dtype)
        yy, xx = torch.meshgrid(ys, xs, indexing='ij')
        return torch.stack([xx, yy], dim=-1)

    def to(self, device=None, dtype=None) -> 'Raster':
        """The same raster on another device / dtype."""
        return Raster(self.values.to(device=device, dtype=dtype or self.values.dtype),
                      self.origin, self.resolution)

    def sample(self, xy: torch.Tensor) -> torch.Tensor:
        """Bilinear interpolation at map points, clamped to the edge cells outside.

        Args:
            xy: [m] map positions.

        Returns:
            Values per channel; NaN at NaN positions.

        Shapes:
            xy ``(..., 2)`` -> ``(..., C)``.
        """
        ny, nx = self.shape
        fx = ((xy[..., 0] - self.origin[0]) / self.resolution).clamp(0.0, nx - 1.0)
        fy = ((xy[..., 1] - self.origin[1]) / self.resolution).clamp(0.0, ny - 1.0)
        # A NaN position (a diverged rollout) indexes cell 0 and keeps NaN weights: its
        # values are NaN (the costs treat NaN as infeasible) instead of an index error.
        i0 = fx.nan_to_num(0.0).floor().clamp(max=nx - 2.0)
        j0 = fy.nan_to_num(0.0).floor().clamp(max=ny - 2.0)
        wx, wy = (fx - i0).unsqueeze(-1), (fy - j0).unsqueeze(-1)
        index = (j0 * nx + i0).long().reshape(-1)
        flat = self._flat

        def corner(offset: int) -> torch.Tensor:
            return flat[:, index + offset].T.reshape(*xy.shape[:-1], flat.shape[0])

        return ((corner(0) * (1 - wx) + corner(1) * wx) * (1 - wy)
                + (corner(nx) * (1 - wx) + corner(nx + 1) * wx) * wy)
