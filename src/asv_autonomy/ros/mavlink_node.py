"""MAVLink autopilot bridge node: autopilot IMU/GPS -> ``sensors/imu/data`` /
``sensors/gps/fix``; ``thrusters/{left,right}/thrust`` + ``safety/estop`` -> RC override.

Thin (DESIGN.md §4): parameters -> :class:`MavlinkConfig`, a timer spins the bridge
(read, heartbeat watchdog, our heartbeat, guarded RC override), records -> messages. Thrust
commands go through the bridge's ThrustGuard (timeout, e-stop, saturation). Service ``arm``
(std_srvs/SetBool) arms/disarms (refused while the e-stop is engaged). Diagnostics: dropped
traffic per reason, link state; ERROR once the autopilot's heartbeat is lost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rclpy.node import Node
from sensor_msgs.msg import Imu, NavSatFix
from std_msgs.msg import Bool, Float64
from std_srvs.srv import SetBool

from asv_autonomy.drivers.mavlink import MavlinkBridge, MavlinkConfig
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import declare_config
from asv_autonomy.ros.spin import run_node

THRUSTERS = ('left', 'right')  # thruster index 0, 1 of the bridge
_REOPEN_PERIOD = 1.0  # [s] between attempts to open the link


@dataclass(frozen=True)
class MavlinkNodeConfig:
    """Args:
        imu_frame: frame of the published Imu (the autopilot's IMU).
        gps_frame: frame of the published NavSatFix (the GNSS antenna).
        spin_rate: [Hz] bridge loop rate (read, watchdog, RC override scheduling).
    """

    imu_frame: str = 'imu_link'
    gps_frame: str = 'gps_link'
    spin_rate: float = 100.0

    def __post_init__(self):
        if not (math.isfinite(self.spin_rate) and self.spin_rate > 0.0):
            raise ValueError(f'spin_rate must be > 0 Hz, got {self.spin_rate}')


class MavlinkNode(Node):
    def __init__(self):
        super().__init__('mavlink_bridge')
        self.config = declare_config(self, MavlinkNodeConfig)
        self.bridge = MavlinkBridge(declare_config(self, MavlinkConfig))
        self.link = self.bridge.config.connection
        self.health = InputHealth(self)
        self.imu_pub = self.create_publisher(Imu, 'sensors/imu/data', qos.SENSOR_SOURCE)
        self.fix_pub = self.create_publisher(NavSatFix, 'sensors/gps/fix', qos.SENSOR_SOURCE)
        for index, side in enumerate(THRUSTERS[:self.bridge.config.guard.thrusters]):
            topic = f'thrusters/{side}/thrust'
            self.create_subscription(Float64, topic, self.health.guard(
                topic, cv.from_float64,
                lambda value, index=index: self.bridge.command(index, value, self.now())),
                qos.COMMAND)
        self.create_subscription(Bool, 'safety/estop', self.health.guard(
            'safety/estop', lambda m: bool(m.data),
            lambda engaged: self.bridge.set_estop(engaged, self.now())), qos.LATCHED)
        self.create_service(SetBool, 'arm', self.on_arm)
        self._next_open = -math.inf
        self.create_timer(1.0 / self.config.spin_rate, self.step)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def step(self) -> None:
        if not self.bridge.is_open and not self._open():
            return
        result = self.bridge.spin_once(self.now())
        for reason, count in result.rejected.items():
            for _ in range(count):
                self.health.drop(self.link, reason, f'MAVLink {reason}')
        for record in result.records:
            if record.kind == 'imu':
                self.imu_pub.publish(cv.to_imu(record.measurement, self.config.imu_frame))
            else:
                self.fix_pub.publish(cv.to_navsatfix(record.measurement,
                                                     self.config.gps_frame))

    def _open(self) -> bool:
        """Open the link; a missing serial port or a busy UDP port is retried every 1 s."""
        now = self.now()
        if now < self._next_open:
            return False
        try:
            self.bridge.open()
        except Exception as err:  # noqa: BLE001 - pymavlink raises many kinds here
            self._next_open = now + _REOPEN_PERIOD
            self.health.drop(self.link, 'link_error', f'cannot open {self.link}: {err}')
            return False
        self.get_logger().info(f'MAVLink link {self.link} open')
        return True

    def on_arm(self, request, response):
        response.success, response.message = self.bridge.arm(bool(request.data))
        return response

    def status_values(self) -> dict:
        return {'link': self.link, **self.bridge.status(self.now())}

    def condition(self) -> tuple[int, str]:
        if self.bridge.connected:
            if self.bridge.guard.estop:
                return cv.WARN, 'e-stop engaged: thrust neutral'
            return cv.OK, ''
        if not self.bridge.is_open:
            return cv.ERROR, f'cannot open {self.link}'
        if self.bridge.counts['link_lost']:
            return cv.ERROR, 'autopilot heartbeat lost: thrust neutral, not overriding'
        return cv.WARN, 'waiting for an autopilot heartbeat'

    def destroy_node(self):
        self.bridge.close()
        return super().destroy_node()


def main(args=None):
    return run_node(MavlinkNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
