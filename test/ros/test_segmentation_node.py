"""The segmentation node over real DDS: camera frames in; polyline, mask and grid out;
malformed images dropped and counted; a bad checkpoint is a configuration error.

Real node processes: run inside a private network namespace (`make test`).
"""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PolygonStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from asv_autonomy.measurements import PlanarOdometry
from asv_autonomy.perception.segmenter import Segmenter
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.sim.camera import CameraConfig, CameraRenderer
from asv_autonomy.sim.world import World, WorldConfig

import node_process

T0 = 1000.0
IMAGE = 'sensors/camera/image_raw'


def _node_command(model, *ros_args):
    return [sys.executable, '-c',
            'import sys; from asv_autonomy.ros.segmentation_node import main; sys.exit(main())',
            '--ros-args', '-p', f'model:={model}', *ros_args]


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp('model') / 'segmentation.pt'
    Segmenter().save(path)        # untrained: the node's plumbing, not the model, is tested
    return path


def camera_frame(width, height):
    """A simulated frame of the given size and its intrinsics."""
    config = CameraConfig(width=width, height=height)
    renderer = CameraRenderer(config, World(WorldConfig()), 3)
    rgb, _ = renderer.render(0.0, 0.0, 1.2, 5.0)
    return rgb, renderer.intrinsics()


class Harness:
    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node('segmentation_test', context=self.context)
        self.polylines, self.masks, self.grids, self.statuses = [], [], [], []
        self.node.create_subscription(PolygonStamped, 'perception/navigable/polyline',
                                      self.polylines.append, 10)
        self.node.create_subscription(Image, 'perception/navigable/mask', self.masks.append, 10)
        self.node.create_subscription(OccupancyGrid, 'perception/navigable/grid',
                                      self.grids.append, qos.LATCHED)
        self.node.create_subscription(
            DiagnosticArray, 'diagnostics', lambda m: self.statuses.extend(
                s for s in cv.read_diagnostics(m) if s['name'] == '/segmentation'), 10)
        self.image = self.node.create_publisher(Image, IMAGE, qos.SENSOR_SOURCE)
        self.info = self.node.create_publisher(CameraInfo, 'sensors/camera/camera_info',
                                               qos.SENSOR_SOURCE)
        self.odometry = self.node.create_publisher(Odometry, 'odometry/filtered', 10)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, condition, timeout, publish=None, period=0.1):
        deadline = time.monotonic() + timeout
        next_publish = 0.0
        while time.monotonic() < deadline:
            if publish is not None and time.monotonic() >= next_publish:
                publish()
                next_publish = time.monotonic() + period
            self.executor.spin_once(timeout_sec=0.02)
            if condition():
                return True
        return False

    def wait_for_subscribers(self):
        assert self.spin_until(lambda: all(
            p.get_subscription_count() > 0 for p in (self.image, self.info, self.odometry)),
            30.0), 'the segmentation node did not subscribe'
        self.spin_until(lambda: False, 0.5)

    def values(self):
        return self.statuses[-1]['values'] if self.statuses else {}

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


_stop = node_process.stop



@pytest.mark.ros
def test_valid_frames_give_the_three_outputs_and_malformed_ones_are_counted(ros_env, model):
    process = subprocess.Popen(_node_command(model), env=ros_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    harness = Harness()
    width, height = 160, 120
    rgb, (fx, fy, cx, cy) = camera_frame(width, height)
    try:
        harness.wait_for_subscribers()
        info = cv.to_camera_info(width, height, fx, fy, cx, cy, T0, 'camera_link')
        odometry = cv.to_odometry(PlanarOdometry(T0, 10.0, -5.0, 1.2))
        frame = cv.to_image(rgb, T0, 'camera_link', 'rgb8')

        def publish_valid():
            harness.info.publish(info)
            harness.odometry.publish(odometry)
            harness.image.publish(frame)
        assert harness.spin_until(lambda: harness.polylines and harness.masks and harness.grids,
                                  30.0, publish=publish_valid), harness.values()
        polyline = cv.from_polygon_stamped(harness.polylines[-1])
        assert harness.polylines[-1].header.frame_id == 'camera_link'
        assert len(polyline) >= 2 and (polyline[:, 0] >= 0).all() and \
            (polyline[:, 0] < width).all()
        mask = cv.from_image(harness.masks[-1])
        assert mask.shape == (height, width) and set(np.unique(mask)) <= {0, 255}
        assert harness.masks[-1].header.frame_id == 'camera_link'
        grid = cv.from_occupancy_grid(harness.grids[-1], frame_id='map')
        assert (grid.data != -1).any() and (grid.data == 0).any()

        # Malformed frames: an unsupported encoding, a size unlike camera_info's, a data
        # length that does not add up. All dropped and counted; the node keeps going.
        wrong_encoding = cv.to_image(rgb, T0 + 1, 'camera_link', 'rgb8')
        wrong_encoding.encoding = '16UC1'
        small, _ = camera_frame(80, 60)
        wrong_size = cv.to_image(small, T0 + 1, 'camera_link', 'rgb8')
        truncated = cv.to_image(rgb, T0 + 1, 'camera_link', 'rgb8')
        truncated.data = truncated.data[:-width]
        expected = {f'dropped/{IMAGE}/{reason}' for reason in
                    ('encoding', 'size_mismatch', 'malformed')}

        def publish_bad():
            for msg in (wrong_encoding, wrong_size, truncated):
                harness.image.publish(msg)
        assert harness.spin_until(lambda: expected <= set(harness.values()), 20.0,
                                  publish=publish_bad), harness.values()
        assert harness.values()['dropped_total'] >= 3
        count = len(harness.polylines)
        later = cv.to_image(rgb, T0 + 2, 'camera_link', 'rgb8')
        assert harness.spin_until(lambda: len(harness.polylines) > count, 20.0,
                                  publish=lambda: harness.image.publish(later))
        assert process.poll() is None, 'the node died on malformed input'
    finally:
        harness.close()
        output = _stop(process)
    assert 'Traceback' not in output, output


@pytest.mark.ros
def test_a_bad_checkpoint_is_a_configuration_error(ros_env, tmp_path):
    bad = tmp_path / 'broken.pt'
    bad.write_bytes(b'not a checkpoint')
    result = subprocess.run(_node_command(bad), env=ros_env, capture_output=True, text=True,
                            timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert 'model' in output and str(bad) in output and 'Traceback' not in output, output


@pytest.mark.ros
@pytest.mark.slow
def test_rate_at_512x384(ros_env, model):
    """Throughput at the simulator's resolution, frames offered at 30 Hz for 8 s (goal
    >= 10 Hz on the project's CPU; asserted loosely: the test machine is shared). The
    shipped checkpoint when there is one (its network size is what runs on the boat)."""
    shipped = Path(__file__).resolve().parents[2] / 'models' / 'segmentation.pt'
    model = shipped if shipped.is_file() else model
    process = subprocess.Popen(_node_command(model), env=ros_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    harness = Harness()
    rgb, (fx, fy, cx, cy) = camera_frame(512, 384)
    try:
        harness.wait_for_subscribers()
        odometry = cv.to_odometry(PlanarOdometry(T0, 10.0, -5.0, 1.2))
        info = cv.to_camera_info(512, 384, fx, fy, cx, cy, T0, 'camera_link')
        stamp = [T0]

        def publish():
            stamp[0] += 1.0 / 30.0
            harness.info.publish(info)
            harness.odometry.publish(cv.to_odometry(
                PlanarOdometry(stamp[0], 10.0, -5.0, 1.2)))
            harness.image.publish(cv.to_image(rgb, stamp[0], 'camera_link', 'rgb8'))
        harness.odometry.publish(odometry)
        assert harness.spin_until(lambda: len(harness.grids) >= 3, 30.0, publish=publish,
                                  period=1 / 30)
        start, count = time.monotonic(), len(harness.polylines)
        harness.spin_until(lambda: False, 8.0, publish=publish, period=1 / 30)
        rate = (len(harness.polylines) - count) / (time.monotonic() - start)
        print(f'segmentation node ({model}) rate at 512x384: {rate:.1f} Hz, node says '
              f'{harness.values().get("rate_hz")} Hz, segment '
              f'{harness.values().get("segment_ms")} ms')
        assert rate >= 2.0, harness.values()
    finally:
        harness.close()
        output = _stop(process)
    assert 'Traceback' not in output, output
