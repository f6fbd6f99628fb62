"""Gazebo sonar node: ground-truth pose from Gazebo -> ``sensors/sonar/depth`` (Range).

Gazebo has no echosounder, so this node plays one (``drivers/sonar_grid.py``): it reads the
boat's pose bridged from Gazebo's odometry publisher (``sim/ground_truth/odometry``, the
Gazebo world's ENU frame = ``map``) and, at the sonar rate of that pose's clock, publishes
the depth below the transducer over the simulator's bathymetry. A source, like the
simulator node, so it may read ground truth; no autonomy node does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Range

from asv_autonomy.drivers.sonar_grid import SonarGrid, SonarGridConfig
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import declare_config
from asv_autonomy.ros.spin import run_node

POSE_TOPIC = 'sim/ground_truth/odometry'
DEPTH_TOPIC = 'sensors/sonar/depth'


@dataclass(frozen=True)
class GzSonarNodeConfig:
    """Args:
        map_frame: frame the ground-truth pose must be in (others are dropped).
        sonar_frame: frame id of the published Range.
        field_of_view: [rad] beam width written into the Range.
    """

    map_frame: str = 'map'
    sonar_frame: str = 'sonar_link'
    field_of_view: float = 0.3

    def __post_init__(self):
        if not (0.0 < self.field_of_view < math.pi):
            raise ValueError(f'field_of_view must be in (0, pi) rad, got {self.field_of_view}')


class GzSonarNode(Node):
    def __init__(self):
        super().__init__('gz_sonar')
        self.config = declare_config(self, GzSonarNodeConfig)
        self.sonar = SonarGrid(declare_config(self, SonarGridConfig))
        self.health = InputHealth(self)
        self.depth_pub = self.create_publisher(Range, DEPTH_TOPIC, qos.SENSOR_SOURCE)
        self._period = 1.0 / self.sonar.config.sonar.rate_hz
        self._last_reading = -math.inf
        self.published = 0
        self.create_subscription(
            Odometry, POSE_TOPIC,
            self.health.guard(POSE_TOPIC, self.read_pose, self.on_pose), qos.SENSOR)
        HealthReporter(self, self.health, extra=lambda: {'published': self.published},
                       condition=self.condition)

    def read_pose(self, msg: Odometry):
        return cv.from_odometry(msg, frame_id=self.config.map_frame)

    def on_pose(self, pose) -> None:
        if pose.stamp < self._last_reading - 1.0:  # clock restarted (new simulation)
            self._last_reading = -math.inf
        # A pose stream at a multiple of the sonar rate gives one reading per period, even
        # with stamps rounded to the nanosecond.
        if pose.stamp - self._last_reading < self._period * (1.0 - 1e-3):
            return
        reading = self.sonar.measure(pose.stamp, pose.x, pose.y)
        self._last_reading = pose.stamp
        sonar = self.sonar.config.sonar
        self.depth_pub.publish(cv.to_range(reading, self.config.sonar_frame, sonar.min_range,
                                           sonar.max_range,
                                           field_of_view=self.config.field_of_view))
        self.published += 1

    def condition(self) -> tuple[int, str]:
        if self.published == 0:
            return cv.WARN, f'no reading yet: waiting for {POSE_TOPIC} over the lake'
        return cv.OK, ''


def main(args=None):
    return run_node(GzSonarNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
