"""GPS + IMU localization core: `Localizer` fuses `ImuSample`s and `GnssFix`es into a
`PlanarOdometry` in the local ENU ``map`` frame about the configured datum.

The IMU drives the prediction (see `ekf`); its orientation yaw and the GNSS position are
measurements. Inputs may arrive slightly out of order (different topics, different
latencies): a stamp up to ``late_tolerance`` older than the filter time is fused at the
filter time through a first-order back-propagated measurement model; older ones are refused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geodesy import Datum, LocalENU
from ..measurements import (FIX, FIX_GBAS, FIX_NONE, FIX_SBAS, GnssFix, ImuSample,
                            InvalidInput, PlanarOdometry, wrap_angle)
from . import ekf
from .ekf import BAX, BAY, BG, STATE_SIZE, U, V, X, Y, YAW

_STATUSES = (FIX_NONE, FIX, FIX_SBAS, FIX_GBAS)


@dataclass(frozen=True)
class LocalizationConfig:
    """Tuning of the GPS + IMU filter.

    Args:
        datum: origin of the ``map`` frame.
        gyro_noise_density: [rad/s/sqrt(Hz)] gyro white noise (angle random walk).
        accel_noise_density: [m/s^2/sqrt(Hz)] horizontal specific-force white noise
            (sensor noise plus hull vibration).
        gyro_bias_walk: [rad/s^2/sqrt(Hz)] gyro z bias random walk.
        accel_bias_walk: [m/s^3/sqrt(Hz)] horizontal accelerometer bias random walk.
        heading_sigma: [rad] IMU heading noise used when the IMU reports no orientation variance.
        heading_sigma_min: [rad] floor on the reported IMU heading noise.
        gnss_sigma: [m] horizontal GNSS noise used when the fix reports no covariance.
        gnss_sigma_min: [m] floor on the reported GNSS noise (receivers are optimistic).
        gnss_sigma_max: [m] fixes with a larger reported horizontal sigma are not fused.
        gnss_gate: Mahalanobis (NIS) gate of a GNSS fix (chi2, 2 dof: 25 rejects a
            consistent fix with probability 4e-6).
        max_consecutive_outliers: after this many gated-out fixes in a row the filter trusts
            GNSS over itself and re-initialises from the fix.
        gnss_lever_arm: [m] (x forward, y left) of ``gps_link`` in ``base_link``.
        imu_yaw_offset: [rad] yaw of ``imu_link`` in ``base_link`` (mounting).
        init_speed_sigma: [m/s] prior sigma of u and v at initialisation (the boat may move).
        init_gyro_bias_sigma: [rad/s] prior sigma of the gyro bias.
        init_accel_bias_sigma: [m/s^2] prior sigma of the accelerometer bias.
        init_max_skew: [s] the first fix and the IMU heading that initialise the filter must
            be at most this far apart.
        late_tolerance: [s] inputs up to this much older than the filter time are still
            fused; older ones raise ``InvalidInput('out_of_order')``. GNSS and IMU arrive on
            separate topics, so under load a fix can queue behind several IMU samples.
        imu_timeout: [s] beyond this gap without IMU the prediction uses zero acceleration
            and zero turn rate instead of holding the last sample.
        unaided_turn_rate_density, unaided_accel_density: [rad/s/sqrt(Hz)],
            [m/s^2/sqrt(Hz)] process noise of the prediction without IMU: the boat's turns
            and speed changes are then unknown, not the IMU's small noise.
        imu_wait: [s] after the first usable fix with no IMU heading for this long, the
            filter starts without IMU (GNSS only, e.g. a replayed NMEA log): the heading is
            the course over ground between two fixes ``init_baseline`` apart.
        init_baseline: [m] distance between the two fixes of a GNSS-only start.
        init_course_interval: [s] the two fixes of a GNSS-only start are at most this far
            apart in time (the boat may turn in between).
        init_course_sigma: [rad] heading sigma added to a course over ground (leeway, drift).
        unaided_sway_sigma: [m/s] without IMU, each fused fix also tells the filter that
            the sway is about zero with this sigma: GNSS alone observes the velocity over
            ground, not how it splits into heading and surge/sway.
        gnss_timeout: [s] no GNSS fused for this long -> ``dead_reckoning`` status.
        max_dead_reckoning: [s] no GNSS fused for this long -> the estimate is dropped
            (``estimate()`` returns None) until the next fix re-initialises the filter.
        max_step: [s] longest Euler step of the prediction (longer gaps are sub-stepped).
    """

    datum: Datum = field(default_factory=Datum)
    gyro_noise_density: float = 0.002
    accel_noise_density: float = 0.05
    gyro_bias_walk: float = 1e-4
    accel_bias_walk: float = 1e-3
    heading_sigma: float = 0.02
    heading_sigma_min: float = 0.005
    gnss_sigma: float = 2.5
    gnss_sigma_min: float = 0.3
    gnss_sigma_max: float = 10.0
    gnss_gate: float = 25.0
    max_consecutive_outliers: int = 10
    gnss_lever_arm: tuple[float, ...] = (0.0, 0.0)
    imu_yaw_offset: float = 0.0
    init_speed_sigma: float = 2.0
    init_gyro_bias_sigma: float = 0.01
    init_accel_bias_sigma: float = 0.1
    init_max_skew: float = 0.5
    late_tolerance: float = 1.0
    imu_timeout: float = 0.5
    unaided_turn_rate_density: float = 0.5
    unaided_accel_density: float = 0.3
    imu_wait: float = 2.0
    init_baseline: float = 5.0
    init_course_interval: float = 30.0
    init_course_sigma: float = 0.3
    unaided_sway_sigma: float = 0.3
    gnss_timeout: float = 1.5
    max_dead_reckoning: float = 60.0
    max_step: float = 0.05

    def __post_init__(self):
        if not isinstance(self.datum, Datum):
            raise ValueError(f'datum must be a Datum, got {type(self.datum).__name__}')
        positive = ('gyro_noise_density', 'accel_noise_density', 'gyro_bias_walk',
                    'accel_bias_walk', 'heading_sigma', 'heading_sigma_min', 'gnss_sigma',
                    'gnss_sigma_min', 'gnss_sigma_max', 'gnss_gate', 'init_speed_sigma',
                    'init_gyro_bias_sigma', 'init_accel_bias_sigma', 'imu_timeout',
                    'unaided_turn_rate_density', 'unaided_accel_density', 'imu_wait',
                    'init_baseline', 'init_course_interval', 'init_course_sigma',
                    'unaided_sway_sigma',
                    'gnss_timeout', 'max_dead_reckoning', 'max_step')
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'{name} must be a finite positive number, got {value}')
        for name in ('init_max_skew', 'late_tolerance'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be finite and >= 0, got {value}')
        if not math.isfinite(self.imu_yaw_offset):
            raise ValueError(f'imu_yaw_offset must be finite, got {self.imu_yaw_offset}')
        if self.heading_sigma < self.heading_sigma_min:
            raise ValueError('heading_sigma must be >= heading_sigma_min')
        if not self.gnss_sigma_min <= self.gnss_sigma <= self.gnss_sigma_max:
            raise ValueError('need gnss_sigma_min <= gnss_sigma <= gnss_sigma_max, got '
                             f'{self.gnss_sigma_min}, {self.gnss_sigma}, {self.gnss_sigma_max}')
        if self.max_consecutive_outliers < 1:
            raise ValueError('max_consecutive_outliers must be >= 1')
        if len(self.gnss_lever_arm) != 2 or not np.isfinite(self.gnss_lever_arm).all():
            raise ValueError(f'gnss_lever_arm must be two finite numbers [m], got '
                             f'{self.gnss_lever_arm}')
        if self.max_dead_reckoning < self.gnss_timeout:
            raise ValueError('max_dead_reckoning must be >= gnss_timeout')


@dataclass(frozen=True)
class LocalizerStatus:
    """Snapshot of the filter health for ``diagnostics``.

    Args:
        initialised: an estimate is available.
        stamp: [s] filter time (newest accepted input), NaN before any input.
        last_imu_stamp, last_gnss_stamp: [s] newest IMU sample / fused GNSS fix, NaN if none.
        dead_reckoning: no GNSS fused for more than ``gnss_timeout``.
        imu_stale: no IMU for more than ``imu_timeout`` at the filter time.
        gnss_only: the filter started without IMU (heading from the course over ground).
        gnss_fused, gnss_no_fix, gnss_poor, gnss_outliers: fix counts (fused; FIX_NONE or
            NaN position; covariance above ``gnss_sigma_max``; rejected by the gate).
        resets: times the estimate was dropped (dead reckoning too long, or GNSS persistently
            disagreeing).
        last_nis: normalised innovation squared of the last gated GNSS fix.
        gyro_bias: [rad/s] estimated gyro z bias (NaN when not initialised).
        accel_bias: [m/s^2] estimated horizontal accelerometer bias (NaN when not initialised).
    """

    initialised: bool
    stamp: float
    last_imu_stamp: float
    last_gnss_stamp: float
    dead_reckoning: bool
    imu_stale: bool
    gnss_only: bool
    gnss_fused: int
    gnss_no_fix: int
    gnss_poor: int
    gnss_outliers: int
    resets: int
    last_nis: float
    gyro_bias: float
    accel_bias: tuple[float, float]


@dataclass(frozen=True)
class _ImuInput:
    """An IMU sample reduced to what the filter uses, in ``base_link``/heading frame."""

    stamp: float
    gyro_z: float          # [rad/s] rotation rate about the vertical
    accel: np.ndarray      # (2,) [m/s^2] levelled specific force in the heading frame
    yaw: float             # [rad] base_link heading measured by the IMU
    yaw_var: float         # [rad^2]


@dataclass(frozen=True)
class _Fix:
    stamp: float
    position: np.ndarray   # (2,) [m] antenna in map
    covariance: np.ndarray  # (2, 2) [m^2]


class Localizer:
    """GPS + IMU extended Kalman filter (see `ekf` for the state).

    Feed every sample through `imu` and `gnss` in arrival order; read `estimate`.
    Both raise `InvalidInput` for inputs they refuse; the filter is unchanged then.
    """

    def __init__(self, config: LocalizationConfig):
        self.config = config
        self._enu = LocalENU(config.datum)
        self._noise = np.array([config.gyro_noise_density, config.accel_noise_density,
                                config.gyro_bias_walk, config.accel_bias_walk]) ** 2
        self._unaided_noise = np.array([
            config.unaided_turn_rate_density, config.unaided_accel_density,
            config.gyro_bias_walk, config.accel_bias_walk]) ** 2
        self._lever = np.asarray(config.gnss_lever_arm, float)
        self._t = math.nan
        self._imu: _ImuInput | None = None
        self._imu_period = config.max_step
        self._pending: _Fix | None = None
        self._first_pending = math.nan     # [s] first fix since the estimate was dropped
        self._course_anchor: _Fix | None = None   # first fix of a GNSS-only start
        self._gnss_only = False
        self._x: np.ndarray | None = None
        self._P: np.ndarray | None = None
        self._last_fix = math.nan
        self._consecutive_outliers = 0
        self._counts = dict(gnss_fused=0, gnss_no_fix=0, gnss_poor=0, gnss_outliers=0, resets=0)
        self._last_nis = math.nan

    # ---------------------------------------------------------------- inputs
    def imu(self, sample: ImuSample) -> None:
        """Predict to the sample's stamp with its rates, then fuse its heading.

        Raises:
            InvalidInput: 'nan' (non-finite field), 'out_of_range' (bad quaternion or
                shape), 'out_of_order' (stamp too old).
        """
        meas = self._convert_imu(sample)
        self._check_order(meas.stamp)
        if self._imu is None or meas.stamp >= self._imu.stamp:
            if self._imu is not None and meas.stamp > self._imu.stamp:
                self._imu_period = meas.stamp - self._imu.stamp
            self._imu = meas
        if self._x is None:
            self._advance_clock(meas.stamp)
            self._try_initialise()
            return
        if meas.stamp > self._t:
            fresh = meas.stamp - self._t <= self.config.imu_timeout
            self._predict_to(meas.stamp, meas if fresh else None)
            if self._x is None:
                return
        lag = self._t - meas.stamp
        r = self._imu.gyro_z - self._x[BG]
        H = np.zeros((1, STATE_SIZE))
        H[0, YAW], H[0, BG] = 1.0, lag
        innovation = np.array([wrap_angle(meas.yaw - (self._x[YAW] - r * lag))])
        self._x, self._P, _ = ekf.update(self._x, self._P, innovation, H,
                                         np.array([[meas.yaw_var]]))

    def gnss(self, fix: GnssFix) -> bool:
        """Fuse a GNSS fix (or use it to initialise the filter).

        Returns:
            True if the fix was fused or initialised the filter; False if it carried no
            usable position (FIX_NONE / NaN position, or covariance above ``gnss_sigma_max``),
            or the filter still waits for an IMU heading to initialise.

        Raises:
            InvalidInput: 'nan' (non-finite stamp, infinite position), 'out_of_range' (bad
                status, latitude/longitude), 'out_of_order' (stamp too old), 'outlier'
                (gated out; counted in ``status().gnss_outliers``).
        """
        stamp, lat, lon = float(fix.stamp), float(fix.latitude), float(fix.longitude)
        if not math.isfinite(stamp):
            raise InvalidInput('nan', f'GNSS stamp {stamp}')
        if fix.status not in _STATUSES:
            raise InvalidInput('out_of_range', f'GNSS status {fix.status}')
        if fix.status == FIX_NONE or math.isnan(lat) or math.isnan(lon):
            self._counts['gnss_no_fix'] += 1
            return False
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise InvalidInput('nan', f'GNSS position {lat}, {lon}')
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 360.0):
            raise InvalidInput('out_of_range', f'GNSS latitude {lat} / longitude {lon}')
        self._check_order(stamp)
        covariance = self._gnss_covariance(fix.position_covariance)
        if covariance is None:
            self._counts['gnss_poor'] += 1
            return False
        alt = float(fix.altitude) if math.isfinite(fix.altitude) else self.config.datum.altitude
        east, north, _ = self._enu.to_enu(lat, lon, alt)
        meas = _Fix(stamp, np.array([float(east), float(north)]), covariance)

        if self._x is not None and stamp > self._t:
            held = self._imu
            fresh = held is not None and stamp - held.stamp <= self.config.imu_timeout
            self._predict_to(stamp, held if fresh else None)
        if self._x is None:
            self._advance_clock(stamp)
            self._pending = meas
            return self._try_initialise()
        fused = self._fuse_fix(meas)
        if fused and not self._imu_fresh():
            self._constrain_sway()
        return fused

    # ---------------------------------------------------------------- outputs
    def estimate(self) -> PlanarOdometry | None:
        """Current state with its (6, 6) covariance of (x, y, yaw, u, v, r); None until the
        filter is initialised (first usable fix + IMU heading) or after it dropped out."""
        if self._x is None:
            return None
        x, P = self._x, self._P
        gyro = self._imu.gyro_z if self._imu_fresh() else x[BG]
        # Output (x, y, yaw, u, v, r) = J state + (0, ..., gyro noise); r = gyro - b_g.
        J = np.zeros((6, STATE_SIZE))
        J[:5, :5] = np.eye(5)
        J[5, BG] = -1.0
        cov = J @ P @ J.T
        cov[5, 5] += self._noise[0] / max(self._imu_period, 1e-3)
        return PlanarOdometry(stamp=self._t, x=float(x[X]), y=float(x[Y]), yaw=float(x[YAW]),
                              u=float(x[U]), v=float(x[V]), r=float(gyro - x[BG]),
                              covariance=cov)

    def status(self) -> LocalizerStatus:
        """Health counters and flags (see `LocalizerStatus`)."""
        since_fix = self._t - self._last_fix
        bias = self._x[[BG, BAX, BAY]] if self._x is not None else np.full(3, math.nan)
        return LocalizerStatus(
            initialised=self._x is not None, stamp=self._t,
            last_imu_stamp=self._imu.stamp if self._imu is not None else math.nan,
            last_gnss_stamp=self._last_fix,
            dead_reckoning=self._x is not None and since_fix > self.config.gnss_timeout,
            imu_stale=math.isfinite(self._t) and not self._imu_fresh(),
            gnss_only=self._x is not None and self._gnss_only,
            last_nis=self._last_nis, gyro_bias=float(bias[0]),
            accel_bias=(float(bias[1]), float(bias[2])), **self._counts)

    def reset(self) -> None:
        """Forget the state and the time (e.g. after the clock jumped back); counters stay."""
        self._drop()
        self._t = math.nan
        self._imu = None

    # ---------------------------------------------------------------- internals
    def _convert_imu(self, sample: ImuSample) -> _ImuInput:
        stamp = float(sample.stamp)
        q = np.asarray(sample.orientation, float)
        w = np.asarray(sample.angular_velocity, float)
        a = np.asarray(sample.linear_acceleration, float)
        if q.shape != (4,) or w.shape != (3,) or a.shape != (3,):
            raise InvalidInput('out_of_range', f'IMU shapes {q.shape}, {w.shape}, {a.shape}')
        if not (math.isfinite(stamp) and np.isfinite(q).all() and np.isfinite(w).all()
                and np.isfinite(a).all()):
            raise InvalidInput('nan', 'non-finite IMU stamp, orientation, rate or acceleration')
        norm = float(np.linalg.norm(q))
        if not 0.5 < norm < 1.5:
            raise InvalidInput('out_of_range', f'IMU quaternion norm {norm:.3g}')
        R = _rotation_matrix(q / norm)
        yaw = float(wrap_angle(math.atan2(R[1, 0], R[0, 0]) - self.config.imu_yaw_offset))
        # Level the specific force (gravity stays on up) and express it in the heading frame.
        f = R @ a
        c, s = math.cos(yaw), math.sin(yaw)
        accel = np.array([c * f[0] + s * f[1], -s * f[0] + c * f[1]])
        var = float(np.asarray(sample.orientation_variance, float).reshape(-1)[-1])
        sigma_min = self.config.heading_sigma_min
        var = max(var, sigma_min ** 2) if math.isfinite(var) else self.config.heading_sigma ** 2
        return _ImuInput(stamp, float((R @ w)[2]), accel, yaw, var)

    def _gnss_covariance(self, covariance) -> np.ndarray | None:
        """(2, 2) horizontal covariance: reported one floored, default if unknown, None if
        worse than ``gnss_sigma_max``."""
        cfg = self.config
        c = np.asarray(covariance, float)
        if c.size != 9 or not np.isfinite(c).all():
            return np.eye(2) * cfg.gnss_sigma ** 2
        c = c.reshape(3, 3)[:2, :2]
        w, vec = np.linalg.eigh(0.5 * (c + c.T))
        if w.max() > cfg.gnss_sigma_max ** 2:
            return None
        w = np.maximum(w, cfg.gnss_sigma_min ** 2)
        return (vec * w) @ vec.T

    def _check_order(self, stamp: float) -> None:
        if math.isfinite(self._t) and stamp < self._t - self.config.late_tolerance:
            raise InvalidInput('out_of_order', f'stamp {stamp:.3f} s is {self._t - stamp:.3f} s '
                               f'older than the filter time {self._t:.3f} s')

    def _advance_clock(self, stamp: float) -> None:
        """Filter time while not initialised: the newest stamp seen."""
        self._t = stamp if not math.isfinite(self._t) else max(self._t, stamp)

    def _imu_fresh(self) -> bool:
        return self._imu is not None and self._t - self._imu.stamp <= self.config.imu_timeout

    def _predict_to(self, stamp: float, imu: _ImuInput | None) -> None:
        """Propagate to ``stamp`` with the IMU rates (zero motion input when ``imu`` is None)."""
        dt = stamp - self._t
        steps = max(1, math.ceil(dt / self.config.max_step))
        if imu is None:  # zero turn rate and zero acceleration, both uncertain
            gyro, accel, noise = self._x[BG], self._x[[BAX, BAY]], self._unaided_noise
        else:
            gyro, accel, noise = imu.gyro_z, imu.accel, self._noise
        for _ in range(steps):
            self._x, self._P = ekf.propagate(self._x, self._P, gyro, accel, dt / steps, noise)
        self._t = stamp
        if stamp - self._last_fix > self.config.max_dead_reckoning:
            self._counts['resets'] += 1
            self._drop()

    def _fuse_fix(self, meas: _Fix) -> bool:
        x = self._x
        lag = self._t - meas.stamp
        c, s = math.cos(x[YAW]), math.sin(x[YAW])
        rot = np.array([[c, -s], [s, c]])
        drot = np.array([[-s, -c], [c, -s]])
        # Antenna position at the fix stamp, back-propagated by the lag with the velocity.
        arm = self._lever - x[[U, V]] * lag
        H = np.zeros((2, STATE_SIZE))
        H[:, [X, Y]] = np.eye(2)
        H[:, YAW] = drot @ arm
        H[:, [U, V]] = -rot * lag
        innovation = meas.position - (x[[X, Y]] + rot @ arm)
        x_new, P_new, nis = ekf.update(x, self._P, innovation, H, meas.covariance,
                                       gate=self.config.gnss_gate)
        self._last_nis = nis
        if not nis <= self.config.gnss_gate:
            self._counts['gnss_outliers'] += 1
            self._consecutive_outliers += 1
            if self._consecutive_outliers >= self.config.max_consecutive_outliers:
                self._counts['resets'] += 1
                self._drop()
                self._pending = meas
                return self._try_initialise()
            raise InvalidInput('outlier', f'GNSS fix {np.hypot(*innovation):.1f} m off, NIS '
                               f'{nis:.1f} > gate {self.config.gnss_gate}')
        self._x, self._P = x_new, P_new
        self._consecutive_outliers = 0
        self._last_fix = meas.stamp
        self._counts['gnss_fused'] += 1
        return True

    def _constrain_sway(self) -> None:
        """Pseudo-measurement v = 0 (a hull moves along its heading, give or take leeway)."""
        H = np.zeros((1, STATE_SIZE))
        H[0, V] = 1.0
        self._x, self._P, _ = ekf.update(self._x, self._P, -self._x[[V]], H,
                                         np.array([[self.config.unaided_sway_sigma ** 2]]))

    def _try_initialise(self) -> bool:
        """Start from the pending fix and the latest IMU heading when close enough in time,
        or without IMU from the course over ground (see ``imu_wait``)."""
        fix, imu, cfg = self._pending, self._imu, self.config
        if fix is None:
            return False
        if not math.isfinite(self._first_pending):
            self._first_pending = fix.stamp
        if imu is not None and abs(fix.stamp - imu.stamp) <= cfg.init_max_skew:
            self._start(fix, imu.yaw, imu.yaw_var, 0.0, cfg.init_speed_sigma ** 2)
            self._gnss_only = False
            return True
        # The course's first fix is kept while waiting for the IMU, so a GNSS-only start
        # needs no extra travel after the wait.
        anchor = self._course_anchor
        if anchor is None or fix.stamp - anchor.stamp > cfg.init_course_interval:
            self._course_anchor = fix
            return False
        imu_silent = imu is None or fix.stamp - imu.stamp > cfg.imu_wait
        if not (imu_silent and fix.stamp - self._first_pending >= cfg.imu_wait):
            return False
        travel = fix.position - anchor.position
        distance = float(np.hypot(*travel))
        if distance < cfg.init_baseline:
            return False
        # Heading = bearing of the travel; its sigma from both fixes' noise across the
        # baseline, plus leeway/drift. Speed over ground along it.
        across = float(np.trace(fix.covariance + anchor.covariance)) / 2.0
        dt = max(fix.stamp - anchor.stamp, 1e-3)
        self._start(fix, math.atan2(travel[1], travel[0]),
                    across / distance ** 2 + cfg.init_course_sigma ** 2,
                    distance / dt, 2.0 * across / dt ** 2 + (cfg.init_speed_sigma / 2.0) ** 2)
        self._gnss_only = True
        return True

    def _start(self, fix: _Fix, yaw: float, yaw_var: float, speed: float,
               speed_var: float) -> None:
        cfg = self.config
        c, s = math.cos(yaw), math.sin(yaw)
        x = np.zeros(STATE_SIZE)
        x[[X, Y]] = fix.position - np.array([[c, -s], [s, c]]) @ self._lever
        x[YAW] = yaw
        x[U] = speed
        P = np.zeros((STATE_SIZE, STATE_SIZE))
        # The fix may be up to init_max_skew away from the filter time at unknown speed.
        skew = self._t - fix.stamp
        P[:2, :2] = fix.covariance + np.eye(2) * (cfg.init_speed_sigma * skew) ** 2
        P[YAW, YAW] = yaw_var
        P[U, U] = speed_var
        P[V, V] = cfg.init_speed_sigma ** 2
        P[BG, BG] = cfg.init_gyro_bias_sigma ** 2
        P[BAX, BAX] = P[BAY, BAY] = cfg.init_accel_bias_sigma ** 2
        self._x, self._P = x, P
        self._last_fix = fix.stamp
        self._pending = self._course_anchor = None
        self._first_pending = math.nan
        self._consecutive_outliers = 0
        self._counts['gnss_fused'] += 1

    def _drop(self) -> None:
        self._x = self._P = self._pending = self._course_anchor = None
        self._first_pending = math.nan
        self._consecutive_outliers = 0


def _rotation_matrix(q: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix of the unit quaternion (x, y, z, w)."""
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
