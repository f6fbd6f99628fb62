"""Thrust guard node: the DESIGN.md §5 thrust invariants in front of an actuator that
holds its last command (Gazebo's thruster plugin, VRX's WAM-V).

``thrusters/{left,right}/thrust`` + ``safety/estop`` in; at ``rate`` the guarded thrust
(zero after ``guard.timeout`` without a command, zero while the e-stop is engaged, saturated)
out on ``output_topics``, which the bridge forwards to the simulator. Thin (DESIGN.md §4):
the logic is :class:`asv_autonomy.drivers.thrust_guard.ThrustGuard`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rclpy.node import Node
from std_msgs.msg import Bool, Float64

from asv_autonomy.drivers.thrust_guard import ThrustGuard, ThrustGuardConfig
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import ConfigError, declare_config
from asv_autonomy.ros.spin import run_node

INPUTS = ('thrusters/left/thrust', 'thrusters/right/thrust')


@dataclass(frozen=True)
class ThrustGuardNodeConfig:
    """Args:
        output_topics: guarded thrust [N] of the left and right thruster.
        rate: [Hz] of the guarded output (also while no command arrives: it is then 0).
    """

    output_topics: tuple[str, ...] = ('actuators/left/thrust', 'actuators/right/thrust')
    rate: float = 20.0

    def __post_init__(self):
        if len(self.output_topics) != len(INPUTS) or not all(self.output_topics):
            raise ValueError(f'output_topics must name {len(INPUTS)} topics (left, right), '
                             f'got {self.output_topics}')
        if not (math.isfinite(self.rate) and self.rate > 0.0):
            raise ValueError(f'rate must be > 0 Hz, got {self.rate}')


class ThrustGuardNode(Node):
    def __init__(self):
        super().__init__('thrust_guard')
        self.config = declare_config(self, ThrustGuardNodeConfig)
        guard_config = declare_config(self, ThrustGuardConfig, 'guard')
        if guard_config.thrusters != len(INPUTS):
            raise ConfigError('guard.thrusters', f'must be {len(INPUTS)} (left, right)')
        self.guard = ThrustGuard(guard_config)
        self.health = InputHealth(self)
        self.last = self.guard.output(self._now())
        self.outputs = [self.create_publisher(Float64, topic, qos.COMMAND)
                        for topic in self.config.output_topics]
        for index, topic in enumerate(INPUTS):
            self.create_subscription(Float64, topic, self.health.guard(
                topic, cv.from_float64,
                lambda thrust, index=index: self.guard.command(index, thrust, self._now())),
                qos.COMMAND)
        self.create_subscription(Bool, 'safety/estop', self.health.guard(
            'safety/estop', lambda m: bool(m.data), self.guard.set_estop), qos.LATCHED)
        self.create_timer(1.0 / self.config.rate, self.publish)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish(self) -> None:
        self.last = self.guard.output(self._now())
        for publisher, thrust in zip(self.outputs, self.last.thrust):
            publisher.publish(cv.to_float64(float(thrust)))

    def status_values(self) -> dict:
        return {'estop': self.last.estop, 'left_thrust': float(self.last.thrust[0]),
                'right_thrust': float(self.last.thrust[1]),
                'left_stale': bool(self.last.stale[0]), 'right_stale': bool(self.last.stale[1])}

    def condition(self) -> tuple[int, str]:
        if self.last.estop:
            return cv.WARN, 'e-stop engaged: thrust held at zero'
        if self.last.stale.any():
            return cv.WARN, 'no recent thrust command: zero thrust'
        return cv.OK, ''


def main(args=None):
    return run_node(ThrustGuardNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
