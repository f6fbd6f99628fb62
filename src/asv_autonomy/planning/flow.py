"""Water current known to the planner: a mean (east, north) velocity and its uncertainty.

The planner cannot predict the current exactly. :class:`FlowField` holds, on a regular grid
in ``map``, the mean current and a spread (1-sigma of each component) [m/s]; the MDP uses
both as the first two moments of the drift, and the benchmarks draw a "true" current from
them with :meth:`FlowField.realisation`.

Sources: uniform, an analytic function (e.g. :func:`gyre`), or a grid file (``.npz`` or
NetCDF, see :meth:`FlowField.from_file`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from asv_autonomy.planning.raster import Raster

Extent = tuple[float, float, float, float]


def _grid_axes(extent: Extent, resolution: float) -> tuple[np.ndarray, np.ndarray]:
    """[m] x (nx,) and y (ny,) cell centres covering ``extent`` (x_min, x_max, y_min, y_max)."""
    x_min, x_max, y_min, y_max = (float(e) for e in extent)
    if not (math.isfinite(resolution) and resolution > 0.0):
        raise ValueError(f'resolution must be > 0 m, got {resolution}')
    if not (x_max > x_min and y_max > y_min):
        raise ValueError(f'extent must be (x_min, x_max, y_min, y_max) with min < max, '
                         f'got {extent}')
    nx = max(2, int(math.ceil((x_max - x_min) / resolution)) + 1)
    ny = max(2, int(math.ceil((y_max - y_min) / resolution)) + 1)
    return x_min + resolution * np.arange(nx), y_min + resolution * np.arange(ny)


class FlowField:
    """Water current mean (east, north) and spread (1-sigma per component) [m/s].

    Args:
        raster: 3 channels ``u`` (east), ``v`` (north) mean [m/s] and ``spread`` [m/s]
            (standard deviation of each component, >= 0).
    """

    def __init__(self, raster: Raster):
        if raster.values.shape[0] != 3:
            raise ValueError(f'FlowField needs a 3-channel raster (u, v, spread), got '
                             f'{raster.values.shape[0]} channels')
        if not torch.isfinite(raster.values).all():
            raise ValueError('FlowField values must be finite')
        if (raster.values[2] < 0).any():
            raise ValueError('FlowField spread must be >= 0 m/s')
        self.raster = raster

    @property
    def extent(self) -> Extent:
        """[m] (x_min, x_max, y_min, y_max) of the grid's cell centres."""
        return self.raster.extent

    def sample(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean current and spread at map points (bilinear, clamped at the grid edges).

        Args:
            xy: [m] map positions.

        Returns:
            (mean [m/s] (east, north), spread [m/s]).

        Shapes:
            xy ``(..., 2)`` -> (``(..., 2)``, ``(...)``).
        """
        values = self.raster.sample(xy.to(self.raster.values))
        return values[..., :2], values[..., 2]

    def _with_values(self, values: torch.Tensor) -> 'FlowField':
        return FlowField(Raster(values, self.raster.origin, self.raster.resolution))

    def negated(self) -> 'FlowField':
        """The reversed current (-mean, same spread), for travel backwards in time."""
        values = self.raster.values.clone()
        values[:2] = -values[:2]
        return self._with_values(values)

    def scaled(self, factor: float) -> 'FlowField':
        """Mean and spread multiplied by ``factor`` (>= 0)."""
        if not (math.isfinite(factor) and factor >= 0.0):
            raise ValueError(f'scale factor must be finite and >= 0, got {factor}')
        return self._with_values(self.raster.values * factor)

    def to(self, device) -> 'FlowField':
        """The same field on another device."""
        return FlowField(self.raster.to(device))

    def max_speed(self) -> float:
        """[m/s] largest mean current speed on the grid."""
        return float(self.raster.values[:2].norm(dim=0).max())

    # --- constructors -------------------------------------------------------------------

    @classmethod
    def from_grid(cls, u: np.ndarray, v: np.ndarray, spread, origin: tuple[float, float],
                  resolution: float) -> 'FlowField':
        """From (ny, nx) arrays u, v [m/s] and spread [m/s] (scalar or (ny, nx)); rows along
        +y, cell (0, 0) centred at ``origin`` [m]."""
        u, v = np.asarray(u, float), np.asarray(v, float)
        spread = np.broadcast_to(np.asarray(spread, float), u.shape)
        return cls(Raster(np.stack([u, v, spread]), origin, resolution))

    @classmethod
    def uniform(cls, velocity: tuple[float, float], spread: float, extent: Extent,
                resolution: float) -> 'FlowField':
        """The same current ``velocity`` (east, north) [m/s] with ``spread`` [m/s] everywhere
        in ``extent`` [m] (x_min, x_max, y_min, y_max), on a grid of ``resolution`` [m]."""
        xs, ys = _grid_axes(extent, resolution)
        shape = (len(ys), len(xs))
        return cls.from_grid(np.full(shape, float(velocity[0])),
                             np.full(shape, float(velocity[1])), spread,
                             (xs[0], ys[0]), resolution)

    @classmethod
    def from_function(cls, fn, extent: Extent, resolution: float,
                      spread: float = 0.0) -> 'FlowField':
        """Sample ``fn(x, y) -> (u, v)`` (numpy arrays [m] -> [m/s]) on a grid over
        ``extent`` [m] at ``resolution`` [m], with a uniform ``spread`` [m/s]."""
        xs, ys = _grid_axes(extent, resolution)
        xx, yy = np.meshgrid(xs, ys)
        u, v = fn(xx, yy)
        return cls.from_grid(np.broadcast_to(u, xx.shape), np.broadcast_to(v, xx.shape),
                             spread, (xs[0], ys[0]), resolution)

    @classmethod
    def from_file(cls, path, extent: Extent, resolution: float, spread: float = 0.1,
                  scale: float = 1.0, time_index: int = 0, depth_index: int = 0
                  ) -> 'FlowField':
        """Read a current grid file and resample it onto a grid over ``extent``.

        ``.npz``: 2-D ``u``, ``v`` [m/s] (rows along y) and optional 1-D axes ``x``, ``y``
        [m] in ``map``; without axes the grid is stretched over ``extent``.
        NetCDF (``.nc``, read with ``scipy.io.netcdf_file``): ``u``, ``v`` of 2 (Y, X),
        3 (time, Y, X) or 4 (time, depth, Y, X) dimensions, ``scale_factor`` /
        ``add_offset`` applied, fill values, NaN and land (``mask`` == 0) set to 0 m/s.
        An ocean model grid (lon/lat, or X/Y in km) is stretched over ``extent`` keeping its
        orientation (rows along north, components taken as east/north); the slice
        ``time_index`` / ``depth_index`` is used.

        Args:
            path: file path.
            extent: [m] (x_min, x_max, y_min, y_max) of the lake.
            resolution: [m] grid spacing of the result.
            spread: [m/s] uniform 1-sigma uncertainty of each component.
            scale: multiplies the speeds (e.g. to scale an ocean current to a lake).
            time_index, depth_index: slice of a 3-D / 4-D NetCDF variable.

        Raises:
            ValueError: naming the file and the problem (missing variable, bad shape, ...).
        """
        path = Path(path)
        if path.suffix == '.npz':
            u, v, xs, ys = _read_npz(path)
        elif path.suffix in ('.nc', '.nc4', '.cdf'):
            u, v = _read_netcdf(path, time_index, depth_index)
            xs = ys = None
        else:
            raise ValueError(f'current file {path}: unknown format {path.suffix!r} '
                             f'(expected .npz or .nc)')
        grid_x, grid_y = _grid_axes(extent, resolution)
        if xs is None:  # stretch the file's grid over the extent
            xs = np.linspace(grid_x[0], grid_x[-1], u.shape[1])
            ys = np.linspace(grid_y[0], grid_y[-1], u.shape[0])
        xx, yy = np.meshgrid(grid_x, grid_y)
        fx = np.interp(xx, xs, np.arange(len(xs), dtype=float))
        fy = np.interp(yy, ys, np.arange(len(ys), dtype=float))
        coords = np.stack([fy, fx])
        u_grid = ndimage.map_coordinates(u, coords, order=1, mode='nearest')
        v_grid = ndimage.map_coordinates(v, coords, order=1, mode='nearest')
        return cls.from_grid(scale * u_grid, scale * v_grid, spread,
                             (grid_x[0], grid_y[0]), resolution)

    # --- derived fields -----------------------------------------------------------------

    def realisation(self, seed: int, lengthscale: float) -> 'FlowField':
        """One plausible "true" current: mean plus a smooth random perturbation.

        Each component gets an independent Gaussian random field (white noise smoothed by
        a Gaussian of ``lengthscale`` [m], rescaled to unit standard deviation) times the
        local spread. The result has zero spread.

        Args:
            seed: random seed (the same seed gives the same field).
            lengthscale: [m] correlation length of the perturbation (> 0).
        """
        if not (math.isfinite(lengthscale) and lengthscale > 0.0):
            raise ValueError(f'lengthscale must be > 0 m, got {lengthscale}')
        values = self.raster.values.cpu().double().numpy()
        rng = np.random.default_rng(seed)
        sigma_cells = lengthscale / self.raster.resolution
        noise = []
        for _ in range(2):
            field = ndimage.gaussian_filter(rng.standard_normal(values.shape[1:]),
                                            sigma_cells, mode='wrap')
            noise.append(field / max(field.std(), 1e-12))
        spread = values[2]
        return FlowField.from_grid(values[0] + spread * noise[0], values[1] + spread * noise[1],
                                   0.0, self.raster.origin, self.raster.resolution
                                   ).to(self.raster.values.device)

    def to_npz(self, path) -> None:
        """Write ``x`` (nx,), ``y`` (ny,) [m] and mean ``u``, ``v`` (ny, nx) [m/s]: the
        format of ``sim.fields.CurrentConfig(source=path)``."""
        values = self.raster.values.cpu().double().numpy()
        x_min, x_max, y_min, y_max = self.extent
        ny, nx = values.shape[1:]
        np.savez(path, x=np.linspace(x_min, x_max, nx), y=np.linspace(y_min, y_max, ny),
                 u=values[0], v=values[1])


def _read_npz(path: Path):
    try:
        data = np.load(path)
        u, v = np.asarray(data['u'], float), np.asarray(data['v'], float)
        xs = np.asarray(data['x'], float) if 'x' in data else None
        ys = np.asarray(data['y'], float) if 'y' in data else None
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f'current file {path}: cannot read u, v ({err})') from err
    if u.ndim != 2 or u.shape != v.shape or min(u.shape) < 2:
        raise ValueError(f'current file {path}: u and v must be 2-D of the same shape '
                         f'(at least 2x2), got {u.shape} and {v.shape}')
    if (xs is None) != (ys is None):
        raise ValueError(f'current file {path}: give both axes x and y or neither')
    if xs is not None:
        if xs.shape != (u.shape[1],) or ys.shape != (u.shape[0],):
            raise ValueError(f'current file {path}: axes x {xs.shape}, y {ys.shape} do not '
                             f'match u {u.shape} (rows along y)')
        if not ((np.diff(xs) > 0).all() and (np.diff(ys) > 0).all()):
            raise ValueError(f'current file {path}: axes x and y must increase')
    if not (np.isfinite(u).all() and np.isfinite(v).all()):
        raise ValueError(f'current file {path}: u and v must be finite')
    return u, v, xs, ys


def _netcdf_variable(path: Path, data, name: str, time_index: int, depth_index: int):
    """Float array of a 2-D slice with scale/offset applied, fill values -> NaN."""
    var = data.variables[name]
    raw = np.array(var[:])
    if raw.ndim == 4:
        index = (time_index, depth_index)
    elif raw.ndim == 3:
        index = (time_index,)
    elif raw.ndim == 2:
        index = ()
    else:
        raise ValueError(f'current file {path}: {name} must have 2-4 dimensions, got '
                         f'{raw.shape}')
    try:
        raw = raw[index]
    except IndexError as err:
        raise ValueError(f'current file {path}: slice {index} outside {name} '
                         f'{var.shape}') from err
    values = raw.astype(float)
    attributes = var._attributes
    for key in ('_FillValue', 'missing_value'):
        if key in attributes:
            values[raw == np.asarray(attributes[key]).astype(raw.dtype)] = np.nan
    values = values * float(attributes.get('scale_factor', 1.0)) + float(
        attributes.get('add_offset', 0.0))
    return values


def _read_netcdf(path: Path, time_index: int, depth_index: int):
    from scipy.io import netcdf_file
    try:
        with netcdf_file(path, 'r', mmap=False) as data:
            if 'u' not in data.variables or 'v' not in data.variables:
                raise ValueError(f'current file {path}: needs variables u and v, has '
                                 f'{sorted(data.variables)}')
            u = _netcdf_variable(path, data, 'u', time_index, depth_index)
            v = _netcdf_variable(path, data, 'v', time_index, depth_index)
            land = (np.array(data.variables['mask'][:]) == 0
                    if 'mask' in data.variables else np.zeros(u.shape, bool))
            y_axis = next((n for n in ('Y', 'y', 'lat', 'latitude') if n in data.variables
                           and data.variables[n][:].ndim == 1), None)
            flip = y_axis is not None and np.array(data.variables[y_axis][:])[-1] < np.array(
                data.variables[y_axis][:])[0]
    except (OSError, TypeError) as err:
        raise ValueError(f'current file {path}: not a readable NetCDF file ({err})') from err
    if u.shape != v.shape or min(u.shape) < 2:
        raise ValueError(f'current file {path}: u and v slices must be 2-D of the same shape, '
                         f'got {u.shape} and {v.shape}')
    if land.shape != u.shape:
        land = np.zeros(u.shape, bool)
    bad = ~np.isfinite(u) | ~np.isfinite(v) | land
    u, v = np.where(bad, 0.0, u), np.where(bad, 0.0, v)
    if flip:  # rows must run along +y (north)
        u, v = u[::-1], v[::-1]
    return u, v


def gyre(centre: tuple[float, float], radius: float, speed: float, extent: Extent,
         resolution: float, spread: float = 0.0) -> FlowField:
    """Lamb-Oseen vortex: tangential speed ``speed`` [m/s] on the ring of ``radius`` [m]
    around ``centre`` [m] (its fastest ring), decaying as 1/r outside and linearly to 0 at
    the centre. Positive ``speed`` turns counter-clockwise."""
    if not radius > 0.0:
        raise ValueError(f'gyre radius must be > 0 m, got {radius}')
    core = radius / 1.1209  # the Lamb-Oseen speed peaks at r = 1.1209 core radii
    peak = (1.0 - math.exp(-(radius / core) ** 2)) / radius

    def velocity(x, y):
        dx, dy = x - centre[0], y - centre[1]
        r = np.hypot(dx, dy)
        safe = np.maximum(r, 1e-9)
        tangential = speed * (1.0 - np.exp(-(safe / core) ** 2)) / safe / peak
        return -tangential * dy / safe, tangential * dx / safe

    return FlowField.from_function(velocity, extent, resolution, spread)
