"""Localization node: GPS + IMU EKF -> ``odometry/filtered`` in ``map`` (DESIGN.md §1)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, NavSatFix

from asv_autonomy.localization import LocalizationConfig, Localizer
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import declare_config
from asv_autonomy.ros.spin import run_node

# A clock that goes back by more than this [s] is a restart (bag loop, new simulation).
_RESTART_JUMP_S = 1.0


@dataclass(frozen=True)
class LocalizationNodeConfig:
    """Args:
        map_frame: frame of the published pose (local ENU about the datum).
        base_frame: child frame of the published odometry.
        publish_rate: [Hz] of ``odometry/filtered`` (at most the IMU rate).
    """

    map_frame: str = 'map'
    base_frame: str = 'base_link'
    publish_rate: float = 20.0

    def __post_init__(self):
        if not (self.publish_rate > 0.0 and math.isfinite(self.publish_rate)):
            raise ValueError(f'publish_rate must be > 0 Hz, got {self.publish_rate}')


class LocalizationNode(Node):
    def __init__(self):
        super().__init__('localization')
        self.config = declare_config(self, LocalizationNodeConfig)
        self.localizer = Localizer(declare_config(self, LocalizationConfig))
        self.health = InputHealth(self)
        self.odometry_pub = self.create_publisher(Odometry, 'odometry/filtered', 10)
        self._last_publish = -math.inf
        self._last_stamp = -math.inf
        self.create_subscription(
            Imu, 'sensors/imu/data',
            self.health.guard('sensors/imu/data', cv.from_imu, self.on_imu), qos.SENSOR)
        self.create_subscription(
            NavSatFix, 'sensors/gps/fix',
            self.health.guard('sensors/gps/fix', cv.from_navsatfix, self.on_fix), qos.SENSOR)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)

    def _restart_if_time_went_back(self, stamp: float) -> None:
        if stamp < self._last_stamp - _RESTART_JUMP_S:
            self.get_logger().warning('time went back: restarting the filter')
            self.localizer.reset()
            self._last_publish = -math.inf
        self._last_stamp = stamp

    def on_imu(self, sample) -> None:
        self._restart_if_time_went_back(sample.stamp)
        self.localizer.imu(sample)
        self._publish_at(sample.stamp)

    def on_fix(self, fix) -> None:
        self._restart_if_time_went_back(fix.stamp)
        self.localizer.gnss(fix)
        # Without IMU (GNSS-only boats, replayed NMEA logs) the fixes pace the output.
        if self.localizer.status().imu_stale:
            self._publish_at(fix.stamp)

    def _publish_at(self, stamp: float) -> None:
        if stamp - self._last_publish >= 1.0 / self.config.publish_rate:
            estimate = self.localizer.estimate()
            if estimate is not None:
                self._last_publish = stamp
                self.odometry_pub.publish(cv.to_odometry(
                    estimate, self.config.map_frame, self.config.base_frame))

    def status_values(self) -> dict:
        status = asdict(self.localizer.status())
        bias = status.pop('accel_bias')
        status['accel_bias_x'], status['accel_bias_y'] = bias
        return status

    def condition(self) -> tuple[int, str]:
        status = self.localizer.status()
        if not status.initialised:
            return cv.WARN, ('waiting for a GNSS fix and an IMU heading (without IMU: for '
                             'the boat to move)')
        if status.dead_reckoning:
            return cv.WARN, 'dead reckoning: no GNSS fix'
        if status.imu_stale:
            return cv.WARN, 'IMU silent' + (': GNSS only' if status.gnss_only else '')
        return cv.OK, ''


def main(args=None):
    return run_node(LocalizationNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
