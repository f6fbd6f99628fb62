"""Anomaly node: the boat's sensor and actuator channels -> per-channel anomaly statuses.

Inputs: ``sensors/gps/fix``, ``sensors/imu/data``, ``sensors/sonar/depth``,
``thrusters/{left,right}/thrust`` and ``odometry/filtered``. Their samples feed the
channel builder of the detector (anomaly/channels.py, the same code that reads bags for
training); at ``rate_hz`` of the node clock the newest window is aligned onto the
detector's grid and scored. The window ends at the newest time every live sensor has
delivered (``BoatChannelBuilder.data_time``), not at the clock's "now": on a busy machine
the samples of the last tenths of a second are still queued, and scoring them as missing
raised false alarms (``lag_s`` in the node's status says how far behind the data are).
The node keeps the scores of its earlier windows for the detector's long-window term
(a persistent moderate fault, e.g. a weak thruster). Output on ``diagnostics``: one
status per channel named ``anomaly: <channel>`` (WARN on the channel an alarm is
attributed to) and
``anomaly: overall`` (WARN during an alarm, naming the channel and, when the detector has
a fault head, the fault type), each with values ``score`` and ``threshold``. The planner
reads them (planning/health.py: ``thrust_left``/``thrust_right``/``gps`` in a name).

The model is ``models/anomaly.pt`` of the package share or the ``model`` parameter; a
missing or corrupt checkpoint is a ConfigError (exit 2) naming it. Malformed messages are
dropped and counted on the node's own status (DESIGN.md §5).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, NavSatFix, Range
from std_msgs.msg import Float64

from asv_autonomy.anomaly.channels import BoatChannelBuilder, ChannelConfig
from asv_autonomy.anomaly.series import align
from asv_autonomy.geodesy import Datum
from asv_autonomy.localization import LocalizationConfig
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.measurements import InvalidInput
from asv_autonomy.ros.health import DIAGNOSTICS_QOS, HealthReporter, InputHealth
from asv_autonomy.ros.params import ConfigError, declare_config
from asv_autonomy.ros.spin import run_node, set_torch_threads

STATUS_PREFIX = 'anomaly: '


@dataclass(frozen=True)
class AnomalyNodeConfig:
    """Args:
        model: checkpoint file; '' = models/anomaly.pt of the package share.
        rate_hz: [Hz] windows scored per second of the node clock (0: the model's grid rate).
        history_s: [s] raw samples kept for the channels (GPS velocity and thrust
            residuals look a few seconds back; the window itself is a few seconds).
        datum: origin of the odometry's ``map`` frame: the localization's datum.
        torch_threads: CPU threads of the network (0 keeps torch's default).
    """

    model: str = ''
    rate_hz: float = 0.0
    history_s: float = 15.0
    datum: Datum = field(default_factory=lambda: LocalizationConfig().datum)
    torch_threads: int = 1

    def __post_init__(self):
        if not (math.isfinite(self.rate_hz) and self.rate_hz >= 0.0):
            raise ValueError(f'rate_hz must be >= 0, got {self.rate_hz}')
        if not (math.isfinite(self.history_s) and self.history_s > 0.0):
            raise ValueError(f'history_s must be > 0 s, got {self.history_s}')
        if self.torch_threads < 0:
            raise ValueError(f'torch_threads must be >= 0, got {self.torch_threads}')


def load_detector(path: str):
    """The AnomalyDetector of ``path`` ('' = the package's default); ConfigError('model',
    ...) naming the file when it cannot be used."""
    from asv_autonomy.anomaly.detector import AnomalyDetector, CheckpointError
    if not path:
        from asv_autonomy.cli.launch_xml import LaunchError, find_package_share
        try:
            path = str(find_package_share('asv_autonomy') / 'models' / 'anomaly.pt')
        except LaunchError as error:
            raise ConfigError('model', f'no default checkpoint: {error}') from None
    try:
        return AnomalyDetector.load(path)
    except CheckpointError as error:
        raise ConfigError('model', str(error)) from None


class AnomalyNode(Node):
    def __init__(self):
        super().__init__('anomaly')
        self.config = declare_config(self, AnomalyNodeConfig)
        set_torch_threads(self.config.torch_threads)
        self.detector = load_detector(self.config.model)
        self.rate_hz = self.config.rate_hz or self.detector.config.rate_hz
        # The scores of earlier windows, for each channel's long-window mean.
        self.memory = self.detector.score_memory()
        self.builder = BoatChannelBuilder(ChannelConfig(datum=self.config.datum,
                                                        history_s=self.config.history_s))
        self.health = InputHealth(self)
        self.windows = 0
        self.alarms = 0
        self.score_ms = math.nan
        self.score_errors = 0
        self.lag_s = math.nan                 # [s] clock minus the scored window's end
        self._scored_until = -math.inf
        self.publisher = self.create_publisher(DiagnosticArray, 'diagnostics', DIAGNOSTICS_QOS)
        b = self.builder
        subscriptions = [
            (NavSatFix, 'sensors/gps/fix', cv.from_navsatfix,
             lambda f: self._add(b.add_gps, f.stamp, f.latitude, f.longitude, f.status)),
            (Imu, 'sensors/imu/data', cv.from_imu,
             lambda s: self._add(b.add_imu, s.stamp, s.orientation, s.angular_velocity,
                                 s.linear_acceleration)),
            (Range, 'sensors/sonar/depth', cv.from_range,
             lambda r: self._add(b.add_depth, r.stamp, r.value)),
            (Odometry, 'odometry/filtered', cv.from_odometry,
             lambda o: self._add(b.add_odometry, o.stamp, o.x, o.y, o.u, o.v, o.r, o.yaw)),
        ]
        # Every sample counts (the channels integrate the gyro, difference the odometry):
        # a 5-deep queue holds 30 ms of IMU at 5x real time, and losing most samples
        # while the node scored made imu_yaw_vs_gyro 1.7 times noisier than in training.
        for msg_type, topic, convert, handle in subscriptions:
            self.create_subscription(msg_type, topic, self.health.guard(topic, convert, handle),
                                     qos.SENSOR_BUFFERED)
        for side in ('left', 'right'):
            topic = f'thrusters/{side}/thrust'
            # Commands carry no stamp: they count at the node clock's time of arrival.
            self.create_subscription(Float64, topic, self.health.guard(
                topic, cv.from_float64,
                lambda value, side=side: self._add(b.add_thrust, side, self._now(), value)),
                qos.COMMAND)
        self.create_timer(1.0 / self.rate_hz, self.score)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    @staticmethod
    def _add(add, *args) -> None:
        if not add(*args):
            raise InvalidInput('malformed', 'non-finite stamp or value')

    def score(self) -> None:
        """Score the newest window and publish the statuses (a failure is counted and
        logged, never fatal: the boat keeps its other nodes' diagnostics)."""
        try:
            self._score()
        except Exception as error:  # noqa: BLE001 - no input may crash the node
            self.score_errors += 1
            self.get_logger().error(f'scoring failed ({self.score_errors} so far): '
                                    f'{type(error).__name__}: {error}',
                                    throttle_duration_sec=10.0)

    def _score(self) -> None:
        now = self._now()
        end = min(now, self.builder.data_time())
        if end < self._scored_until + 0.5 / self.rate_hz:
            return                                    # no new data since the last window
        rows = self.detector.config.rows_needed
        start = end - (rows - 1) / self.rate_hz
        first = self.builder.odometry_start
        if first is None or start < first - 1e-6:
            # As offline (a bag's series starts at its first odometry and scores from
            # its first full window): a window reaching back before the odometry would
            # be judged on channels that have not started yet.
            return
        try:
            series = align(self.builder.streams(), self.rate_hz, start=start, stop=end,
                           channels=self.detector.channels)
        except ValueError:
            return                                    # nothing received yet
        if len(series) < rows or not series.mask.any():
            return
        began = time.perf_counter()
        result = self.detector.score_window(series.values[-rows:], self.memory,
                                            series.times[-rows:])
        self.score_ms = 1e3 * (time.perf_counter() - began)
        self._scored_until, self.lag_s = end, now - end
        self.windows += 1
        self.alarms += int(result.is_anomaly)
        threshold = self.detector.threshold
        statuses = [cv.diagnostic_status(
            STATUS_PREFIX + name,
            cv.WARN if result.is_anomaly and name == result.channel else cv.OK,
            'anomalous' if result.is_anomaly and name == result.channel else '',
            values={'score': float(score), 'threshold': threshold})
            for name, score in zip(self.detector.channels, result.channel_scores)]
        message = ''
        if result.is_anomaly:
            message = f'anomaly on {result.channel} ({result.group})'
            if result.fault:
                message += f': {result.fault}'
        statuses.append(cv.diagnostic_status(
            STATUS_PREFIX + 'overall', cv.WARN if result.is_anomaly else cv.OK, message,
            values={'score': result.score, 'threshold': threshold, 'channel': result.channel,
                    'group': result.group, 'fault': result.fault}))
        self.publisher.publish(cv.diagnostic_array(statuses, end))

    def status_values(self) -> dict:
        values = {'windows': self.windows, 'alarms': self.alarms,
                  'score_errors': self.score_errors, 'score_ms': round(self.score_ms, 2),
                  'rate_hz': self.rate_hz, 'lag_s': round(self.lag_s, 3)}
        values.update({f'channels_dropped/{k}': n for k, n in sorted(self.builder.dropped.items())})
        observer = self.builder.current_observer
        if observer is not None:
            # The water current the thrust residuals take off the odometry (NaN until known).
            east, north = observer.estimate if observer.converged else (math.nan, math.nan)
            values.update({'current_east': round(float(east), 3),
                           'current_north': round(float(north), 3)})
        return values

    def condition(self) -> tuple[int, str]:
        if self.score_errors:
            return cv.ERROR, f'{self.score_errors} scoring failures (see the log)'
        if self.windows == 0:
            return cv.WARN, 'no window scored yet (waiting for sensor data)'
        return cv.OK, ''


def main(args=None):
    return run_node(AnomalyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
