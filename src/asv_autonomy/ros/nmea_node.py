"""NMEA 0183 driver node ``nmea_driver``: serial/UDP/TCP -> GPS fix, sonar depth, water
temperature (DESIGN.md §2 topics).

Thin: bytes from `drivers.transport` (reconnecting with backoff) -> `drivers.nmea.NmeaParser`
-> conversions -> publish, stamped with the node clock when the bytes arrived. No-fix
periods are published as NavSatFix with status NO_FIX and NaN position (the localizer
treats them as no fix). Rejected lines are counted on ``diagnostics`` under
``dropped/nmea/<reason>``, all parser counts under ``nmea/<key>``; the status is ERROR while
the port is disconnected.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from rclpy.node import Node
from sensor_msgs.msg import NavSatFix, Range, Temperature

from asv_autonomy.drivers.nmea import REJECT_REASONS, NmeaConfig, NmeaParser, NmeaRecord
from asv_autonomy.drivers.transport import (BackoffConfig, Reconnecting, SerialSource,
                                            TcpSource, UdpSource)
from asv_autonomy.measurements import FIX_NONE
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import declare_config
from asv_autonomy.ros.spin import run_node

SOURCES = ('serial', 'udp', 'tcp')
# Name of the input in the health counters (dropped/nmea/<reason>).
INPUT = 'nmea'


@dataclass(frozen=True)
class NmeaNodeConfig:
    """Args:
        source: 'serial' (device, baud), 'udp' (listen on host:port) or 'tcp' (connect to
            the server host:port).
        device: serial device path (a udev symlink such as /dev/gps survives re-plugging).
        baud: [bit/s] serial speed (4800 standard NMEA 0183, 38400 NMEA HS).
        host: UDP: local address to bind; TCP: server address.
        port: UDP: local port to listen on; TCP: server port (10110 is the NMEA port).
        gps_frame: frame_id of ``sensors/gps/fix``.
        sonar_frame: frame_id of ``sensors/sonar/depth``.
        temperature_frame: frame_id of ``sensors/water/temperature`` (the thermistor is
            usually in the transducer).
        min_range: [m] sounder's shallowest depth, written into each Range message.
        max_range: [m] sounder's deepest depth, written into each Range message.
        field_of_view: [rad] sounder beam width, written into each Range message.
        read_timeout: [s] longest wait of one read; a port quiet this long also releases
            a fix held back for de-duplication (see NmeaParser.flush).
        use_read_thread: read in a dedicated thread (lowest latency); False polls the port
            from a timer every ``read_timeout`` on the executor.
        backoff_initial: [s] wait before re-opening a lost port (doubles per failure).
        backoff_max: [s] longest wait between re-open attempts.
        stale_timeout: [s] connected but no byte for this long -> WARN on diagnostics.
        diagnostics_period: [s] period of the ``diagnostics`` status.
    """

    source: str = 'serial'
    device: str = '/dev/ttyUSB0'
    baud: int = 4800
    host: str = '0.0.0.0'
    port: int = 10110
    gps_frame: str = 'gps_link'
    sonar_frame: str = 'sonar_link'
    temperature_frame: str = 'sonar_link'
    min_range: float = 0.3
    max_range: float = 100.0
    field_of_view: float = 0.35
    read_timeout: float = 0.1
    use_read_thread: bool = True
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    stale_timeout: float = 3.0
    diagnostics_period: float = 1.0

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f'source must be one of {SOURCES}, got {self.source!r}')
        if self.source == 'serial' and not self.device:
            raise ValueError('device must be set for source serial')
        if self.baud <= 0:
            raise ValueError(f'baud must be > 0, got {self.baud}')
        if not 0 <= self.port <= 65535:
            raise ValueError(f'port must be in [0, 65535], got {self.port}')
        if not (0.0 <= self.min_range < self.max_range and math.isfinite(self.max_range)):
            raise ValueError(f'need 0 <= min_range < max_range, got {self.min_range}, '
                             f'{self.max_range}')
        for name in ('field_of_view', 'read_timeout', 'stale_timeout', 'diagnostics_period'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        BackoffConfig(self.backoff_initial, self.backoff_max)  # validates both

    def make_source(self):
        """The configured byte source (not opened)."""
        if self.source == 'serial':
            return SerialSource(self.device, self.baud)
        if self.source == 'udp':
            return UdpSource(self.host, self.port)
        return TcpSource(self.host, self.port)


class NmeaNode(Node):
    def __init__(self):
        super().__init__('nmea_driver')
        self.config = declare_config(self, NmeaNodeConfig)
        self.parser = NmeaParser(declare_config(self, NmeaConfig))
        self.link = Reconnecting(self.config.make_source(), self.config.backoff_initial,
                                 self.config.backoff_max)
        self.health = InputHealth(self)
        # The read thread only increments existing keys, so that the reporter can iterate
        # the counter concurrently (a new key would change the dict's size under it).
        for reason in REJECT_REASONS + ('internal_error',):
            self.health.dropped[INPUT, reason] = 0
        self._lock = threading.Lock()  # parser + counters: read thread vs diagnostics
        self._rejected_before = {reason: 0 for reason in REJECT_REASONS}
        self._published = {'sensors/gps/fix': 0, 'sensors/sonar/depth': 0,
                           'sensors/water/temperature': 0}
        self._last_data = time.monotonic()
        self._last_fix_status: int | None = None
        self.fix_pub = self.create_publisher(NavSatFix, 'sensors/gps/fix', qos.SENSOR_SOURCE)
        self.depth_pub = self.create_publisher(Range, 'sensors/sonar/depth', qos.SENSOR_SOURCE)
        self.temperature_pub = self.create_publisher(
            Temperature, 'sensors/water/temperature', qos.SENSOR_SOURCE)
        HealthReporter(self, self.health, period_s=self.config.diagnostics_period,
                       extra=self.status_values, condition=self.condition)
        self._stop = threading.Event()
        self._thread = None
        if self.config.use_read_thread:
            self._thread = threading.Thread(target=self._read_loop, name='nmea_read',
                                            daemon=True)
            self._thread.start()
        else:
            self.create_timer(self.config.read_timeout, lambda: self.poll(0.0))
        self.get_logger().info(f'reading NMEA 0183 from {self.link.source!r}')

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll(self.config.read_timeout)
            except Exception as err:  # noqa: BLE001 - keep reading whatever happens
                with self._lock:
                    self.health.drop(INPUT, 'internal_error', f'{type(err).__name__}: {err}')
                time.sleep(self.config.read_timeout)

    def poll(self, timeout: float) -> None:
        """Read once (up to ``timeout`` [s]), parse, publish."""
        data = self.link.read(timeout)
        stamp = self.get_clock().now().nanoseconds * 1e-9
        with self._lock:
            if data:
                self._last_data = time.monotonic()
                records = self.parser.feed(data, stamp)
            else:
                records = self.parser.flush()  # quiet port: the epoch's burst is over
            self._count_rejections()
        for record in records:
            self.publish(record)

    def publish(self, record: NmeaRecord) -> None:
        config = self.config
        if record.kind == 'fix':
            self.fix_pub.publish(cv.to_navsatfix(record.measurement, config.gps_frame))
            self._last_fix_status = record.measurement.status
            topic = 'sensors/gps/fix'
        elif record.kind == 'depth':
            self.depth_pub.publish(cv.to_range(
                record.measurement, config.sonar_frame, config.min_range, config.max_range,
                field_of_view=config.field_of_view))
            topic = 'sensors/sonar/depth'
        else:
            self.temperature_pub.publish(
                cv.to_temperature(record.measurement, config.temperature_frame))
            topic = 'sensors/water/temperature'
        self._published[topic] += 1

    def _count_rejections(self) -> None:
        """Rejected lines -> health drops (unsupported sentences are not drops)."""
        for reason in REJECT_REASONS:
            new = self.parser.counts[reason] - self._rejected_before[reason]
            for _ in range(new):
                self.health.drop(INPUT, reason, self.parser.last_error)
            self._rejected_before[reason] += new

    def status_values(self) -> dict:
        with self._lock:
            values = {f'nmea/{key}': n for key, n in sorted(self.parser.counts.items())}
        values.update({f'published/{topic}': n for topic, n in self._published.items()})
        values.update(self.link.status())
        values['source'] = repr(self.link.source)
        return values

    def condition(self) -> tuple[int, str]:
        if not self.link.connected:
            error = self.link.status()['last_error'] or 'not opened yet'
            return cv.ERROR, f'disconnected from {self.link.source!r}: {error}'
        silent = time.monotonic() - self._last_data
        if silent > self.config.stale_timeout:
            return cv.WARN, f'no data from {self.link.source!r} for {silent:.1f} s'
        if self._last_fix_status == FIX_NONE:
            return cv.WARN, 'no GNSS fix'
        return cv.OK, ''

    def destroy_node(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0 + self.config.read_timeout)
        self.link.close()
        return super().destroy_node()


def main(args=None):
    return run_node(NmeaNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
