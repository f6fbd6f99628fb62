"""Simulated sensors: GNSS, IMU (AHRS), single-beam sonar, water-temperature probe.

Each sensor turns the true state into the measurement record of ``measurements.py`` with
a noise model whose reported (co)variance matches the white noise it adds. Each draws
from its own ``numpy.random.Generator`` so sensors stay reproducible independently.
Faults enter through ``FaultEffects``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geodesy import LocalENU
from ..measurements import (FIX, FIX_NONE, GnssFix, ImuSample, ScalarReading,
                            yaw_to_quaternion)
from .faults import FaultEffects


def _check_positive(config, *names):
    for name in names:
        if not getattr(config, name) > 0.0:
            raise ValueError(f'{type(config).__name__}.{name} must be > 0, '
                             f'got {getattr(config, name)}')


def _check_non_negative(config, *names):
    for name in names:
        if not getattr(config, name) >= 0.0:
            raise ValueError(f'{type(config).__name__}.{name} must be >= 0, '
                             f'got {getattr(config, name)}')


@dataclass(frozen=True)
class GnssConfig:
    """GNSS receiver (antenna at ``base_link``).

    Args:
        rate_hz: [Hz].
        horizontal_std: [m] white noise per horizontal axis (a standalone L1 receiver).
        vertical_std: [m] white noise of the altitude.
        antenna_height: [m] antenna height above the water (datum altitude = water).
    """

    rate_hz: float = 5.0
    horizontal_std: float = 0.8
    vertical_std: float = 1.5
    antenna_height: float = 0.5

    def __post_init__(self):
        _check_positive(self, 'rate_hz')
        _check_non_negative(self, 'horizontal_std', 'vertical_std')


class Gnss:
    """Fixes in WGS-84 of the true position plus white noise (and fault offsets)."""

    def __init__(self, config: GnssConfig, enu: LocalENU, rng: np.random.Generator):
        self.config = config
        self._enu = enu
        self._rng = rng
        h, v = config.horizontal_std ** 2, config.vertical_std ** 2
        self._cov = np.diag([h, h, v])

    def measure(self, stamp: float, x: float, y: float, effects: FaultEffects) -> GnssFix:
        """Fix at ``stamp`` [s] for the true map position (x, y) [m].

        During a dropout the receiver still reports, with ``FIX_NONE`` and NaN position
        and covariance, as real receivers do.
        """
        if effects.gps_dropout:
            return GnssFix(stamp, math.nan, math.nan, math.nan, FIX_NONE,
                           np.full((3, 3), math.nan))
        c = self.config
        n = self._rng.standard_normal(3)
        lat, lon, alt = self._enu.to_geodetic(
            x + effects.gps_offset[0] + c.horizontal_std * n[0],
            y + effects.gps_offset[1] + c.horizontal_std * n[1],
            c.antenna_height + c.vertical_std * n[2])
        return GnssFix(stamp, float(lat), float(lon), float(alt), FIX, self._cov.copy())


@dataclass(frozen=True)
class ImuConfig:
    """IMU with on-board attitude fusion (AHRS), mounted at ``base_link``, axes FLU.

    Args:
        rate_hz: [Hz].
        roll_pitch_std: [rad] white noise on roll and pitch (true roll/pitch are 0).
        yaw_std: [rad] white noise on yaw.
        heading_error_std: [rad] stationary std of a slow heading error (Gauss-Markov:
            magnetic disturbances); included in the reported yaw variance.
        heading_error_time_constant: [s] correlation time of that error.
        gyro_std: [rad/s] white noise per sample on each axis.
        gyro_bias_std: [rad/s] std of the initial z gyro bias.
        gyro_bias_walk: [rad/s/sqrt(s)] random-walk intensity of the z gyro bias.
        accel_std: [m/s^2] white noise per sample on each axis.
        gravity: [m/s^2].
    """

    rate_hz: float = 50.0
    roll_pitch_std: float = 0.01
    yaw_std: float = 0.01
    heading_error_std: float = 0.02
    heading_error_time_constant: float = 300.0
    gyro_std: float = 0.005
    gyro_bias_std: float = 0.002
    gyro_bias_walk: float = 0.0001
    accel_std: float = 0.05
    gravity: float = 9.81

    def __post_init__(self):
        _check_positive(self, 'rate_hz', 'heading_error_time_constant', 'gravity')
        _check_non_negative(self, 'roll_pitch_std', 'yaw_std', 'heading_error_std',
                            'gyro_std', 'gyro_bias_std', 'gyro_bias_walk', 'accel_std')


class Imu:
    """Orientation, angular velocity and specific force with noise, bias and drift."""

    def __init__(self, config: ImuConfig, rng: np.random.Generator):
        self.config = config
        self._rng = rng
        self._bias = config.gyro_bias_std * rng.standard_normal()
        self._heading_error = config.heading_error_std * rng.standard_normal()
        self._last_stamp = None
        c = config
        self._orientation_var = np.array([c.roll_pitch_std ** 2, c.roll_pitch_std ** 2,
                                          c.yaw_std ** 2 + c.heading_error_std ** 2])
        self._gyro_var = np.full(3, c.gyro_std ** 2)
        self._accel_var = np.full(3, c.accel_std ** 2)

    @property
    def gyro_bias(self) -> float:
        """[rad/s] current z gyro bias (without fault drift)."""
        return self._bias

    def measure(self, stamp: float, yaw: float, yaw_rate: float, accel_body,
                effects: FaultEffects) -> ImuSample:
        """Sample at ``stamp`` [s] for the true yaw [rad], yaw rate [rad/s] and body
        acceleration (forward, left) [m/s^2]."""
        c = self.config
        if self._last_stamp is not None:
            dt = stamp - self._last_stamp
            a = math.exp(-dt / c.heading_error_time_constant)
            self._heading_error = (a * self._heading_error + c.heading_error_std
                                   * math.sqrt(1.0 - a * a) * self._rng.standard_normal())
            self._bias += c.gyro_bias_walk * math.sqrt(dt) * self._rng.standard_normal()
        self._last_stamp = stamp
        n = self._rng.standard_normal(9)
        roll, pitch = c.roll_pitch_std * n[0], c.roll_pitch_std * n[1]
        yaw_meas = yaw + self._heading_error + effects.heading_bias + c.yaw_std * n[2]
        gyro = np.array([c.gyro_std * n[3], c.gyro_std * n[4],
                         yaw_rate + self._bias + effects.gyro_bias + c.gyro_std * n[5]])
        accel = np.array([accel_body[0] + c.accel_std * n[6],
                          accel_body[1] + c.accel_std * n[7],
                          c.gravity + c.accel_std * n[8]])
        return ImuSample(stamp, _quaternion(roll, pitch, yaw_meas), gyro, accel,
                         self._orientation_var.copy(), self._gyro_var.copy(),
                         self._accel_var.copy())


def _quaternion(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(4,) quaternion x, y, z, w of intrinsic ZYX (yaw, pitch, roll) angles [rad]."""
    if roll == 0.0 and pitch == 0.0:
        return yaw_to_quaternion(yaw)
    cr, sr = math.cos(0.5 * roll), math.sin(0.5 * roll)
    cp, sp = math.cos(0.5 * pitch), math.sin(0.5 * pitch)
    cy, sy = math.cos(0.5 * yaw), math.sin(0.5 * yaw)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])


@dataclass(frozen=True)
class SonarConfig:
    """Single-beam echosounder (e.g. Blue Robotics Ping2: 0.3-100 m, 0.5 % resolution).

    Args:
        rate_hz: [Hz].
        transducer_draft: [m] depth of the transducer below the water line.
        noise_fraction: [-] noise std as a fraction of the range.
        noise_floor: [m] std added in quadrature (range-independent).
        min_range, max_range: [m] measurable range; closer -> -inf, farther -> +inf
            (REP-117).
    """

    rate_hz: float = 5.0
    transducer_draft: float = 0.1
    noise_fraction: float = 0.01
    noise_floor: float = 0.02
    min_range: float = 0.3
    max_range: float = 50.0

    def __post_init__(self):
        _check_positive(self, 'rate_hz', 'max_range')
        _check_non_negative(self, 'transducer_draft', 'noise_fraction', 'noise_floor',
                            'min_range')
        if not self.min_range < self.max_range:
            raise ValueError('SonarConfig.min_range must be < max_range')


class Sonar:
    """Depth below the transducer [m] with range-proportional noise and spurious echoes."""

    def __init__(self, config: SonarConfig, rng: np.random.Generator):
        self.config = config
        self._rng = rng

    def measure(self, stamp: float, water_depth: float, effects: FaultEffects) -> ScalarReading:
        """Reading at ``stamp`` [s] where the true water depth is ``water_depth`` [m]."""
        c = self.config
        rng = self._rng
        true_range = water_depth - c.transducer_draft
        variance = (c.noise_fraction * max(true_range, 0.0)) ** 2 + c.noise_floor ** 2
        u, n = rng.random(2)
        if effects.sonar_spurious_probability > 0.0 and u < effects.sonar_spurious_probability:
            lo, hi = effects.sonar_spurious_range
            value = lo + (hi - lo) * n
        else:
            value = true_range + math.sqrt(variance) * rng.standard_normal()
        if value < c.min_range:
            value = -math.inf
        elif value > c.max_range:
            value = math.inf
        return ScalarReading(stamp, value, variance)


@dataclass(frozen=True)
class TemperatureProbeConfig:
    """Water-temperature probe just below the surface.

    Args:
        rate_hz: [Hz].
        noise_std: [degC] white noise.
    """

    rate_hz: float = 1.0
    noise_std: float = 0.05

    def __post_init__(self):
        _check_positive(self, 'rate_hz')
        _check_non_negative(self, 'noise_std')


class TemperatureProbe:
    """Temperature [degC] with white noise."""

    def __init__(self, config: TemperatureProbeConfig, rng: np.random.Generator):
        self.config = config
        self._rng = rng

    def measure(self, stamp: float, temperature: float) -> ScalarReading:
        """Reading at ``stamp`` [s] of the true temperature [degC]."""
        c = self.config
        return ScalarReading(stamp, temperature + c.noise_std * self._rng.standard_normal(),
                             c.noise_std ** 2)


class RateTimer:
    """Decides which simulation steps a sensor of ``rate_hz`` samples on.

    Due on the step at or just after each multiple of ``1 / rate_hz`` s (t > 0); the
    average rate is exact, and the interval is exact when 1 / (rate dt) is an integer
    (otherwise it alternates between neighbouring step counts).
    """

    def __init__(self, rate_hz: float):
        self.period = 1.0 / rate_hz
        self._next = self.period

    def due(self, t: float) -> bool:
        """True when a sample is due at time t [s] (and schedules the next one)."""
        if t + 1e-9 < self._next:
            return False
        self._next += self.period
        if self._next <= t:  # the caller skipped ahead: resynchronise
            self._next = t + self.period
        return True
