"""Ping1D echosounder driver node: serial/UDP link -> ``sensors/sonar/depth`` (Range).

Thin (DESIGN.md §4): parameters -> :class:`Ping1DConfig` + link, a timer that writes the
core's requests and feeds it the bytes read, readings -> Range stamped with the node clock
at receive time. Rejected frames/readings are counted on ``diagnostics`` under the link
name; a failed link is re-opened every ``reconnect_period`` (ERROR while it is down, WARN
while the device is silent).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from rclpy.node import Node
from sensor_msgs.msg import Range

from asv_autonomy.drivers.ping1d import Ping1D, Ping1DConfig, SerialLink, UdpLink
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import declare_config
from asv_autonomy.ros.spin import run_node

SOURCES = ('serial', 'udp')
TOPIC = 'sensors/sonar/depth'


@dataclass(frozen=True)
class Ping1DNodeConfig:
    """Args:
        source: 'serial' or 'udp'.
        device: serial device (source 'serial').
        baud: [bit/s] serial speed (Ping1D default 115200).
        host: device address (source 'udp', e.g. BlueOS at 192.168.2.2).
        port: device UDP port (BlueOS ping service: 9090).
        frame_id: frame of the Range messages (the transducer).
        field_of_view: [rad] beam width (Ping1D: 30 deg).
        poll_rate: [Hz] link read / request loop rate.
        reconnect_period: [s] wait between attempts to re-open a failed link.
    """

    source: str = 'serial'
    device: str = '/dev/ttyUSB0'
    baud: int = 115200
    host: str = '192.168.2.2'
    port: int = 9090
    frame_id: str = 'sonar_link'
    field_of_view: float = 0.5236
    poll_rate: float = 50.0
    reconnect_period: float = 1.0

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f'source must be one of {SOURCES}, got {self.source!r}')
        if self.baud <= 0:
            raise ValueError(f'baud must be > 0, got {self.baud}')
        if not 0 < self.port < 65536:
            raise ValueError(f'port must be in [1, 65535], got {self.port}')
        for name in ('field_of_view', 'poll_rate', 'reconnect_period'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')


class Ping1DNode(Node):
    def __init__(self):
        super().__init__('ping1d_driver')
        self.config = declare_config(self, Ping1DNodeConfig)
        self.sonar = Ping1D(declare_config(self, Ping1DConfig, 'ping1d'))
        cfg = self.config
        if cfg.source == 'serial':
            self.link, self.link_name = SerialLink(cfg.device, cfg.baud), cfg.device
        else:
            self.link, self.link_name = UdpLink(cfg.host, cfg.port), f'udp:{cfg.host}:{cfg.port}'
        self.health = InputHealth(self)
        self.depth_pub = self.create_publisher(Range, TOPIC, qos.SENSOR_SOURCE)
        self.link_open = False
        self.reconnects = 0
        self._next_open = -math.inf
        self.create_timer(1.0 / cfg.poll_rate, self.step)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def step(self) -> None:
        """One loop turn: (re)open the link, read + publish, write what is due."""
        now = self.now()
        if not self.link_open and not self._open(now):
            return
        try:
            data = self.link.read()
            now = self.now()  # receive time
            result = self.sonar.feed(data, now) if data else None
            request = self.sonar.poll(now)
            if request:
                self.link.write(request)
        except OSError as err:
            self._link_failed(now, err)
            return
        if result is None:
            return
        for reason, count in result.rejected.items():
            for _ in range(count):
                self.health.drop(self.link_name, reason, f'Ping1D {reason}')
        for reading in result.readings:
            self.depth_pub.publish(cv.to_range(
                reading, self.config.frame_id, self.sonar.config.min_range,
                self.sonar.config.max_range, field_of_view=self.config.field_of_view))

    def _open(self, now: float) -> bool:
        if now < self._next_open:
            return False
        try:
            self.link.open()
        except (OSError, ValueError) as err:  # pyserial raises SerialException (OSError)
            self._link_failed(now, err)
            return False
        self.link_open = True
        self.sonar.restart()
        self.get_logger().info(f'Ping1D link {self.link_name} open')
        return True

    def _link_failed(self, now: float, err: Exception) -> None:
        if self.link_open:
            self.reconnects += 1
            self.get_logger().warning(f'Ping1D link {self.link_name} failed: {err}')
        self.link_open = False
        self.link.close()
        self._next_open = now + self.config.reconnect_period

    def status_values(self) -> dict:
        return {'link': self.link_name, 'link_open': self.link_open,
                'reconnects': self.reconnects, **self.sonar.status(self.now())}

    def condition(self) -> tuple[int, str]:
        if not self.link_open:
            return cv.ERROR, f'link {self.link_name} down'
        if self.sonar.silent(self.now()):
            return cv.WARN, 'Ping1D silent'
        return cv.OK, ''

    def destroy_node(self):
        self.link.close()
        return super().destroy_node()


def main(args=None):
    return run_node(Ping1DNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
