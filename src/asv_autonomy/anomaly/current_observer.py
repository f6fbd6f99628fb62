"""Water current seen by the boat, estimated from its own motion, without the thrust.

The thrust residuals (:mod:`.channels`) invert the vessel model on the odometry's
velocities. Those are over ground; the hull's forces act on the velocity through the
water, ``nu_r = nu - R^T V_c``. In the simulator's 0.1-0.35 m/s current, inverting on
ground velocities put tens of newtons of drag that is not there into the residuals
(drifting at rest, turning from a drift, backing): their spread on a `make sim` bag was
6.6-7.6 N, 2.8 N with the true current.

The boat has no sway actuator, so the sway equation of the vessel model,

    m22 v_r' + m11 u_r r + D_v(v_r + x_lr r) = 0    (wind neglected),

holds whatever the thrusters do: with ``v_r = v - v_c``, ``u_r = u - u_c`` and
``v_r' = v' + r u_c`` it measures the current across the hull (and, in turns, along
it). With no thrust for a while the surge equation, ``m11 u_r' - m22 v_r r + D_u(u_r)
= 0``, measures it along the hull too. Neither uses a thrust command, so a thruster fault
cannot be absorbed as current: it stays in the residuals. A Kalman filter with the
current (east, north) as a random walk linearises each equation at its estimate.

A stuck hull (weeds: more drag) biases the estimate a little: the observer's sway damping
is the nominal one.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..planning.vessel import VesselParams

__all__ = ['CurrentObserverConfig', 'CurrentObserver']


@dataclass(frozen=True)
class CurrentObserverConfig:
    """Tuning of :class:`CurrentObserver`.

    Args:
        walk: [m/s per sqrt(s)] random-walk intensity of the current: the boat crosses
            the simulator's gyre (0.15 m/s over ~250 m) in minutes.
        initial_std: [m/s] prior spread of each component (prior mean 0).
        force_noise: [N] spread of an equation's residual at the true current (the
            differentiated odometry's noise, wind): 15 N on simulated missions.
        gate: [-] innovations beyond this many standard deviations are skipped (an
            odometry glitch, a GPS jump the filter follows).
        derivative_window_s: [s] accelerations are differences over this span.
        min_derivative_span_s: [s] no update while the span is shorter (the start).
        idle_settle_s: [s] the surge equation is used once both thrusters have been
            commanded 0 (or nothing) for this long (three thruster lags and the
            derivative window).
        start_after_s: [s] updates start this long after the first odometry: the
            localization's velocities converge first (simulated missions: 0.15-0.6 m/s
            wrong in the first 15-20 s, 0.05-0.1 m/s after; drifting at the start on
            them, the observer settled on a current 0.25 m/s off).
        max_std: [m/s] the estimate is used (:attr:`CurrentObserver.converged`) once its
            standard deviation is below this: 12-47 s into simulated missions (0.05 m/s
            of error is ~4 N of surge drag at 1.5 m/s, the residuals' normal spread
            with the observer is 2-3 N).
    """

    walk: float = 0.002
    initial_std: float = 0.3
    force_noise: float = 15.0
    gate: float = 5.0
    derivative_window_s: float = 0.5
    min_derivative_span_s: float = 0.2
    idle_settle_s: float = 1.1
    start_after_s: float = 20.0
    max_std: float = 0.05

    def __post_init__(self):
        for name in ('walk', 'initial_std', 'force_noise', 'gate', 'derivative_window_s',
                     'min_derivative_span_s', 'max_std'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        for name in ('idle_settle_s', 'start_after_s'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'{name} must be >= 0 s, got {value}')


class CurrentObserver:
    """Recursive estimate of the water current (east, north) [m/s] from odometry samples
    given one at a time in time order (a sample older than the newest is not used).

    Args:
        vessel: the vessel model whose sway and surge equations are used.
        config: tuning.
    """

    def __init__(self, vessel: VesselParams = VesselParams(),
                 config: CurrentObserverConfig = CurrentObserverConfig()):
        self.vessel = vessel
        self.config = config
        self.estimate = np.zeros(2)
        self.covariance = np.eye(2) * config.initial_std ** 2
        self.updates = 0
        self.skipped = 0                 # gated innovations
        self._recent: deque[tuple[float, float, float]] = deque()   # (t, u, v), last span
        self._time = -math.inf

    @property
    def std(self) -> float:
        """[m/s] largest standard deviation of the estimate."""
        return math.sqrt(float(np.linalg.eigvalsh(self.covariance)[-1]))

    @property
    def converged(self) -> bool:
        """The estimate is within ``config.max_std``."""
        return self.std < self.config.max_std

    def update(self, stamp: float, yaw: float, u: float, v: float, r: float,
               idle_s: float = 0.0) -> np.ndarray:
        """Fold in one odometry sample and return the estimate (east, north) [m/s].

        Args:
            stamp: [s]; yaw: [rad] heading from east, counter-clockwise.
            u, v: [m/s] surge and sway over ground (body frame); r: [rad/s] yaw rate.
            idle_s: [s] how long both thrusters have been commanded 0 (or nothing): from
                ``config.idle_settle_s`` on, the surge equation is used too.
        """
        if not (stamp > self._time and math.isfinite(yaw)):
            return self.estimate.copy()
        c = self.config
        self.covariance += np.eye(2) * (c.walk ** 2 * min(stamp - self._time, 10.0)
                                        if math.isfinite(self._time) else 0.0)
        self._time = stamp
        self._recent.append((stamp, u, v))
        while self._recent[0][0] < stamp - c.derivative_window_s:
            self._recent.popleft()
        t0, u0, v0 = self._recent[0]
        span = stamp - t0
        if span < c.min_derivative_span_s:
            return self.estimate.copy()
        du, dv = (u - u0) / span, (v - v0) / span
        cos, sin = math.cos(yaw), math.sin(yaw)
        along, across = np.array([cos, sin]), np.array([-sin, cos])
        self._fold(*self._sway(along, across, u, v, r, dv))
        if idle_s >= c.idle_settle_s:
            self._fold(*self._surge(along, across, u, v, r, du))
        return self.estimate.copy()

    def _sway(self, along, across, u, v, r, dv):
        """Residual [N] of the sway equation at the estimate and its gradient."""
        p = self.vessel
        u_c, v_c = float(along @ self.estimate), float(across @ self.estimate)
        v_lat = v - v_c + p.lateral_resistance_x * r
        residual = (p.m22 * (dv + r * u_c) + p.m11 * (u - u_c) * r
                    + (p.damping_sway_linear + p.damping_sway_quadratic * abs(v_lat)) * v_lat)
        slope = p.damping_sway_linear + 2.0 * p.damping_sway_quadratic * abs(v_lat)
        return residual, (p.m22 - p.m11) * r * along - slope * across

    def _surge(self, along, across, u, v, r, du):
        """Residual [N] of the surge equation without thrust and its gradient."""
        p = self.vessel
        u_c, v_c = float(along @ self.estimate), float(across @ self.estimate)
        u_r, v_r = u - u_c, v - v_c
        residual = (p.m11 * (du - r * v_c) - p.m22 * v_r * r
                    + (p.damping_surge_linear + p.damping_surge_quadratic * abs(u_r)) * u_r)
        slope = p.damping_surge_linear + 2.0 * p.damping_surge_quadratic * abs(u_r)
        return residual, -p.m11 * r * across + p.m22 * r * across - slope * along

    def _fold(self, residual: float, gradient: np.ndarray) -> None:
        """Kalman update pulling ``residual`` (linearised by ``gradient``) to zero."""
        P = self.covariance
        Ph = P @ gradient
        variance = float(gradient @ Ph) + self.config.force_noise ** 2
        if residual * residual > self.config.gate ** 2 * variance:
            self.skipped += 1
            return
        gain = Ph / variance
        self.estimate = self.estimate - gain * residual
        self.covariance = P - np.outer(gain, Ph)
        self.covariance = 0.5 * (self.covariance + self.covariance.T)
        self.updates += 1
