"""The Gazebo sonar node over real DDS: ground-truth odometry in, Range of the bathymetry
below the transducer out at the sonar rate; bad poses dropped and counted on diagnostics.

Real node processes: run inside a private network namespace (`make test`).
"""
import math
import subprocess
import sys
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Range

from asv_autonomy.drivers.sonar_grid import SonarGrid
from asv_autonomy.measurements import PlanarOdometry
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos

T0 = 1000.0    # [s] first stamp
DRAFT = 0.25   # [m] transducer draft given to the node
POSES = 60     # at 20 Hz of stamp time: 3 s -> 15 readings at 5 Hz
TOPIC = 'sim/ground_truth/odometry'


def _node_command():
    return [sys.executable, '-c',
            'import sys; from asv_autonomy.ros.gz_sonar_node import main; sys.exit(main())',
            '--ros-args', '-p', 'sonar.noise_fraction:=0.0', '-p', 'sonar.noise_floor:=0.0',
            '-p', f'sonar.transducer_draft:={DRAFT}', '-p', 'sonar.rate_hz:=5.0']


def _pose(t, x, y, frame='map'):
    return cv.to_odometry(PlanarOdometry(t, x, y, 0.5), frame, 'base_link')


@pytest.mark.ros
def test_sonar_follows_the_pose_over_the_lake_and_counts_bad_poses(ros_env):
    process = subprocess.Popen(_node_command(), env=ros_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('gz_sonar_test', context=context)
    ranges, statuses = [], []
    node.create_subscription(Range, 'sensors/sonar/depth', ranges.append, qos.SENSOR)
    node.create_subscription(DiagnosticArray, 'diagnostics', lambda m: statuses.extend(
        s for s in cv.read_diagnostics(m) if s['name'] == '/gz_sonar'), 10)
    pub = node.create_publisher(Odometry, TOPIC, 100)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin_until(condition, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return False

    track = {}
    try:
        assert spin_until(lambda: pub.get_subscription_count() > 0, 30.0), 'no subscription'
        spin_until(lambda: False, 1.0)   # let discovery settle on the node's side too
        for k in range(POSES):           # east-north-east from the simulator's start
            t = T0 + 0.05 * k
            track[t] = (0.5 * k, 0.2 * k)
            pub.publish(_pose(t, *track[t]))
            executor.spin_once(timeout_sec=0.01)
        t = T0 + 0.05 * POSES
        pub.publish(_pose(t, 0.0, 0.0, frame='odom'))         # wrong frame
        pub.publish(_pose(t + 0.5, 9000.0, 0.0))              # off the lake
        nan_pose = _pose(t + 0.6, 0.0, 0.0)
        nan_pose.pose.pose.position.x = math.nan
        pub.publish(nan_pose)

        def counted():
            values = statuses[-1]['values'] if statuses else {}
            return all(values.get(f'dropped/{TOPIC}/{reason}') == 1
                       for reason in ('wrong_frame', 'outside_grid', 'nan'))
        assert spin_until(counted, 20.0), statuses[-1]['values'] if statuses else 'none'
        assert spin_until(lambda: len(ranges) >= 14, 5.0), len(ranges)
        values = statuses[-1]['values']
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert 'Traceback' not in output, output

    # One reading per 0.2 s of pose time (best effort may lose one), each at a pose's
    # stamp, in sonar_link, the default world's depth below the transducer at that pose.
    assert 14 <= len(ranges) <= 15
    grid = SonarGrid()
    stamps = [cv.from_time(r.header.stamp) for r in ranges]
    assert all(b - a == pytest.approx(0.2, abs=1e-6) for a, b in zip(stamps, stamps[1:])
               if b - a < 0.3)
    for msg, stamp in zip(ranges, stamps):
        x, y = track[min(track, key=lambda s: abs(s - stamp))]
        assert msg.header.frame_id == 'sonar_link'
        assert msg.range == pytest.approx(float(grid.depth(x, y)) - DRAFT, abs=1e-4)
        assert (msg.min_range, msg.max_range) == pytest.approx((0.3, 50.0))
    assert values['published'] == 15
    assert values[f'received/{TOPIC}'] == POSES + 3
