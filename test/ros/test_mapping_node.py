"""The mapping node over real DDS: odometry + sonar + temperature in, maps out; malformed
readings dropped and counted; snapshot saved on Ctrl-C and restored on restart.

Real node processes: run inside a private network namespace (`make test`).
"""
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2, Range, Temperature

from asv_autonomy.measurements import PlanarOdometry, ScalarReading
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos

import node_process

EXTENT = (0.0, 40.0, 0.0, 40.0)   # [m] grid of the maps in these tests
RESOLUTION = 4.0                   # [m]
DRAFT = 0.3                        # [m] transducer below the water line
T0 = 1000.0                        # [s] first stamp
SPEED = 2.0                        # [m/s]


def true_depth(x, y):
    return 8.0 + 0.15 * x - 0.05 * y + 1.5 * np.sin(x / 8.0)


def true_temperature(x, y):
    return 15.0 + 0.05 * y


def _track():
    """Lawnmower over the grid: lines at y = 5, 20, 35 [m], (t, x, y, yaw) every 0.05 s."""
    corners = [(2, 5), (38, 5), (38, 20), (2, 20), (2, 35), (38, 35)]
    points = []
    for (xa, ya), (xb, yb) in zip(corners[:-1], corners[1:]):
        n = int(round(math.hypot(xb - xa, yb - ya) / (SPEED * 0.05)))
        yaw = math.atan2(yb - ya, xb - xa)
        for k in range(n):
            points.append((xa + (xb - xa) * k / n, ya + (yb - ya) * k / n, yaw))
    return [(T0 + 0.05 * i, x, y, yaw) for i, (x, y, yaw) in enumerate(points)]


def _node_command(*ros_args):
    return [sys.executable, '-c',
            'import sys; from asv_autonomy.ros.mapping_node import main; sys.exit(main())',
            '--ros-args', '-p', f'grid.extent:={list(EXTENT)}',
            '-p', f'grid.resolution:={RESOLUTION}', '-p', 'publish_rate:=4.0',
            '-p', f'value_offsets:=[{DRAFT}, 0.0]', '-p', 'bathymetry.inducing_spacing:=4.0',
            *ros_args]


class Harness:
    """A test node publishing the inputs and collecting the outputs of the mapping node."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node('mapping_test', context=self.context)
        self.maps, self.grids, self.statuses = [], [], []
        self.node.create_subscription(PointCloud2, 'map/bathymetry', self.maps.append,
                                      qos.LATCHED)
        self.node.create_subscription(OccupancyGrid, 'map/bathymetry/uncertainty',
                                      self.grids.append, qos.LATCHED)
        self.node.create_subscription(
            DiagnosticArray, 'diagnostics', lambda m: self.statuses.extend(
                s for s in cv.read_diagnostics(m) if s['name'] == '/mapping'), 10)
        self.odometry = self.node.create_publisher(Odometry, 'odometry/filtered', 100)
        self.sonar = self.node.create_publisher(Range, 'sensors/sonar/depth', 100)
        self.temperature = self.node.create_publisher(Temperature, 'sensors/water/temperature',
                                                      100)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, condition, timeout, publish=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if publish is not None:
                publish()
            self.executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return False

    def wait_for_subscribers(self):
        assert self.spin_until(lambda: all(
            p.get_subscription_count() > 0
            for p in (self.odometry, self.sonar, self.temperature)), 30.0), \
            'the mapping node did not subscribe'
        self.spin_until(lambda: False, 1.0)   # let discovery settle on the node's side too

    def survey(self):
        """Odometry at 20 Hz, sonar at 5 Hz, temperature at 1 Hz along the track, paced at
        ~10x real time. Odometry runs 0.1 s behind the readings (they are held for it).
        The first pose is sent first.
        Returns the number of sonar readings sent."""
        track = _track()
        self.odometry.publish(cv.to_odometry(PlanarOdometry(*track[0])))
        sent = 0
        for i, (t, x, y, yaw) in enumerate(track):
            if i % 4 == 0:
                self.sonar.publish(cv.to_range(
                    ScalarReading(t, float(true_depth(x, y)) - DRAFT, 0.01), 'sonar_link',
                    0.3, 50.0))
                sent += 1
            if i % 20 == 0:
                self.temperature.publish(cv.to_temperature(
                    ScalarReading(t, float(true_temperature(x, y))), 'base_link'))
            if i >= 2:
                t2, x2, y2, yaw2 = track[i - 2]
                self.odometry.publish(cv.to_odometry(PlanarOdometry(t2, x2, y2, yaw2)))
            if i % 10 == 0:
                self.executor.spin_once(timeout_sec=0.0)
                time.sleep(0.05)
        t, x, y, yaw = track[-1]
        for k in range(1, 4):
            self.odometry.publish(cv.to_odometry(PlanarOdometry(t + 0.05 * k, x, y, yaw)))
        return sent, track

    def values(self):
        return self.statuses[-1]['values'] if self.statuses else {}

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)



def _stop(process, sig=signal.SIGTERM):
    return node_process.stop(process, sig)



def _map_columns(msg):
    return cv.from_pointcloud2(msg, ['x', 'y', 'mean', 'std'], frame_id='map')


def _survey_and_wait_for_the_final_map(harness, process):
    harness.wait_for_subscribers()
    sent, track = harness.survey()
    # The final map: every sonar reading received is in the model (best-effort delivery may
    # lose one or two), then one more publication.
    def all_in():
        values = harness.values()
        received = values.get('received/sensors/sonar/depth', 0)
        return received >= sent - 3 and values.get('bathymetry/samples') == received
    assert harness.spin_until(all_in, 60.0), f"{harness.values()} sent {sent}"
    count = len(harness.maps)
    assert harness.spin_until(lambda: len(harness.maps) > count + 1, 10.0)
    assert process.poll() is None
    return sent, track


@pytest.mark.ros
def test_maps_of_a_survey_match_the_true_field(ros_env):
    process = subprocess.Popen(_node_command(), env=ros_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    harness = Harness()
    try:
        sent, track = _survey_and_wait_for_the_final_map(harness, process)
        values = harness.values()
        cloud, grid = _map_columns(harness.maps[-1]), cv.from_occupancy_grid(harness.grids[-1])
    finally:
        harness.close()
        output = _stop(process)
    assert 'Traceback' not in output, output
    # One point per cell of the configured grid, in the same order as the uncertainty grid.
    assert len(cloud['x']) == 100 and grid.data.shape == (10, 10)
    assert (grid.resolution, grid.origin_x, grid.origin_y) == (RESOLUTION, 0.0, 0.0)
    np.testing.assert_allclose(cloud['x'][:3], [2.0, 6.0, 10.0])
    np.testing.assert_allclose(cloud['y'][[0, 10]], [2.0, 6.0])
    # Near the track the mean is the true depth (offset applied), and confident.
    xy = np.column_stack([cloud['x'], cloud['y']])
    path = np.array([(x, y) for _, x, y, _ in track])
    near = np.min(np.linalg.norm(xy[:, None] - path[None], axis=2), axis=1) <= 4.0
    assert near.sum() >= 40
    error = cloud['mean'][near] - true_depth(*xy[near].T)
    assert np.sqrt(np.mean(error ** 2)) < 0.3, error
    assert np.all(np.isfinite(cloud['std'])) and np.all(cloud['std'] > 0.0)
    assert np.median(cloud['std'][near]) < np.median(cloud['std'][~near])
    # The uncertainty grid is the std, scaled 0-100.
    assert grid.data.min() >= 0 and grid.data.max() <= 100
    assert np.corrcoef(grid.data.ravel(), cloud['std'])[0, 1] > 0.9
    # Diagnostics: samples and update timings per field; nothing dropped.
    assert values['bathymetry/samples'] >= sent - 3
    assert values['temperature/samples'] >= len(track) // 20 - 1
    assert values['bathymetry/update_ms_p95'] >= values['bathymetry/update_ms_p50'] > 0.0
    assert values['bathymetry/inducing_points'] > 0
    assert values['dropped_total'] == 0, values


def _malformed():
    nan_range = cv.to_range(ScalarReading(T0 + 0.5, 5.0), 'sonar_link', 0.3, 50.0)
    nan_range.range = math.nan
    no_return = cv.to_range(ScalarReading(T0 + 0.5, math.inf), 'sonar_link', 0.3, 50.0)
    beyond = cv.to_range(ScalarReading(T0 + 0.5, 80.0), 'sonar_link', 0.3, 50.0)
    too_late = cv.to_range(ScalarReading(T0 + 60.0, 5.0), 'sonar_link', 0.3, 50.0)
    nan_temperature = cv.to_temperature(ScalarReading(T0 + 0.5, math.nan), 'base_link')
    return [
        ('sonar', nan_range, 'dropped/sensors/sonar/depth/nan'),
        ('sonar', no_return, 'dropped/sensors/sonar/depth/out_of_range'),
        ('sonar', beyond, 'dropped/sensors/sonar/depth/out_of_range'),
        ('sonar', too_late, 'dropped/sensors/sonar/depth/no_pose'),
        ('temperature', nan_temperature, 'dropped/sensors/water/temperature/nan'),
    ]


@pytest.mark.ros
def test_malformed_readings_are_dropped_counted_and_the_node_keeps_mapping(ros_env):
    process = subprocess.Popen(_node_command(), env=ros_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    harness = Harness()
    try:
        harness.wait_for_subscribers()
        # Before any odometry a reading waits; the first pose, 0.5 s later, refuses it.
        early = cv.to_range(ScalarReading(T0, 5.0), 'sonar_link', 0.3, 50.0)
        assert harness.spin_until(lambda: harness.values().get('held_readings', 0) > 0,
                                  20.0, publish=lambda: harness.sonar.publish(early))
        odometry = cv.to_odometry(PlanarOdometry(T0 + 0.5, 10.0, 10.0, 0.0))
        cases = _malformed()
        wrong_frame = cv.to_odometry(PlanarOdometry(T0 + 0.6, 10.0, 10.0, 0.0), 'odom')
        expected = {key for _, _, key in cases} | {'dropped/odometry/filtered/wrong_frame'}

        def publish():
            harness.odometry.publish(odometry)
            harness.odometry.publish(wrong_frame)
            for publisher, msg, _ in cases:
                getattr(harness, publisher).publish(msg)
        assert harness.spin_until(lambda: expected <= set(harness.values()), 20.0,
                                  publish=publish), harness.values()
        # Still mapping: a good reading at the known pose becomes a sample and a map.
        good = cv.to_range(ScalarReading(T0 + 0.5, 5.0), 'sonar_link', 0.3, 50.0)
        assert harness.spin_until(lambda: harness.maps, 20.0,
                                  publish=lambda: harness.sonar.publish(good))
        assert process.poll() is None, 'the node died on malformed input'
    finally:
        harness.close()
        output = _stop(process)
    assert 'Traceback' not in output, output


@pytest.mark.ros
def test_snapshot_saved_on_ctrl_c_restores_the_same_map(ros_env, tmp_path):
    snapshots = tmp_path / 'maps'
    # A drifting temperature field: a static background + fading anomaly model
    # (mapping.make_mapper), saved and restored with both parts.
    drifting = ('-p', 'temperature.temporal_timescale:=600.0')
    first = subprocess.Popen(_node_command('-p', f'snapshot_dir:={snapshots}', *drifting),
                             env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    harness = Harness()
    try:
        _survey_and_wait_for_the_final_map(harness, first)
        before = _map_columns(harness.maps[-1])
        output = _stop(first, signal.SIGINT)
        assert first.returncode == 0, output
        assert sorted(p.name for p in snapshots.iterdir()) == ['bathymetry.pt',
                                                                'temperature.pt']
        count = len(harness.maps)
        second = subprocess.Popen(
            _node_command('-p', f'snapshot_dir:={snapshots}', '-p', 'restore:=true',
                          *drifting),
            env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # No new input: the restored node publishes the map it had.
            assert harness.spin_until(lambda: len(harness.maps) > count, 30.0)
            after = _map_columns(harness.maps[-1])
        finally:
            output = _stop(second, signal.SIGINT)
    finally:
        harness.close()
    assert 'Traceback' not in output and 'restored bathymetry' in output, output
    assert 'restored temperature' in output, output
    for name in ('x', 'y', 'mean', 'std'):
        np.testing.assert_allclose(after[name], before[name], rtol=1e-5, atol=1e-5)


@pytest.mark.ros
def test_corrupt_snapshot_is_a_configuration_error(ros_env, tmp_path):
    (tmp_path / 'bathymetry.pt').write_bytes(b'not a snapshot')
    result = subprocess.run(
        _node_command('-p', f'snapshot_dir:={tmp_path}', '-p', 'restore:=true'),
        env=ros_env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert 'snapshot_dir' in output and str(tmp_path / 'bathymetry.pt') in output, output
    assert 'Traceback' not in output, output


@pytest.mark.ros
@pytest.mark.parametrize('parameter, value', [
    ('field_kinds', "['range']"),                 # two fields, one kind
    ('temperature.temporal_timescale', '-5.0'),   # a field's own GP tunable
    ('restore', 'true'),                          # without a snapshot_dir
])
def test_bad_parameter_is_refused_with_its_name(ros_env, parameter, value):
    result = subprocess.run(_node_command('-p', f'{parameter}:={value}'), env=ros_env,
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert parameter in output and 'Traceback' not in output, output
