"""The detector channels of this boat, computed from plain sensor samples.

Shared by the bag reader (:mod:`.bag_channels`) and the ROS node (which converts messages
to plain arrays first), so offline training and online scoring see the same channels.
Each channel is one scalar; :data:`CHANNEL_GROUPS` names the label channel
(``sim/faults`` channel: ``gps``, ``imu``, ``sonar``, ``thruster_left``,
``thruster_right``, ``hull``) that an anomaly on it is attributed to.

Commanded vs achieved motion (``thrust_*_residual``): the odometry's body velocities and
their time derivatives give, through the inverse of the vessel model the simulator uses
(``planning.vessel``, calm water: ``tau = M nu' + C(nu) nu + D(nu) nu``), the surge force
and yaw moment the hull actually received, hence the thrust each side *delivered*. The
commands, saturated and passed through the thrusters' first-order lag, are what should
have been delivered. Each side's difference (delivered - commanded [N], averaged over
``residual_window_s``) is attributed to that thruster; their mean, the loss both sides
share (weeds dragging the hull), to ``hull``. A failed thruster moves its own residual by
the whole lost thrust and the mean by half of it (with less noise: two sides averaged);
a dragging hull moves both sides and the mean alike. A plain yaw-rate residual would
point at the hull: under closed loop a failed thruster shows up as the hull not turning
as commanded. The hull's forces act on the velocity through the water: the current,
estimated from the sway equation (:mod:`.current_observer`, no thrust command used), is
taken off the odometry's velocities over ground first. Wind is not modelled: it is part
of the normal spread the detector learns.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ..geodesy import Datum, LocalENU
from ..localization import LocalizationConfig
from ..measurements import FIX_NONE
from ..planning.vessel import VesselParams
from .current_observer import CurrentObserver, CurrentObserverConfig
from .series import ChannelStreams

__all__ = ['CHANNEL_GROUPS', 'BOAT_CHANNELS', 'SHARED_CHANNELS', 'BOAT_UNSCORED_CHANNELS',
           'BOAT_LONG_WINDOW_CHANNELS', 'NMEA_CHANNEL_GROUPS', 'HOLD_S', 'group_of',
           'ChannelConfig', 'command_settle_s',
           'gps_velocity', 'gps_channels', 'imu_channels', 'heading_vs_course',
           'odometry_channels', 'thrust_channels', 'command_residuals',
           'BoatChannelBuilder']

# channel -> label channel (group) it is attributed to, in the detector's column order.
CHANNEL_GROUPS: dict[str, str] = {
    'gps_fix': 'gps',                  # 1 valid fix, 0 no fix (silence = 0)
    'gps_residual_east': 'gps',        # [m] fix minus odometry position, east
    'gps_residual_north': 'gps',       # [m] north
    'gps_speed': 'gps',                # [m/s] speed over ground from the fixes
    'imu_roll': 'imu',                 # [rad]
    'imu_pitch': 'imu',                # [rad]
    'imu_heading_vs_course': 'imu',    # sin(IMU yaw - GPS course over ground)
    'imu_yaw_vs_gyro': 'imu',          # [rad/s] IMU yaw rate minus the z gyro, windowed
    'imu_rate_x': 'imu', 'imu_rate_y': 'imu', 'imu_rate_z': 'imu',        # [rad/s]
    'imu_accel_x': 'imu', 'imu_accel_y': 'imu', 'imu_accel_z': 'imu',     # [m/s^2]
    'sonar_depth': 'sonar',            # [m]
    'thrust_left': 'thruster_left',    # [N] command
    'thrust_right': 'thruster_right',  # [N] command
    'thrust_left_residual': 'thruster_left',    # [N] delivered - commanded thrust
    'thrust_right_residual': 'thruster_right',  # [N]
    'odom_speed': 'hull',              # [m/s] surge u
    'odom_sway': 'hull',               # [m/s] sway v
    'odom_yaw_rate': 'hull',           # [rad/s] r
    'thrust_common_residual': 'hull',  # [N] mean of the two sides' residuals
}
BOAT_CHANNELS: tuple[str, ...] = tuple(CHANNEL_GROUPS)
# A channel that measures what its parts share -> the parts. When every part is above the
# threshold at once the cause is the shared one and the alarm is attributed to it,
# whichever part scores highest: both thrusters short of thrust alike is the hull
# dragging. (With the current taken off, each side's residual is nearly as quiet as
# their mean, so a side often outscored the mean in a stuck hull: on the simulated test
# missions both sides were above the threshold at 98-100 % of a stuck hull's alarm steps,
# the healthy side at none of a thruster fault's.)
SHARED_CHANNELS: dict[str, tuple[str, ...]] = {
    'thrust_common_residual': ('thrust_left_residual', 'thrust_right_residual'),
}
# Inputs of the network that never raise an alarm themselves: the controller's thrust
# commands jump at every waypoint (normal), a thruster at fault shows in its residual.
BOAT_UNSCORED_CHANNELS: tuple[str, ...] = ('thrust_left', 'thrust_right')
# Channels with the detector's long-window term: the residuals, each comparing two
# sources of one quantity (near 0 whatever the mission), and the sonar depth, whose score
# is its forecast error on a smooth bottom: spurious echoes come at a rate, and between
# them the depth is good, so only their 10 s mean covers the fault (held-out sonar faults:
# point AUROC 0.75 -> 0.93, no false alarm added on the test missions nor in four
# `make sim` bags). A long mean of a state (speed, heading against course) follows the
# mission's operating point: in `asv sim run`'s survey it raised 8 false alarms in
# 1100 s (odom_speed, imu_heading_vs_course).
BOAT_LONG_WINDOW_CHANNELS: tuple[str, ...] = (
    'gps_residual_east', 'gps_residual_north', 'imu_yaw_vs_gyro', 'sonar_depth',
    'thrust_left_residual', 'thrust_right_residual', 'thrust_common_residual')

# Channels of NMEA logs (.nmea_channels) that the boat does not have -> group.
NMEA_CHANNEL_GROUPS: dict[str, str] = {
    'gps_step_east': 'gps', 'gps_step_north': 'gps', 'sog': 'gps', 'cog_vs_track': 'gps',
    'cog_vs_heading': 'imu', 'heading_rate': 'imu',   # the heading sensor (compass/AHRS)
    'depth': 'sonar', 'water_speed': 'log', 'water_temperature': 'temperature',
    'wind_speed_relative': 'wind', 'wind_angle_relative': 'wind', 'wind_speed_true': 'wind',
}

# [s] how long a sample stays valid on the grid (a few sample periods of each source).
HOLD_S: dict[str, float] = {
    **{name: 1.5 for name in ('gps_fix', 'gps_residual_east', 'gps_residual_north',
                              'gps_speed', 'imu_heading_vs_course')},
    **{name: 0.2 for name in ('imu_roll', 'imu_pitch', 'imu_rate_x', 'imu_rate_y',
                              'imu_rate_z', 'imu_accel_x', 'imu_accel_y', 'imu_accel_z')},
    'imu_yaw_vs_gyro': 0.2,
    'sonar_depth': 1.0,
    'thrust_left': 0.5, 'thrust_right': 0.5,
    **{name: 0.3 for name in ('odom_speed', 'odom_sway', 'odom_yaw_rate',
                              'thrust_left_residual', 'thrust_right_residual',
                              'thrust_common_residual')},
}


def group_of(channel: str) -> str:
    """The label channel ``channel`` is attributed to; an unknown channel (a CSV column)
    is its own group."""
    return CHANNEL_GROUPS.get(channel) or NMEA_CHANNEL_GROUPS.get(channel, channel)


@dataclass(frozen=True)
class ChannelConfig:
    """How the channels are computed.

    Args:
        datum: origin of the ``map`` frame the odometry is in (GPS residuals); the
            localization's default.
        vessel: the vessel model (command residuals).
        velocity_window_s: [s] GPS velocity is the least-squares slope of the fixes of
            this past window (one fix pair at 5 Hz with 0.8 m noise would give ~6 m/s of
            speed noise; in simulated missions the 10 Hz step-to-step noise of
            ``imu_heading_vs_course`` is 0.21 with 2 s, 0.056 with 4 s).
        min_course_speed: [m/s] below this speed over ground the course is noise and
            ``imu_heading_vs_course`` is missing.
        derivative_window_s: [s] odometry accelerations are differences over this span.
        residual_window_s: [s] thrust residuals are averaged over this past span.
        yaw_window_s: [s] ``imu_yaw_vs_gyro`` compares the IMU yaw change and the
            integrated z gyro over this past span (white noise averages out; a drifting
            heading or gyro bias does not).
        warmup_s: [s] channels derived from the odometry (GPS and thrust residuals) are
            missing until this long after its first sample: the filter is converging.
        command_timeout_s: [s] a thrust command older than this counts as 0 (the thrust
            guard zeroes the thrusters after its timeout).
        history_s: [s] :class:`BoatChannelBuilder` forgets raw samples older than the
            newest by more than this (``inf``: keep everything, offline).
        current: the water current observer's tuning; None: calm water (the residuals
            invert the vessel model on velocities over ground).
    """

    datum: Datum = field(default_factory=lambda: LocalizationConfig().datum)
    vessel: VesselParams = field(default_factory=VesselParams)
    velocity_window_s: float = 4.0
    min_course_speed: float = 0.3
    derivative_window_s: float = 0.5
    residual_window_s: float = 1.0
    yaw_window_s: float = 5.0
    warmup_s: float = 5.0
    command_timeout_s: float = 0.5
    history_s: float = math.inf
    current: CurrentObserverConfig | None = field(default_factory=CurrentObserverConfig)

    def __post_init__(self):
        if not isinstance(self.datum, Datum):
            raise ValueError(f'datum must be a Datum, got {type(self.datum).__name__}')
        if not (self.current is None or isinstance(self.current, CurrentObserverConfig)):
            raise ValueError(f'current must be a CurrentObserverConfig or None, got '
                             f'{type(self.current).__name__}')
        if not isinstance(self.vessel, VesselParams):
            raise ValueError(f'vessel must be VesselParams, got {type(self.vessel).__name__}')
        for name in ('velocity_window_s', 'derivative_window_s', 'residual_window_s',
                     'yaw_window_s', 'command_timeout_s', 'history_s'):
            value = getattr(self, name)
            if not value > 0.0 or math.isnan(value):
                raise ValueError(f'{name} must be > 0 s, got {value}')
        if not (math.isfinite(self.warmup_s) and self.warmup_s >= 0.0):
            raise ValueError(f'warmup_s must be >= 0 s, got {self.warmup_s}')
        if not (math.isfinite(self.min_course_speed) and self.min_course_speed >= 0.0):
            raise ValueError(f'min_course_speed must be >= 0 m/s, got {self.min_course_speed}')


def gps_velocity(times, east, north, window_s: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Causal velocity of each fix: least-squares slope of the fixes in ``(t - window_s, t]``.

    Args:
        times: [s] fix times, sorted. east, north: [m] positions.
        window_s: [s] the past span each slope uses.

    Returns:
        (v_east, v_north, valid_at): velocity [m/s], NaN where the window holds fewer
        than two fixes, and [s] the mean time of the window's fixes (a least-squares
        slope is the velocity there, about ``window_s / 2`` before the fix).

    Shapes:
        ``(n,)`` each -> ``(n,)`` each.
    """
    t, e, n = (np.asarray(a, dtype=np.float64) for a in (times, east, north))
    first = np.searchsorted(t, t - window_s, side='right')
    # Prefix sums give every window's sums in O(n).
    def prefix(a):
        return np.concatenate([[0.0], np.cumsum(a)])
    t0 = t - t[0] if t.size else t          # centred for numerical headroom
    stop = np.arange(1, t.size + 1)
    sums = {k: prefix(a) for k, a in (('t', t0), ('tt', t0 * t0), ('e', e), ('n', n),
                                      ('te', t0 * e), ('tn', t0 * n))}
    def window(key):
        return sums[key][stop] - sums[key][first]
    count = (stop - first).astype(np.float64)
    st, stt = window('t'), window('tt')
    denom = count * stt - st * st
    with np.errstate(invalid='ignore', divide='ignore'):
        valid = (count >= 2) & (denom > 1e-9 * np.maximum(count * stt, 1e-12))
        v_e = np.where(valid, (count * window('te') - st * window('e')) / denom, np.nan)
        v_n = np.where(valid, (count * window('tn') - st * window('n')) / denom, np.nan)
    return v_e, v_n, t[0] + st / np.maximum(count, 1.0) if t.size else t


@functools.lru_cache(maxsize=4)
def _local_enu(datum: Datum) -> LocalENU:
    # Building the pyproj transformers takes milliseconds; the node calls this at 10 Hz.
    return LocalENU(datum)


def gps_channels(times, latitude, longitude, status, odom_times=None, odom_xy=None,
                 config: ChannelConfig = ChannelConfig(),
                 odometry_start: float | None = None) -> tuple[ChannelStreams, tuple]:
    """``gps_fix``, ``gps_residual_east/north`` and ``gps_speed`` from fixes.

    Args:
        times: [s] fix stamps. latitude, longitude: [deg] (NaN without a fix).
        status: NavSatStatus values (``FIX_NONE`` = -1: no fix).
        odom_times: [s] odometry stamps, sorted; odom_xy: [m] their map positions.
            Without odometry there are no residual channels.
        config: datum, velocity window, warm-up.
        odometry_start: [s] first odometry stamp ever (default ``odom_times[0]``); the
            residuals start ``config.warmup_s`` after it.

    Returns:
        (streams, (fix_times, v_east, v_north, valid_at)): the channels and the GPS
        velocity of each valid fix (see :func:`gps_velocity`; for
        :func:`heading_vs_course`).

    Shapes:
        times/latitude/longitude/status ``(n,)``; odom_times ``(m,)``, odom_xy ``(m, 2)``.
    """
    t = np.asarray(times, dtype=np.float64)
    lat, lon = np.asarray(latitude, np.float64), np.asarray(longitude, np.float64)
    status = np.asarray(status)
    fixed = (status != FIX_NONE) & np.isfinite(lat) & np.isfinite(lon)
    streams = ChannelStreams()
    streams.add('gps_fix', t, fixed.astype(np.float64), hold=HOLD_S['gps_fix'], fill=0.0)
    tf = t[fixed]
    order = np.argsort(tf, kind='stable')
    tf = tf[order]
    if tf.size:
        east, north, _ = _local_enu(config.datum).to_enu(lat[fixed][order],
                                                         lon[fixed][order])
    else:
        east = north = np.zeros(0)
    v_e, v_n, valid_at = gps_velocity(tf, east, north, config.velocity_window_s)
    streams.add('gps_speed', tf, np.hypot(v_e, v_n), hold=HOLD_S['gps_speed'])
    if odom_times is not None and len(odom_times) >= 2 and tf.size:
        ot = np.asarray(odom_times, dtype=np.float64)
        oxy = np.asarray(odom_xy, dtype=np.float64).reshape(-1, 2)
        start = ot[0] if odometry_start is None else odometry_start
        inside = (tf >= start + config.warmup_s) & (tf >= ot[0]) & (tf <= ot[-1])
        for j, (name, pos) in enumerate((('gps_residual_east', east),
                                         ('gps_residual_north', north))):
            residual = pos - np.interp(tf, ot, oxy[:, j])
            streams.add(name, tf[inside], residual[inside], hold=HOLD_S[name])
    return streams, (tf, v_e, v_n, valid_at)


def _quaternion_angles(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(roll, pitch, yaw) [rad] of (n, 4) quaternions x, y, z, w (ZYX convention)."""
    x, y, z, w = q.T
    roll = np.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2.0 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def imu_channels(times, orientation, angular_velocity, linear_acceleration,
                 yaw_window_s: float = 5.0) -> ChannelStreams:
    """``imu_roll``, ``imu_pitch``, ``imu_rate_*``, ``imu_accel_*`` and
    ``imu_yaw_vs_gyro``.

    ``imu_yaw_vs_gyro`` [rad/s]: the change of the IMU's yaw over the past
    ``yaw_window_s`` minus the integral of the z gyro over the same span, per second. The
    two measure the same turn; in normal operation their difference is the small gyro
    bias plus noise averaged over the window, while a drifting heading (magnetic
    disturbance) or a growing gyro bias moves it steadily. Missing until a window of
    history exists (and across gaps longer than half a window).

    Args:
        times: [s] sorted. orientation: quaternions (x, y, z, w) of the IMU in ENU.
        angular_velocity: [rad/s] FLU. linear_acceleration: [m/s^2] FLU specific force.
        yaw_window_s: [s] span of the yaw/gyro comparison.

    Shapes:
        times ``(n,)``, orientation ``(n, 4)``, angular_velocity/linear_acceleration
        ``(n, 3)``.
    """
    t = np.asarray(times, dtype=np.float64)
    q = np.asarray(orientation, dtype=np.float64).reshape(-1, 4)
    rates = np.asarray(angular_velocity, dtype=np.float64).reshape(-1, 3)
    accel = np.asarray(linear_acceleration, dtype=np.float64).reshape(-1, 3)
    roll, pitch, yaw = _quaternion_angles(q)
    streams = ChannelStreams()
    for name, values in (('imu_roll', roll), ('imu_pitch', pitch),
                         *((f'imu_rate_{a}', rates[:, i]) for i, a in enumerate('xyz')),
                         *((f'imu_accel_{a}', accel[:, i]) for i, a in enumerate('xyz'))):
        streams.add(name, t, values, hold=HOLD_S[name])
    streams.add('imu_yaw_vs_gyro', *_yaw_vs_gyro(t, yaw, rates[:, 2], yaw_window_s),
                hold=HOLD_S['imu_yaw_vs_gyro'])
    return streams


def _yaw_vs_gyro(t: np.ndarray, yaw: np.ndarray, gyro_z: np.ndarray, window_s: float,
                 average_s: float = 0.5):
    """(times, values) of ``imu_yaw_vs_gyro`` (see :func:`imu_channels`). Both ends of the
    comparison are means over ``average_s`` (the yaw's white noise would dominate a
    difference of two samples; the integrated gyro is averaged the same way so that
    both see the same lag)."""
    if t.size < 2:
        return np.zeros(0), np.zeros(0)
    unwrapped = np.unwrap(yaw)
    # Trapezoidal integral of the gyro from the first sample; a gap longer than half a
    # window breaks the comparison (the rate during the gap is unknown).
    step = np.diff(t)
    turned = np.concatenate([[0.0], np.cumsum(0.5 * (gyro_z[1:] + gyro_z[:-1]) * step)])
    first = np.searchsorted(t, t - average_s, side='right')      # trailing means

    def trailing_mean(x):
        total = np.concatenate([[0.0], np.cumsum(x)])
        return (total[1:] - total[first]) / (np.arange(1, t.size + 1) - first)

    difference = trailing_mean(unwrapped) - trailing_mean(turned)
    start = np.searchsorted(t, t - window_s, side='left')
    span = t - t[start]
    gap = np.concatenate([[0.0], np.maximum.accumulate(np.where(step > 0.5 * window_s,
                                                                t[1:], 0.0))])
    keep = (span >= 0.8 * window_s) & (t[start] - average_s >= gap - 1e-9) & \
        (t[start] - t[0] >= average_s)
    with np.errstate(invalid='ignore', divide='ignore'):
        value = (difference - difference[start]) / span
    return t[keep], value[keep]


def heading_vs_course(imu_times, orientation, fix_times, v_east, v_north, valid_at,
                      min_speed: float) -> ChannelStreams:
    """``imu_heading_vs_course``: sin(IMU yaw - GPS course over ground) at each fix.

    The IMU yaw is the newest sample at or before the time the GPS velocity is valid at
    (``valid_at``, see :func:`gps_velocity`: comparing with the yaw at the fix would make
    every turn look like a heading error); the value is missing where the
    speed over ground is below ``min_speed`` [m/s] (course undefined) or no IMU sample
    precedes the fix. Sway and current make it non-zero in normal operation; a drifting
    heading makes it move away from its normal spread.

    Shapes:
        imu_times ``(n,)`` sorted, orientation ``(n, 4)``; fix_times, v_east, v_north,
        valid_at ``(m,)``.
    """
    it = np.asarray(imu_times, dtype=np.float64)
    ft = np.asarray(fix_times, dtype=np.float64)
    streams = ChannelStreams()
    if not (it.size and ft.size):
        streams.add('imu_heading_vs_course', np.zeros(0), np.zeros(0),
                    hold=HOLD_S['imu_heading_vs_course'])
        return streams
    _, _, yaw = _quaternion_angles(np.asarray(orientation, dtype=np.float64).reshape(-1, 4))
    newest = np.searchsorted(it, np.asarray(valid_at, dtype=np.float64), side='right') - 1
    speed = np.hypot(v_east, v_north)
    with np.errstate(invalid='ignore'):
        keep = (newest >= 0) & (speed >= min_speed)
    course = np.arctan2(v_north, v_east)
    values = np.sin(yaw[np.clip(newest, 0, None)] - course)
    streams.add('imu_heading_vs_course', ft[keep], values[keep],
                hold=HOLD_S['imu_heading_vs_course'])
    return streams


def odometry_channels(times, twist) -> ChannelStreams:
    """``odom_speed``, ``odom_sway``, ``odom_yaw_rate`` from body twists (u [m/s],
    v [m/s], r [rad/s]).

    Shapes:
        times ``(n,)``, twist ``(n, 3)``.
    """
    t = np.asarray(times, dtype=np.float64)
    twist = np.asarray(twist, dtype=np.float64).reshape(-1, 3)
    streams = ChannelStreams()
    for i, name in enumerate(('odom_speed', 'odom_sway', 'odom_yaw_rate')):
        streams.add(name, t, twist[:, i], hold=HOLD_S[name])
    return streams


def thrust_channels(left_times, left, right_times, right) -> ChannelStreams:
    """``thrust_left`` and ``thrust_right``: the thrust commands [N]."""
    streams = ChannelStreams()
    streams.add('thrust_left', left_times, left, hold=HOLD_S['thrust_left'])
    streams.add('thrust_right', right_times, right, hold=HOLD_S['thrust_right'])
    return streams


def _held_command(times, cmd_times, cmd, timeout_s: float) -> np.ndarray:
    """Newest command at or before each time; 0 when older than ``timeout_s``, NaN
    before the first one."""
    order = np.argsort(cmd_times, kind='stable')
    ct, cv = np.asarray(cmd_times, np.float64)[order], np.asarray(cmd, np.float64)[order]
    newest = np.searchsorted(ct, times, side='right') - 1
    held = np.where(newest >= 0, cv[np.clip(newest, 0, None)], np.nan)
    age = times - ct[np.clip(newest, 0, None)] if ct.size else np.full(times.shape, np.inf)
    return np.where((newest >= 0) & (age > timeout_s), 0.0, held)


def _lagged(times, command, time_constant: float) -> np.ndarray:
    """The thrusters' first-order lag applied to piecewise-constant commands."""
    out = np.empty_like(command)
    state = math.nan
    for k, (t, c) in enumerate(zip(times, command)):
        if math.isnan(state) or math.isnan(c):
            state = c
        else:
            state = c + (state - c) * math.exp(-(t - times[k - 1]) / time_constant)
        out[k] = state
    return out


def _causal_mean(times, values, window_s: float) -> np.ndarray:
    """Mean of the finite values in ``(t - window_s, t]`` at each (sorted) time; NaN
    where there is none."""
    finite = np.isfinite(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    first = np.searchsorted(times, times - window_s, side='right')
    stop = np.arange(1, times.size + 1)
    n = counts[stop] - counts[first]
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(n > 0, (sums[stop] - sums[first]) / n, np.nan)


def _delivered_thrust(times, twist, params: VesselParams, previous: np.ndarray,
                      current_body=None):
    """(left, right) [N] thrust that explains the odometry motion (inverse of the vessel
    model, see the module doc) through water moving at ``current_body`` ((n, 2): surge,
    sway components [m/s]; None: calm water), at the middle of each sample's span back
    to sample ``previous``; NaN at the first sample."""
    dt = times - times[previous]
    with np.errstate(invalid='ignore', divide='ignore'):
        du = np.where(dt > 0, (twist[:, 0] - twist[previous, 0]) / dt, np.nan)
        dr = np.where(dt > 0, (twist[:, 2] - twist[previous, 2]) / dt, np.nan)
    # The differences are the accelerations at the span's middle: the velocities too.
    u, v, r = (0.5 * (twist + twist[previous])).T
    if current_body is not None:
        current_body = 0.5 * (current_body + current_body[previous])
    u_c, v_c = (np.zeros_like(u), np.zeros_like(v)) if current_body is None else current_body.T
    # nu = nu_r + R^T V_c; for a steady current d/dt (R^T V_c) = (r v_c, -r u_c).
    u_r, v_r, du_r = u - u_c, v - v_c, du - r * v_c
    p = params
    damp_u = (p.damping_surge_linear + p.damping_surge_quadratic * np.abs(u_r)) * u_r
    v_lat = v_r + p.lateral_resistance_x * r
    damp_v = (p.damping_sway_linear + p.damping_sway_quadratic * np.abs(v_lat)) * v_lat
    damp_r = ((p.damping_yaw_linear + p.damping_yaw_quadratic * np.abs(r)) * r
              + p.lateral_resistance_x * damp_v)
    surge_force = p.m11 * du_r - p.m22 * v_r * r + damp_u
    yaw_moment = p.m33 * dr + (p.m22 - p.m11) * u_r * v_r + damp_r
    differential = yaw_moment / p.thruster_y          # right - left
    return 0.5 * (surge_force - differential), 0.5 * (surge_force + differential)


def command_settle_s(config: ChannelConfig) -> float:
    """[s] from the first command until the thrust residuals are valid: the thrusters' lag
    (three time constants), the derivative's window and the residual's own window."""
    return (3.0 * config.vessel.thruster_time_constant + config.derivative_window_s
            + config.residual_window_s)


def command_residuals(odom_times, twist, left_times, left, right_times, right,
                      config: ChannelConfig = ChannelConfig(),
                      odometry_start: float | None = None,
                      command_start: float | None = None,
                      current=None, yaw=None) -> ChannelStreams:
    """``thrust_left_residual``, ``thrust_right_residual`` and ``thrust_common_residual``
    [N] at the odometry times (delivered minus commanded thrust, see the module doc); the
    value at a time compares the motion and the commands half a derivative window
    earlier, where the differenced odometry's acceleration is.

    Args:
        odom_times: [s] sorted; twist: body velocities (u, v, r) [m/s, m/s, rad/s].
        left_times, left, right_times, right: thrust commands [N] and their stamps [s].
        config: vessel model, derivative window, command timeout, warm-up.
        odometry_start: [s] first odometry stamp ever (default ``odom_times[0]``); the
            residuals start ``config.warmup_s`` after it.
        command_start: [s] stamp from which both sides have been commanded ever (default:
            the later of the first left and first right command here); the residuals
            start ``command_settle_s(config)`` after it. The first command of a mission
            is a step from rest that the differentiated odometry follows late: a one-step
            spike, as high as the whole command, with nothing wrong.
        current: [m/s] water current (east, north) at each odometry time (the
            :class:`.CurrentObserver`'s estimate) and ``yaw`` [rad] the heading there;
            None: calm water.

    Shapes:
        odom_times ``(n,)``, twist ``(n, 3)``; commands ``(m,)`` each; current ``(n, 2)``,
        yaw ``(n,)``.
    """
    t = np.asarray(odom_times, dtype=np.float64)
    twist = np.asarray(twist, dtype=np.float64).reshape(-1, 3)
    streams = ChannelStreams()
    names = ('thrust_left_residual', 'thrust_right_residual', 'thrust_common_residual')
    if t.size < 2 or not (len(left_times) and len(right_times)):
        for name in names:
            streams.add(name, np.zeros(0), np.zeros(0), hold=HOLD_S[name])
        return streams
    p = config.vessel
    commanded = []
    for cmd_times, cmd in ((left_times, left), (right_times, right)):
        held = _held_command(t, cmd_times, cmd, config.command_timeout_s)
        held = np.clip(held, -p.max_thrust_reverse, p.max_thrust_forward)
        commanded.append(_lagged(t, held, p.thruster_time_constant))
    current_body = None
    if current is not None:
        current = np.asarray(current, dtype=np.float64).reshape(-1, 2)
        yaw = np.asarray(yaw, dtype=np.float64)
        cos, sin = np.cos(yaw), np.sin(yaw)
        current_body = np.stack([cos * current[:, 0] + sin * current[:, 1],
                                 -sin * current[:, 0] + cos * current[:, 1]], axis=1)
    # Accelerations are differences over the derivative's span, so the motion, the
    # current and the commands are all taken at the span's middle.
    previous = np.searchsorted(t, t - config.derivative_window_s, side='left')
    delivered = _delivered_thrust(t, twist, p, previous, current_body)
    middle = 0.5 * (t + t[previous])
    commanded = [np.interp(middle, t, c) for c in commanded]
    # Averaging removes most of the noise of the differentiated odometry.
    left_res, right_res = (_causal_mean(t, d - c, config.residual_window_s)
                           for d, c in zip(delivered, commanded))
    start = t[0] if odometry_start is None else odometry_start
    if command_start is None:
        command_start = max(np.min(left_times), np.min(right_times))
    start = max(start + config.warmup_s, command_start + command_settle_s(config))
    for name, values in zip(names, (left_res, right_res, 0.5 * (left_res + right_res))):
        keep = np.isfinite(values) & (t >= start)
        streams.add(name, t[keep], values[keep], hold=HOLD_S[name])
    return streams


def _merge(target: ChannelStreams, source: ChannelStreams) -> None:
    for name, (times, values) in source.samples.items():
        target.add(name, times, values, hold=source.hold.get(name), fill=source.fill.get(name))


class BoatChannelBuilder:
    """Collects raw samples one at a time and computes all channels on demand.

    The bag reader adds a whole bag (``history_s = inf``); the node adds messages as they
    come and keeps ``config.history_s`` of raw samples. Malformed samples (non-finite
    stamps or values, a fix with status but no position) are dropped and counted in
    :attr:`dropped` (source -> count).
    """

    def __init__(self, config: ChannelConfig = ChannelConfig()):
        self.config = config
        self.dropped: dict[str, int] = {}
        self._raw: dict[str, list[tuple]] = {k: [] for k in (
            'gps', 'imu', 'odometry', 'thrust_left', 'thrust_right', 'depth')}
        self._newest = -math.inf
        self._newest_by_source: dict[str, float] = {}
        # First odometry stamp ever (kept when old samples are forgotten): the warm-up.
        self._odometry_start: float | None = None
        # First command stamp ever per side (likewise): the residuals' settling.
        self._command_start: dict[str, float] = {}
        # Per side: (stamp of the newest command, since when it has been 0; None: it is not).
        self._last_command: dict[str, tuple[float, float | None]] = {}
        self.current_observer = (None if config.current is None
                                 else CurrentObserver(config.vessel, config.current))

    def _accept(self, source: str, stamp: float, *values, allow_nan=False,
                extra: tuple = ()) -> bool:
        """Keep a sample whose ``values`` are finite (or ``allow_nan``), with ``extra``
        values appended unchecked; else count it dropped."""
        numbers = np.asarray(values, dtype=np.float64).ravel()
        ok = math.isfinite(stamp) and (allow_nan or bool(np.isfinite(numbers).all()))
        if not ok:
            self.dropped[source] = self.dropped.get(source, 0) + 1
            return False
        self._raw[source].append((float(stamp), *values, *extra))
        if stamp > self._newest_by_source.get(source, -math.inf):
            self._newest_by_source[source] = float(stamp)
        if stamp > self._newest:
            self._newest = float(stamp)
            self._forget()
        return True

    def _forget(self) -> None:
        if math.isinf(self.config.history_s):
            return
        oldest = self._newest - self.config.history_s
        for source, rows in self._raw.items():
            cut = 0
            while cut < len(rows) and rows[cut][0] < oldest:
                cut += 1
            if cut:
                del rows[:cut]

    @property
    def odometry_start(self) -> float | None:
        """[s] first odometry stamp ever received (None before it): offline series start
        there."""
        return self._odometry_start

    def data_time(self, sources=('imu', 'odometry', 'gps'), stale_s: float = 1.0) -> float:
        """[s] the newest time up to which every live source has delivered its samples:
        the oldest of the ``sources``' newest stamps, leaving out a source more than
        ``stale_s`` behind the freshest (it stopped: GPS loss is data, not a wait);
        -inf before any sample.

        A node that scores at its clock's "now" sees the newest rows before the samples
        for them have arrived (they queue while the node works): held values run out and
        channels look missing - a GPS fix lost, a gap in the odometry. Scoring up to this
        time sees what the bag reader sees."""
        newest = [self._newest_by_source[s] for s in sources if s in self._newest_by_source]
        if not newest:
            return -math.inf
        freshest = max(newest)
        return min(t for t in newest if t >= freshest - stale_s)

    def add_gps(self, stamp: float, latitude: float, longitude: float, status: int) -> bool:
        """A fix [s, deg, deg, NavSatStatus]; NaN position only with status FIX_NONE."""
        no_fix = status == FIX_NONE
        if not no_fix and not (math.isfinite(latitude) and math.isfinite(longitude)):
            self.dropped['gps'] = self.dropped.get('gps', 0) + 1
            return False
        return self._accept('gps', stamp, latitude, longitude, float(status), allow_nan=no_fix)

    def add_imu(self, stamp: float, orientation, angular_velocity, linear_acceleration) -> bool:
        """An IMU sample: quaternion (x, y, z, w), rates [rad/s], accelerations [m/s^2]."""
        q = np.asarray(orientation, dtype=np.float64)
        if q.shape == (4,) and abs(float(np.dot(q, q)) - 1.0) > 0.1:
            self.dropped['imu'] = self.dropped.get('imu', 0) + 1   # not a rotation
            return False
        return self._accept('imu', stamp, *q, *angular_velocity, *linear_acceleration)

    def add_odometry(self, stamp: float, x: float, y: float, u: float, v: float,
                     r: float, yaw: float = math.nan) -> bool:
        """Odometry: map position [m], body twist (u, v [m/s], r [rad/s]) and heading
        [rad] (NaN: unknown, the residuals then assume calm water)."""
        current = (math.nan, math.nan)
        if math.isfinite(stamp) and np.isfinite([x, y, u, v, r]).all():
            current = self._observe_current(stamp, yaw, u, v, r)
        accepted = self._accept('odometry', stamp, x, y, u, v, r,
                                extra=(float(yaw), *current))
        if accepted and (self._odometry_start is None or stamp < self._odometry_start):
            self._odometry_start = float(stamp)
        return accepted

    def _observe_current(self, stamp, yaw, u, v, r) -> tuple[float, float]:
        """The current observer's estimate after this sample (NaN: no observer, no
        heading, or not converged yet)."""
        observer = self.current_observer
        if observer is None or not math.isfinite(yaw):
            return math.nan, math.nan
        start = stamp if self._odometry_start is None else self._odometry_start
        if stamp >= start + observer.config.start_after_s:
            observer.update(stamp, yaw, u, v, r, self._idle_s(stamp))
        if not observer.converged:
            return math.nan, math.nan
        east, north = observer.estimate
        return float(east), float(north)

    def _idle_s(self, stamp: float) -> float:
        """[s] how long both sides have been commanded 0, or nothing (never, or longer
        ago than the command timeout)."""
        idle_since = -math.inf
        for side in ('left', 'right'):
            last, zero_since = self._last_command.get(side, (-math.inf, -math.inf))
            if zero_since is None:          # a non-zero command: until it times out
                zero_since = last + self.config.command_timeout_s
            idle_since = max(idle_since, zero_since)
        return stamp - idle_since

    def add_thrust(self, side: str, stamp: float, value: float) -> bool:
        """A thrust command [N] of ``side`` ('left' or 'right')."""
        if side not in ('left', 'right'):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        accepted = self._accept(f'thrust_{side}', stamp, value)
        if accepted and stamp < self._command_start.get(side, math.inf):
            self._command_start[side] = float(stamp)
        last, zero_since = self._last_command.get(side, (-math.inf, -math.inf))
        if accepted and stamp >= last:
            if value != 0.0:
                zero_since = None
            elif zero_since is None:        # from now, or when the last one timed out
                zero_since = min(stamp, last + self.config.command_timeout_s)
            self._last_command[side] = (float(stamp), zero_since)
        return accepted

    def add_depth(self, stamp: float, depth: float) -> bool:
        """A sonar depth [m] (out of range = non-finite: dropped)."""
        return self._accept('depth', stamp, depth)

    def _current_rows(self, odom: np.ndarray):
        """(current, yaw) of the odometry rows for the residuals (NaN rows: missing
        residuals, the observer had not converged); (None, None) without an observer or
        without headings (calm water)."""
        if self.current_observer is None or not np.isfinite(odom[:, 6]).any():
            return None, None
        return odom[:, 7:9], odom[:, 6]

    def _array(self, source: str, width: int) -> np.ndarray:
        rows = np.asarray(self._raw[source], dtype=np.float64).reshape(-1, width)
        return rows[np.argsort(rows[:, 0], kind='stable')]

    def streams(self) -> ChannelStreams:
        """All channels from the samples held (channels without samples are absent)."""
        gps, imu = self._array('gps', 4), self._array('imu', 11)
        odom = self._array('odometry', 9)
        left, right = self._array('thrust_left', 2), self._array('thrust_right', 2)
        depth = self._array('depth', 2)
        out = ChannelStreams()
        odom_t = odom[:, 0] if len(odom) >= 2 else None
        if len(gps):
            gps_streams, velocity = gps_channels(
                gps[:, 0], gps[:, 1], gps[:, 2], gps[:, 3], odom_t, odom[:, 1:3],
                self.config, self._odometry_start)
            _merge(out, gps_streams)
        if len(imu):
            _merge(out, imu_channels(imu[:, 0], imu[:, 1:5], imu[:, 5:8], imu[:, 8:11],
                                     self.config.yaw_window_s))
            if len(gps):
                _merge(out, heading_vs_course(imu[:, 0], imu[:, 1:5], *velocity,
                                              self.config.min_course_speed))
        if len(depth):
            out.add('sonar_depth', depth[:, 0], depth[:, 1], hold=HOLD_S['sonar_depth'])
        if len(left) or len(right):
            _merge(out, thrust_channels(left[:, 0], left[:, 1], right[:, 0], right[:, 1]))
        if len(odom):
            _merge(out, odometry_channels(odom[:, 0], odom[:, 3:6]))
            if len(left) and len(right):
                _merge(out, command_residuals(odom[:, 0], odom[:, 3:6], left[:, 0],
                                              left[:, 1], right[:, 0], right[:, 1],
                                              self.config, self._odometry_start,
                                              max(self._command_start.values()),
                                              *self._current_rows(odom)))
        return out
