"""The anomaly node over real DDS: sensor streams in, one status per channel plus an
overall one out on `diagnostics` (score and threshold); malformed inputs dropped and
counted; a missing or corrupt model is a configuration error (exit 2).

Real node processes: run inside a private network namespace (`make test`).
"""
import math
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, NavSatFix, Range
from std_msgs.msg import Float64

from asv_autonomy.anomaly.channels import BOAT_CHANNELS
from asv_autonomy.anomaly.detector import AnomalyDetector, DetectorConfig
from asv_autonomy.anomaly.series import AlignedSeries
from asv_autonomy.anomaly.training import TrainConfig
from asv_autonomy.geodesy import LocalENU
from asv_autonomy.localization import LocalizationConfig
from asv_autonomy.measurements import FIX, GnssFix, ImuSample, PlanarOdometry, ScalarReading
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos

import node_process


def _node_command(model):
    return [sys.executable, '-c',
            'import sys; from asv_autonomy.ros.anomaly_node import main; sys.exit(main())',
            '--ros-args', '-p', f'model:={model}']


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    """A detector of the boat's channels fitted for one epoch on noise: the node's
    plumbing, not the model, is tested here."""
    rng = np.random.default_rng(0)
    rows = 900
    series = AlignedSeries(np.arange(rows) * 0.1,
                           rng.standard_normal((rows, len(BOAT_CHANNELS))), BOAT_CHANNELS)
    detector = AnomalyDetector(DetectorConfig(training=TrainConfig(epochs=1, batch_size=64,
                                                                   windows_per_epoch=256)))
    detector.fit([series])
    path = tmp_path_factory.mktemp('model') / 'anomaly.pt'
    detector.save(path)
    return path


class Harness:
    """Publishes a boat cruising east at 1 m/s (GPS 5 Hz, IMU 50 Hz, odometry 20 Hz,
    depth 5 Hz, thrust 10 Hz) stamped with the wall clock, and collects diagnostics."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node('anomaly_test', context=self.context)
        self.arrays = []
        self.node.create_subscription(DiagnosticArray, 'diagnostics', self.arrays.append, 50)
        self.gps = self.node.create_publisher(NavSatFix, 'sensors/gps/fix', qos.SENSOR_SOURCE)
        self.imu = self.node.create_publisher(Imu, 'sensors/imu/data', qos.SENSOR_SOURCE)
        self.depth = self.node.create_publisher(Range, 'sensors/sonar/depth', qos.SENSOR_SOURCE)
        self.odometry = self.node.create_publisher(Odometry, 'odometry/filtered', 10)
        self.thrust = [self.node.create_publisher(Float64, f'thrusters/{side}/thrust',
                                                  qos.COMMAND) for side in ('left', 'right')]
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.enu = LocalENU(LocalizationConfig().datum)
        self.ticks = 0
        self.first_odometry = None

    def publish_tick(self):
        """One 20 ms tick of every stream due."""
        now = time.time()
        x = now % 1000.0
        tick = self.ticks
        self.ticks += 1
        self.imu.publish(cv.to_imu(ImuSample(now, np.array([0.0, 0.0, 0.0, 1.0]),
                                             np.zeros(3), np.array([0.0, 0.0, 9.81])), 'imu'))
        if tick % 2 == 0:
            if self.first_odometry is None:
                self.first_odometry = now
            self.odometry.publish(cv.to_odometry(PlanarOdometry(now, x, 0.0, 0.0, 1.0)))
        if tick % 5 == 0:
            for publisher in self.thrust:
                publisher.publish(cv.to_float64(20.0))
        if tick % 10 == 0:
            lat, lon, _ = self.enu.to_geodetic(x, 0.0, 0.0)
            self.gps.publish(cv.to_navsatfix(GnssFix(now, lat, lon, 0.0, FIX), 'gps'))
            self.depth.publish(cv.to_range(ScalarReading(now, 12.0), 'sonar', 0.3, 100.0))

    def spin_until(self, condition, timeout, publish=None):
        deadline = time.monotonic() + timeout
        next_tick = 0.0
        while time.monotonic() < deadline:
            if publish is not None and time.monotonic() >= next_tick:
                publish()
                next_tick = time.monotonic() + 0.02
            self.executor.spin_once(timeout_sec=0.005)
            if condition():
                return True
        return False

    def statuses(self, name=None):
        found = [s for array in self.arrays for s in cv.read_diagnostics(array)]
        return [s for s in found if name is None or s['name'] == name]

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


_stop = node_process.stop



@pytest.mark.ros
def test_statuses_per_channel_and_malformed_inputs_counted(ros_env, model):
    process = subprocess.Popen(_node_command(model), env=ros_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    harness = Harness()
    threshold = AnomalyDetector.load(model).threshold
    try:
        assert harness.spin_until(lambda: harness.gps.get_subscription_count() > 0, 30.0), \
            'the anomaly node did not subscribe'
        assert harness.spin_until(lambda: len(harness.statuses('anomaly: overall')) >= 5,
                                  30.0, publish=harness.publish_tick), harness.statuses()
        # Like a bag's series, scoring starts with the first full window after the first
        # odometry (the IMU and GPS started with it here: no window judged half-empty).
        config = AnomalyDetector.load(model).config
        first_scored = min(a.header.stamp.sec + 1e-9 * a.header.stamp.nanosec
                           for a in harness.arrays
                           if any(st.name == 'anomaly: overall' for st in a.status))
        assert first_scored >= harness.first_odometry + \
            (config.rows_needed - 1) / config.rate_hz - 0.05
        names = {s['name'] for s in harness.statuses() if s['name'].startswith('anomaly: ')}
        assert names == {f'anomaly: {c}' for c in BOAT_CHANNELS} | {'anomaly: overall'}
        for status in harness.statuses('anomaly: overall')[-3:]:
            assert math.isfinite(status['values']['score'])
            assert status['values']['threshold'] == pytest.approx(threshold)
            assert status['level'] in (cv.OK, cv.WARN)
        # Scoring follows the node clock at the model's 10 Hz (loosely: a shared CPU).
        first = len(harness.statuses('anomaly: overall'))
        harness.spin_until(lambda: False, 3.0, publish=harness.publish_tick)
        assert len(harness.statuses('anomaly: overall')) - first >= 12

        now = time.time()
        bad_fix = cv.to_navsatfix(GnssFix(now, 47.6, -122.2, 0.0, FIX), 'gps')
        bad_fix.latitude = float('nan')                 # a fix without a position
        bad_depth = cv.to_range(ScalarReading(now, 12.0), 'sonar', 0.3, 100.0)
        bad_depth.range = float('inf')
        bad_thrust = Float64(data=float('nan'))
        expected = {'dropped/sensors/gps/fix/', 'dropped/sensors/sonar/depth/',
                    'dropped/thrusters/left/thrust/'}

        def publish_bad():
            harness.publish_tick()
            harness.gps.publish(bad_fix)
            harness.depth.publish(bad_depth)
            harness.thrust[0].publish(bad_thrust)

        def counted():
            own = harness.statuses('/anomaly')
            keys = set(own[-1]['values']) if own else set()
            return all(any(k.startswith(prefix) for k in keys) for prefix in expected)
        assert harness.spin_until(counted, 20.0, publish=publish_bad), \
            harness.statuses('/anomaly')[-1:]
        # The current observer's estimate: unknown yet on this straight, never idle run.
        own = harness.statuses('/anomaly')[-1]['values']
        assert math.isnan(float(own['current_east'])) and math.isnan(float(own['current_north']))
        count = len(harness.statuses('anomaly: overall'))
        assert harness.spin_until(lambda: len(harness.statuses('anomaly: overall')) > count + 3,
                                  10.0, publish=harness.publish_tick)
        assert process.poll() is None, 'the node died on malformed input'
    finally:
        harness.close()
        output = _stop(process)
    assert 'Traceback' not in output, output


@pytest.mark.ros
@pytest.mark.parametrize('content', [None, b'not a checkpoint'])
def test_a_missing_or_corrupt_model_is_a_configuration_error(ros_env, tmp_path, content):
    path = tmp_path / 'anomaly.pt'
    if content is not None:
        path.write_bytes(content)
    result = subprocess.run(_node_command(path), env=ros_env, capture_output=True, text=True,
                            timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert 'model' in output and str(path) in output and 'Traceback' not in output, output
