"""Environmental fields of the simulator: water current, wind, water temperature.

Times ``t`` are seconds since the start of the simulation (the simulator adds its
``start_time`` epoch to stamps only). Positions are ``map`` (ENU) metres. Every evaluation
is vectorised: ``x``, ``y`` may be scalars or arrays of any (broadcastable) shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .world import World


@dataclass(frozen=True)
class CurrentConfig:
    """Surface water current.

    The analytic default is a uniform drift modulated by a tide-like oscillation plus a
    steady Lamb-Oseen-like gyre (speed peaks at ``gyre_radius`` and decays outside); the
    sum is ~0.1-0.35 m/s over the lake. Near the shore the current tapers linearly to
    zero between ``shore_depth`` and the shoreline, and it is zero on land.

    Args:
        source: ``'analytic'`` or a path to an ``.npz`` with ``x`` (nx,), ``y`` (ny,) [m]
            and ``u``, ``v`` [m/s] east/north of shape (ny, nx) or, with ``t`` (nt,) [s],
            (nt, ny, nx). Interpolated bilinearly (linearly in time), clamped at the edges.
        drift: [m/s] (east, north) mean uniform drift.
        modulation_amplitude: [-] relative amplitude of the drift's oscillation.
        modulation_period: [s] period of the oscillation (default: M2 tide, 12.42 h).
        modulation_phase: [rad] phase of the oscillation at t = 0.
        gyre_center: [m] (x, y) centre of the gyre.
        gyre_radius: [m] radius of the fastest ring of the gyre.
        gyre_speed: [m/s] speed on that ring; positive turns counter-clockwise.
        shore_depth: [m] depth below which the current tapers to zero at the shoreline.
    """

    source: str = 'analytic'
    drift: tuple[float, ...] = (0.1, 0.04)
    modulation_amplitude: float = 0.5
    modulation_period: float = 44712.0
    modulation_phase: float = 0.0
    gyre_center: tuple[float, ...] = (-50.0, 320.0)
    gyre_radius: float = 250.0
    gyre_speed: float = 0.15
    shore_depth: float = 2.0

    def __post_init__(self):
        if len(self.drift) != 2 or len(self.gyre_center) != 2:
            raise ValueError('drift and gyre_center must be (x, y) pairs')
        if not (self.modulation_period > 0.0 and self.gyre_radius > 0.0
                and self.shore_depth > 0.0):
            raise ValueError('modulation_period, gyre_radius and shore_depth must be > 0')
        if not np.isfinite(self.drift + self.gyre_center + (
                self.modulation_amplitude, self.modulation_phase, self.gyre_speed)).all():
            raise ValueError('current parameters must be finite')


def _bilinear(xs, ys, grid, x, y):
    """Bilinear interpolation of grid (..., ny, nx) on axes xs, ys, clamped at the edges."""
    fx = np.interp(x, xs, np.arange(len(xs), dtype=float))
    fy = np.interp(y, ys, np.arange(len(ys), dtype=float))
    i0 = np.minimum(fx.astype(int), len(xs) - 2)
    j0 = np.minimum(fy.astype(int), len(ys) - 2)
    wx, wy = fx - i0, fy - j0
    return ((grid[..., j0, i0] * (1 - wx) + grid[..., j0, i0 + 1] * wx) * (1 - wy)
            + (grid[..., j0 + 1, i0] * (1 - wx) + grid[..., j0 + 1, i0 + 1] * wx) * wy)


class _GridCurrent:
    """Current read from an .npz file (see CurrentConfig.source)."""

    def __init__(self, path: str):
        try:
            data = np.load(Path(path))
            self.xs, self.ys = np.asarray(data['x'], float), np.asarray(data['y'], float)
            self.uv = np.stack([np.asarray(data['u'], float), np.asarray(data['v'], float)])
            self.ts = np.asarray(data['t'], float) if 't' in data else None
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f'cannot read current grid {path}: {err}') from err
        shape = (len(self.ys), len(self.xs))
        expected = (2,) + ((len(self.ts),) if self.ts is not None else ()) + shape
        if (self.uv.shape != expected or min(shape) < 2 or not np.isfinite(self.uv).all()
                or np.any(np.diff(self.xs) <= 0) or np.any(np.diff(self.ys) <= 0)):
            raise ValueError(f'current grid {path}: need increasing x (nx>=2), y (ny>=2) and '
                             f'finite u, v of shape {expected[1:]}, got {self.uv.shape[1:]}')

    def velocity(self, x, y, t):
        if self.ts is None:
            u, v = _bilinear(self.xs, self.ys, self.uv, x, y)
            return u, v
        k = float(np.interp(t, self.ts, np.arange(len(self.ts), dtype=float)))
        k0 = min(int(k), len(self.ts) - 2) if len(self.ts) > 1 else 0
        w = k - k0
        a = _bilinear(self.xs, self.ys, self.uv[:, k0], x, y)
        if w == 0.0:
            return a[0], a[1]
        b = _bilinear(self.xs, self.ys, self.uv[:, k0 + 1], x, y)
        return a[0] * (1 - w) + b[0] * w, a[1] * (1 - w) + b[1] * w


class CurrentField:
    """Water current [m/s] in ``map`` (east, north)."""

    def __init__(self, config: CurrentConfig, world: World):
        self.config = config
        self.world = world
        self._grid = None if config.source == 'analytic' else _GridCurrent(config.source)

    def velocity(self, x, y, t: float, depth=None):
        """Current (east, north) [m/s] at map points (x, y) [m] and time t [s].

        Args:
            x, y: [m] positions (broadcastable).
            t: [s] time since the start of the simulation.
            depth: [m] ``world.depth(x, y)`` when the caller already has it.

        Returns:
            (u_east, v_north), each of the broadcast shape of x, y.
        """
        c = self.config
        x, y = np.asarray(x, float), np.asarray(y, float)
        if self._grid is not None:
            u, v = self._grid.velocity(x, y, t)
        else:
            gain = 1.0 + c.modulation_amplitude * math.sin(
                2.0 * math.pi * t / c.modulation_period + c.modulation_phase)
            dx, dy = x - c.gyre_center[0], y - c.gyre_center[1]
            scale = c.gyre_speed / c.gyre_radius * np.exp(
                0.5 - 0.5 * (dx * dx + dy * dy) / (c.gyre_radius * c.gyre_radius))
            u = c.drift[0] * gain - scale * dy
            v = c.drift[1] * gain + scale * dx
        if depth is None:
            depth = self.world.depth(x, y)
        taper = np.minimum(np.maximum(np.asarray(depth) / c.shore_depth, 0.0), 1.0)
        return u * taper, v * taper


@dataclass(frozen=True)
class WindConfig:
    """Wind 10 m above the water: a mean plus Ornstein-Uhlenbeck gusts on each component.

    Args:
        mean_speed: [m/s].
        direction_from_deg: [deg] meteorological direction the wind blows *from*,
            clockwise from north (240 = from the south-west).
        gust_std: [m/s] stationary standard deviation of each gust component.
        gust_time_constant: [s] correlation time of the gusts.
    """

    mean_speed: float = 4.0
    direction_from_deg: float = 240.0
    gust_std: float = 1.0
    gust_time_constant: float = 20.0

    def __post_init__(self):
        if not (self.mean_speed >= 0.0 and self.gust_std >= 0.0
                and self.gust_time_constant > 0.0 and math.isfinite(self.direction_from_deg)):
            raise ValueError(f'invalid wind config {self}')


class Wind:
    """Spatially uniform wind with random gusts; ``advance`` moves it forward in time."""

    def __init__(self, config: WindConfig, rng: np.random.Generator):
        self.config = config
        self._rng = rng
        towards = math.radians(config.direction_from_deg)
        # Blowing from bearing b means moving towards b + 180 deg: ENU (-sin b, -cos b).
        self._mean = np.array([-math.sin(towards), -math.cos(towards)]) * config.mean_speed
        self._gust = rng.standard_normal(2) * config.gust_std

    @property
    def velocity(self) -> np.ndarray:
        """(2,) air velocity (east, north) [m/s]."""
        return self._mean + self._gust

    def advance(self, dt: float):
        """Advance the gusts by dt [s] (exact OU discretisation)."""
        a = math.exp(-dt / self.config.gust_time_constant)
        self._gust = a * self._gust + (self.config.gust_std * math.sqrt(1.0 - a * a)
                                       * self._rng.standard_normal(2))


@dataclass(frozen=True)
class TemperatureConfig:
    """Near-surface water temperature: a base field plus a warm discharge plume.

    Base: ``surface_temperature + shallow_warming * exp(-depth / shallow_depth_scale)
    + gradient . (x, y)`` (shallow water warms more). Plume: Gaussian puffs of excess
    heat (a depth-averaged 2-D release) every ``plume_interval`` s at ``plume_source``,
    advected by the current and spreading by diffusion (sigma^2 = initial_sigma^2 + 2 K
    age), so the excess temperature near the outfall is a few degC and fades downstream.
    Puffs older than ``plume_max_age`` are dropped; the plume is spun up over that age
    before t = 0.

    Optionally (``plume_pulse_period`` > 0; the default is a continuous release, whose
    plume changes only with the tidal current, over hours) the outfall is a cooling-water
    discharge on a duty cycle (``asv bench plume`` runs one): it releases only during the
    last ``plume_pulse_duty`` of every ``plume_pulse_period`` (periods end at t = 0, P,
    2P, ...: at t = 0 a fresh warm patch leaves the outfall), so the plume is a train of
    warm patches carried downstream by the current (about 0.25 m/s at the default source:
    patches ~60 m long, 150 m apart, each passing a point in about 4 minutes) and the
    field changes within a survey. Each puff carries
    ``plume_rate * plume_interval / plume_pulse_duty`` [degC m^2], so ``plume_rate`` is
    the time-averaged release and the pulsed plume holds as much heat as a continuous
    one. ``plume_pulse_period`` 0 or ``plume_pulse_duty`` 1: continuous release.

    Args:
        surface_temperature: [degC] over deep water at the map origin.
        shallow_warming: [degC] extra temperature at zero depth.
        shallow_depth_scale: [m] e-folding depth of the shallow warming.
        gradient: [degC/m] (east, north) horizontal gradient.
        plume_source: [m] (x, y) of the discharge.
        plume_rate: [degC m^2/s] time-averaged excess heat release rate.
        plume_interval: [s] time between puffs (while discharging).
        plume_pulse_period: [s] period of the discharge's duty cycle; 0 = continuous.
        plume_pulse_duty: fraction of each period the outfall discharges, in (0, 1];
            1 = continuous. The on-phase must last at least ``plume_interval``.
        plume_initial_sigma: [m] puff size at release.
        plume_diffusivity: [m^2/s] horizontal eddy diffusivity K.
        plume_max_age: [s] puffs older than this are dropped.
        plume_advect_dt: [s] step of the puff advection.
    """

    surface_temperature: float = 16.0
    shallow_warming: float = 1.5
    shallow_depth_scale: float = 4.0
    gradient: tuple[float, ...] = (0.0, -0.002)
    plume_source: tuple[float, ...] = (-10.0, 90.0)
    plume_rate: float = 25.0
    plume_interval: float = 15.0
    plume_pulse_period: float = 0.0
    plume_pulse_duty: float = 0.4
    plume_initial_sigma: float = 3.0
    plume_diffusivity: float = 1.0
    plume_max_age: float = 1500.0
    plume_advect_dt: float = 2.0

    def __post_init__(self):
        if len(self.gradient) != 2 or len(self.plume_source) != 2:
            raise ValueError('gradient and plume_source must be (x, y) pairs')
        for name in ('shallow_depth_scale', 'plume_interval', 'plume_initial_sigma',
                     'plume_max_age', 'plume_advect_dt'):
            if not getattr(self, name) > 0.0:
                raise ValueError(f'TemperatureConfig.{name} must be > 0')
        if not (self.plume_rate >= 0.0 and self.plume_diffusivity >= 0.0):
            raise ValueError('plume_rate and plume_diffusivity must be >= 0')
        if not (math.isfinite(self.plume_pulse_period) and self.plume_pulse_period >= 0.0):
            raise ValueError('TemperatureConfig.plume_pulse_period must be finite and >= 0 '
                             f'(0 = continuous), got {self.plume_pulse_period}')
        if not 0.0 < self.plume_pulse_duty <= 1.0:
            raise ValueError('TemperatureConfig.plume_pulse_duty must be in (0, 1] (the '
                             f'discharging fraction of a period), got {self.plume_pulse_duty}')
        on_phase = self.plume_pulse_duty * self.plume_pulse_period
        if self.duty_fraction < 1.0 and on_phase < self.plume_interval:
            raise ValueError(
                f'TemperatureConfig: the on-phase (plume_pulse_duty * plume_pulse_period = '
                f'{on_phase:g} s) must last at least plume_interval '
                f'({self.plume_interval:g} s), else some pulses release nothing')

    @property
    def duty_fraction(self) -> float:
        """Fraction of the time the outfall discharges (1: continuous release)."""
        return self.plume_pulse_duty if self.plume_pulse_period > 0.0 else 1.0

    def discharging(self, t: float) -> bool:
        """Whether the outfall releases at time t [s] (in the on-phase, the end of its
        period)."""
        if self.duty_fraction == 1.0:
            return True
        # A little slack so that a release time accumulated in floats just below a phase
        # boundary counts as on the boundary, as intended.
        period = self.plume_pulse_period
        phase = (t + 1e-9) % period
        return phase >= period - self.plume_pulse_duty * period


class TemperatureField:
    """Water temperature [degC]; ``advance`` moves the plume forward in time."""

    def __init__(self, config: TemperatureConfig, current: CurrentField):
        self.config = config
        self.current = current
        self.world = current.world
        # Puff state: release time [s] and centre [m]; released over [-max_age, 0].
        self._release = np.zeros(0)
        self._px = np.zeros(0)
        self._py = np.zeros(0)
        self._time = -config.plume_max_age
        self._next_release = self._time
        self.advance(0.0)

    @property
    def time(self) -> float:
        """[s] time the plume has been advanced to."""
        return self._time

    def advance(self, t: float):
        """Advance the plume to time t [s] (no-op until a full advection step is due)."""
        c = self.config
        while self._time + c.plume_advect_dt <= t + 1e-9:
            t0, h = self._time, c.plume_advect_dt
            while self._next_release <= t0 + 1e-9:
                if c.discharging(self._next_release):
                    self._release = np.append(self._release, self._next_release)
                    self._px = np.append(self._px, c.plume_source[0])
                    self._py = np.append(self._py, c.plume_source[1])
                self._next_release += c.plume_interval
            # Midpoint (RK2) advection of every puff centre.
            u, v = self.current.velocity(self._px, self._py, t0)
            mx, my = self._px + 0.5 * h * u, self._py + 0.5 * h * v
            u, v = self.current.velocity(mx, my, t0 + 0.5 * h)
            self._px, self._py = self._px + h * u, self._py + h * v
            self._time = t0 + h
            keep = self._time - self._release <= c.plume_max_age
            self._release, self._px, self._py = (self._release[keep], self._px[keep],
                                                 self._py[keep])

    def plume(self, x, y) -> np.ndarray:
        """Excess temperature [degC] of the plume at (x, y) [m], at the current time."""
        c = self.config
        x, y = np.asarray(x, float), np.asarray(y, float)
        var = c.plume_initial_sigma ** 2 + 2.0 * c.plume_diffusivity * (self._time
                                                                       - self._release)
        mass = c.plume_rate * c.plume_interval / (c.duty_fraction * 2.0 * math.pi * var)
        out = np.zeros(np.broadcast(x, y).shape)
        flat_x, flat_y, flat_out = (np.broadcast_to(x, out.shape).reshape(-1),
                                    np.broadcast_to(y, out.shape).reshape(-1),
                                    out.reshape(-1))
        # Chunked so that ground-truth grids do not allocate (points x puffs) at once.
        chunk = max(1, 2_000_000 // max(1, len(var)))
        for start in range(0, flat_x.size, chunk):
            dx = flat_x[start:start + chunk, None] - self._px
            dy = flat_y[start:start + chunk, None] - self._py
            flat_out[start:start + chunk] = (mass * np.exp(-0.5 * (dx * dx + dy * dy) / var)
                                             ).sum(axis=1)
        return out

    def temperature(self, x, y, depth=None) -> np.ndarray:
        """Water temperature [degC] at (x, y) [m] at the current time.

        Args:
            x, y: [m] positions (broadcastable).
            depth: [m] ``world.depth(x, y)`` when the caller already has it.
        """
        c = self.config
        x, y = np.asarray(x, float), np.asarray(y, float)
        if depth is None:
            depth = self.world.depth(x, y)
        base = (c.surface_temperature
                + c.shallow_warming * np.exp(-np.clip(depth, 0.0, None) / c.shallow_depth_scale)
                + c.gradient[0] * x + c.gradient[1] * y)
        return base + self.plume(x, y)
