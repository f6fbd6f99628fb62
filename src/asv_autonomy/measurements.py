"""Plain measurement records shared by cores, the simulator and the ROS conversions.

Cores exchange these instead of ROS messages (DESIGN.md §4 rule 1). Times are seconds
[s] on the ROS clock in use (sim time or wall time); all vectors are numpy arrays.
Frames follow REP-103/105: ``map`` is ENU, body frames are FLU, yaw is measured from east,
counter-clockwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# sensor_msgs/NavSatStatus.status values, kept as plain ints so cores stay message-free.
FIX_NONE = -1
FIX = 0
FIX_SBAS = 1
FIX_GBAS = 2


@dataclass(frozen=True)
class GnssFix:
    """One GNSS fix.

    Args:
        stamp: [s] time of validity.
        latitude, longitude: [deg] WGS-84 (NaN allowed only when ``status == FIX_NONE``).
        altitude: [m] ellipsoidal.
        status: one of ``FIX_NONE``, ``FIX``, ``FIX_SBAS``, ``FIX_GBAS``.
        position_covariance: [m^2] (3, 3) ENU covariance; NaN-filled when unknown.
    """

    stamp: float
    latitude: float
    longitude: float
    altitude: float = 0.0
    status: int = FIX
    position_covariance: np.ndarray = field(default_factory=lambda: np.full((3, 3), np.nan))


@dataclass(frozen=True)
class ImuSample:
    """One IMU sample (orientation already fused by the IMU, as on most marine AHRS).

    Args:
        stamp: [s].
        orientation: (4,) quaternion x, y, z, w of ``imu_link`` in ENU.
        angular_velocity: (3,) [rad/s] in ``imu_link`` (FLU).
        linear_acceleration: (3,) [m/s^2] specific force in ``imu_link`` (includes +g on z).
        orientation_variance, angular_velocity_variance, linear_acceleration_variance:
            (3,) diagonal variances [rad^2], [rad^2/s^2], [m^2/s^4].
    """

    stamp: float
    orientation: np.ndarray
    angular_velocity: np.ndarray
    linear_acceleration: np.ndarray
    orientation_variance: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    angular_velocity_variance: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    linear_acceleration_variance: np.ndarray = field(
        default_factory=lambda: np.full(3, np.nan))


@dataclass(frozen=True)
class ScalarReading:
    """A stamped scalar such as sonar depth [m] or water temperature [degC].

    Args:
        stamp: [s].
        value: the reading in the unit of its topic.
        variance: [unit^2], NaN when unknown.
    """

    stamp: float
    value: float
    variance: float = float('nan')


@dataclass(frozen=True)
class PlanarOdometry:
    """Planar vessel state in ``map`` (ENU) with body-frame (FLU) velocities.

    Args:
        stamp: [s].
        x, y: [m] position east, north.
        yaw: [rad] heading from east, counter-clockwise.
        u, v: [m/s] surge (forward), sway (left) velocity over ground, in the body frame.
        r: [rad/s] yaw rate.
        covariance: (6, 6) covariance of (x, y, yaw, u, v, r).
    """

    stamp: float
    x: float
    y: float
    yaw: float
    u: float = 0.0
    v: float = 0.0
    r: float = 0.0
    covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))

    @property
    def speed(self) -> float:
        """[m/s] speed over ground."""
        return float(np.hypot(self.u, self.v))


def yaw_to_quaternion(yaw: float) -> np.ndarray:
    """(4,) quaternion x, y, z, w of a pure rotation by ``yaw`` [rad] about z."""
    return np.array([0.0, 0.0, np.sin(yaw / 2.0), np.cos(yaw / 2.0)])


def quaternion_to_yaw(q) -> float:
    """Yaw [rad] of quaternion (x, y, z, w), ZYX convention."""
    x, y, z, w = q
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def wrap_angle(angle):
    """Wrap [rad] to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


class InvalidInput(ValueError):
    """An input a core refuses (NaN, out-of-order stamp, out of range...).

    ``reason`` is a short machine-friendly key (``'nan'``, ``'out_of_order'``, ``'stale'``,
    ``'out_of_range'``, ...) used to count drops per reason on ``diagnostics``.
    """

    def __init__(self, reason: str, detail: str = ''):
        super().__init__(f'{reason}: {detail}' if detail else reason)
        self.reason = reason
