"""Baseline controller node: lawnmower survey / goto with LOS guidance and PID control.

The honest baseline that the planner must beat (``planning/baseline.py``). Publishes
``thrusters/{left,right}/thrust`` at the control rate, ``plan/path`` (latched) and
``plan/goal``; zero thrust while ``safety/estop`` is true or odometry is missing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path
from rclpy.node import Node
from std_msgs.msg import Bool, Float64

from asv_autonomy.planning.baseline import BaselineConfig, BaselineController
from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import declare_config
from asv_autonomy.ros.spin import run_node


@dataclass(frozen=True)
class ControllerNodeConfig:
    """Args:
        map_frame: frame of odometry, goals and the published plan.
        control_rate: [Hz] thrust command rate (on the node clock).
        odometry_timeout: [s] older odometry -> zero thrust (the boat stops, not drifts
            on a stale estimate).
    """

    map_frame: str = 'map'
    control_rate: float = 10.0
    odometry_timeout: float = 1.0

    def __post_init__(self):
        for name in ('control_rate', 'odometry_timeout'):
            value = getattr(self, name)
            if not (value > 0.0 and math.isfinite(value)):
                raise ValueError(f'{name} must be > 0, got {value}')


class BaselineControllerNode(Node):
    def __init__(self):
        super().__init__('controller')
        self.config = declare_config(self, ControllerNodeConfig)
        self.controller = BaselineController(declare_config(self, BaselineConfig),
                                             declare_config(self, VesselParams, 'vessel'))
        self.health = InputHealth(self)
        self.odometry = None
        self.estop = False
        self.last_command = None
        frame = self.config.map_frame
        self.left_pub = self.create_publisher(Float64, 'thrusters/left/thrust', qos.COMMAND)
        self.right_pub = self.create_publisher(Float64, 'thrusters/right/thrust', qos.COMMAND)
        self.path_pub = self.create_publisher(Path, 'plan/path', qos.LATCHED)
        self.goal_pub = self.create_publisher(PoseStamped, 'plan/goal', qos.COMMAND)
        self.create_subscription(Odometry, 'odometry/filtered', self.health.guard(
            'odometry/filtered', lambda m: cv.from_odometry(m, frame_id=frame),
            self.on_odometry), qos.SENSOR)
        self.create_subscription(PoseStamped, 'goal_pose', self.health.guard(
            'goal_pose', lambda m: cv.from_pose_stamped(m, frame_id=frame), self.on_goal),
            qos.COMMAND)
        self.create_subscription(Bool, 'safety/estop', self.health.guard(
            'safety/estop', lambda m: bool(m.data), self.on_estop), qos.LATCHED)
        self.create_timer(1.0 / self.config.control_rate, self.control)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)
        self.publish_path()

    def on_odometry(self, odometry) -> None:
        self.odometry = odometry

    def on_goal(self, pose) -> None:
        self.controller.set_goal(pose[0], pose[1])
        self.publish_path()

    def on_estop(self, engaged: bool) -> None:
        if engaged != self.estop:
            self.get_logger().warning(f'e-stop {"ENGAGED" if engaged else "released"}')
        self.estop = engaged

    def publish_path(self) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        self.path_pub.publish(cv.to_path(self.controller.path, now, self.config.map_frame))

    def control(self) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        fresh = (self.odometry is not None
                 and now - self.odometry.stamp <= self.config.odometry_timeout)
        command = self.controller.plan(self.odometry) if fresh else None
        self.last_command = command
        run = command is not None and not self.estop
        self.left_pub.publish(cv.to_float64(command.thrust_left if run else 0.0))
        self.right_pub.publish(cv.to_float64(command.thrust_right if run else 0.0))
        if command is not None:
            self.goal_pub.publish(cv.to_pose_stamped(*command.target, 0.0, now,
                                                     self.config.map_frame))

    def status_values(self) -> dict:
        command = self.last_command
        if command is None:
            return {'mode': 'idle'}
        return {'mode': command.mode, 'waypoint_index': command.waypoint_index,
                'waypoints': len(self.controller.path), 'done': command.done,
                'cross_track_error': round(command.cross_track_error, 3),
                'estop': self.estop}

    def condition(self) -> tuple[int, str]:
        if self.estop:
            return cv.WARN, 'e-stop engaged: thrust zero'
        if self.last_command is None:
            return cv.WARN, 'no fresh odometry: thrust zero'
        return cv.OK, ''


def main(args=None):
    return run_node(BaselineControllerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
