"""Every node drops malformed input, counts it on `diagnostics` and keeps running
(DESIGN.md §5); a bad parameter is refused with a reason (exit code 2).

Real node processes over DDS: run inside a private network namespace (`make test`).
"""
import math
import subprocess
import sys
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, NavSatFix, NavSatStatus
from std_msgs.msg import Float64

from asv_autonomy.ros.conversions import read_diagnostics

NODES = {'localization': 'localization_node', 'controller': 'baseline_controller_node',
         'sim': 'sim_node'}


def _node_command(name: str, *ros_args: str) -> list[str]:
    """Run node `name` from this interpreter (no console script needed)."""
    return [sys.executable, '-c',
            f'import sys; from asv_autonomy.ros.{NODES[name]} import main; sys.exit(main())',
            '--ros-args', *ros_args]


def _malformed_messages():
    nan_fix = NavSatFix()
    nan_fix.header.frame_id = 'gps_link'
    nan_fix.status.status = NavSatStatus.STATUS_FIX
    nan_fix.latitude, nan_fix.longitude = math.nan, -122.0
    nan_imu = Imu()
    nan_imu.header.frame_id = 'imu_link'
    nan_imu.orientation.w = 1.0
    nan_imu.angular_velocity.z = math.inf
    wrong_frame = Odometry()
    wrong_frame.header.frame_id = 'odom'
    wrong_frame.pose.pose.orientation.w = 1.0
    nan_goal = PoseStamped()
    nan_goal.header.frame_id = 'map'
    nan_goal.pose.position.x = math.nan
    nan_goal.pose.orientation.w = 1.0
    return {
        'localization': [(NavSatFix, 'sensors/gps/fix', nan_fix, 'nan'),
                         (Imu, 'sensors/imu/data', nan_imu, 'nan')],
        'controller': [(Odometry, 'odometry/filtered', wrong_frame, 'wrong_frame'),
                       (PoseStamped, 'goal_pose', nan_goal, 'nan')],
        'sim': [(Float64, 'thrusters/left/thrust', Float64(data=math.nan), 'nan')],
    }


@pytest.mark.ros
@pytest.mark.parametrize('name', sorted(NODES))
def test_malformed_input_is_dropped_counted_and_reported(ros_env, name):
    extra = ('-p', 'start_delay:=0.0') if name == 'sim' else ()
    process = subprocess.Popen(_node_command(name, *extra), env=ros_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('malformed_input_test', context=context)
    statuses = []
    node.create_subscription(DiagnosticArray, 'diagnostics', lambda m: statuses.extend(
        s for s in read_diagnostics(m) if s['name'] == f'/{name}'), 10)
    cases = _malformed_messages()[name]
    publishers = [node.create_publisher(cls, topic, 10) for cls, topic, _, _ in cases]
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 30.0
        expected = {f'dropped/{topic}/{reason}' for _, topic, _, reason in cases}
        while time.monotonic() < deadline:
            for publisher, (_, _, msg, _) in zip(publishers, cases):
                publisher.publish(msg)
            executor.spin_once(timeout_sec=0.2)
            if statuses and expected <= set(statuses[-1]['values']):
                break
        assert statuses, f'no diagnostics from /{name}'
        values = statuses[-1]['values']
        assert expected <= set(values), values
        assert values['dropped_total'] >= len(cases)
        assert process.poll() is None, 'the node died on malformed input'
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert 'Traceback' not in output, output


@pytest.mark.ros
@pytest.mark.parametrize('name, parameter, value', [
    ('localization', 'publish_rate', '-1.0'),
    ('controller', 'line_spacing', '0.0'),
    ('sim', 'sim.dt', '5.0'),
    ('sim', 'sim.fault_schedule', '/nonexistent/faults.yaml'),
    ('sim', 'pace_lead', '0.5'),          # not below the thrust watchdog's 0.5 s
])
def test_bad_parameter_is_refused_with_a_reason(ros_env, name, parameter, value):
    result = subprocess.run(_node_command(name, '-p', f'{parameter}:={value}'),
                            env=ros_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert parameter in output and 'Traceback' not in output, output
