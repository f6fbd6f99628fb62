"""mavlink_bridge node against a scripted MAVLink vehicle on UDP loopback: autopilot sensors
out as Imu/NavSatFix, thrust in -> RC_CHANNELS_OVERRIDE out, e-stop -> neutral, garbage and
NaN thrust counted on `diagnostics`. Real node process over DDS (private netns)."""
import math
import socket
import subprocess
import sys
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from pymavlink import mavutil
from rclpy.node import Node
from sensor_msgs.msg import Imu, NavSatFix
from std_msgs.msg import Bool, Float64

from asv_autonomy.measurements import quaternion_to_yaw
from asv_autonomy.ros import qos
from asv_autonomy.ros.conversions import read_diagnostics

mavlink = mavutil.mavlink


@pytest.mark.ros
def test_sensors_out_thrust_in_estop_and_garbage(ros_env):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    link = f'udpin:127.0.0.1:{port}'
    process = subprocess.Popen(
        [sys.executable, '-c',
         'import sys; from asv_autonomy.ros.mavlink_node import main; sys.exit(main())',
         '--ros-args', '-p', f'connection:={link}', '-p', 'pwm_deadband:=0'],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    vehicle = mavutil.mavlink_connection(f'udpout:127.0.0.1:{port}', source_system=1,
                                         source_component=1)
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('mavlink_node_test', context=context)
    imus, fixes, statuses = [], [], []
    node.create_subscription(Imu, 'sensors/imu/data', imus.append, qos.SENSOR)
    node.create_subscription(NavSatFix, 'sensors/gps/fix', fixes.append, qos.SENSOR)
    node.create_subscription(DiagnosticArray, 'diagnostics', lambda m: statuses.extend(
        s for s in read_diagnostics(m) if s['name'] == '/mavlink_bridge'), 10)
    left = node.create_publisher(Float64, 'thrusters/left/thrust', qos.COMMAND)
    right = node.create_publisher(Float64, 'thrusters/right/thrust', qos.COMMAND)
    estop = node.create_publisher(Bool, 'safety/estop', qos.LATCHED)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    overrides = []
    t_boot = 0

    def turn(left_thrust):
        """One 20 ms turn: vehicle traffic, thrust commands, ROS callbacks."""
        nonlocal t_boot
        t_boot += 20
        vehicle.mav.heartbeat_send(mavlink.MAV_TYPE_SURFACE_BOAT,
                                   mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA,
                                   mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 0,
                                   mavlink.MAV_STATE_ACTIVE)
        vehicle.mav.scaled_imu_send(t_boot, 0, 0, -1000, 0, 0, 0, 0, 0, 0)
        vehicle.mav.attitude_send(t_boot, 0.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0)
        vehicle.mav.gps_raw_int_send(t_boot * 1000, 3, 476205000, -1222597000, 10000, 120,
                                     200, 0, 0, 10)
        raw.sendto(b'\xfe\x05garbage-not-mavlink', ('127.0.0.1', port))
        left.publish(Float64(data=left_thrust))
        right.publish(Float64(data=-35.0))
        while (msg := vehicle.recv_msg()) is not None:
            if msg.get_type() == 'RC_CHANNELS_OVERRIDE':
                overrides.append((time.monotonic(), msg))
        executor.spin_once(timeout_sec=0.02)

    try:
        deadline = time.monotonic() + 30.0
        # Phase 1: sensors out, thrust in (left 22.5 N = half of 45 N -> 1700 us,
        # right -35 N = full reverse -> 1100 us), a NaN thrust and garbage counted.
        while time.monotonic() < deadline:
            turn(math.nan if len(overrides) % 5 == 0 else 22.5)
            values = statuses[-1]['values'] if statuses else {}
            if imus and fixes and overrides and overrides[-1][1].chan1_raw == 1700 and \
                    values.get('dropped/thrusters/left/thrust/nan', 0) >= 1 and \
                    any(k.startswith(f'dropped/{link}/') for k in values):
                break
        assert imus and fixes, 'no Imu / NavSatFix from the autopilot'
        imu = imus[-1]
        q = (imu.orientation.x, imu.orientation.y, imu.orientation.z, imu.orientation.w)
        assert quaternion_to_yaw(q) == pytest.approx(0.0, abs=1e-6)  # east in ENU
        assert imu.linear_acceleration.z == pytest.approx(9.80665, rel=1e-6)
        assert imu.header.frame_id == 'imu_link'
        assert fixes[-1].latitude == pytest.approx(47.6205)
        assert fixes[-1].header.frame_id == 'gps_link'
        assert overrides, 'no RC_CHANNELS_OVERRIDE reached the vehicle'
        o = overrides[-1][1]
        assert (o.chan1_raw, o.chan3_raw) == (1700, 1100)
        values = statuses[-1]['values']
        assert values['dropped/thrusters/left/thrust/nan'] >= 1, values
        assert any(k.startswith(f'dropped/{link}/') for k in values), values
        assert values['connected'] is True and statuses[-1]['level'] != 2
        # Phase 2: e-stop -> neutral while thrust is still commanded.
        estop.publish(Bool(data=True))
        stopped = time.monotonic()
        after = []
        while time.monotonic() < deadline:
            turn(22.5)
            after = [m for t, m in overrides if t > stopped + 0.2]
            if len(after) >= 3:
                break
        assert after and all((m.chan1_raw, m.chan3_raw) == (1500, 1500) for m in after)
        assert process.poll() is None, 'the node died'
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.terminate()
        output, _ = process.communicate(timeout=10)
        vehicle.close()
        raw.close()
    assert 'Traceback' not in output, output


def _command(*ros_args):
    return [sys.executable, '-c',
            'import sys; from asv_autonomy.ros.mavlink_node import main; sys.exit(main())',
            '--ros-args', *ros_args]


@pytest.mark.ros
@pytest.mark.parametrize('parameter, value', [('channels', '[1]'),
                                              ('guard.timeout', '0.0'),
                                              ('imu_message', 'IMU')])
def test_bad_parameter_is_refused(ros_env, parameter, value):
    result = subprocess.run(_command('-p', f'{parameter}:={value}'), env=ros_env,
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert parameter in output and 'Traceback' not in output, output


@pytest.mark.ros
def test_missing_serial_port_is_an_error_status_not_a_crash(ros_env):
    process = subprocess.Popen(_command('-p', 'connection:=/dev/no_such_autopilot'),
                               env=ros_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('mavlink_missing_port_test', context=context)
    statuses = []
    node.create_subscription(DiagnosticArray, 'diagnostics', lambda m: statuses.extend(
        s for s in read_diagnostics(m) if s['name'] == '/mavlink_bridge'), 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and not statuses:
            executor.spin_once(timeout_sec=0.1)
        assert statuses, 'no diagnostics'
        assert statuses[-1]['level'] == 2 and 'cannot open' in statuses[-1]['message']
        assert process.poll() is None, 'the node died'
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert 'Traceback' not in output, output
