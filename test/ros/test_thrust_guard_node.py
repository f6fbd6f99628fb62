"""The thrust guard in front of Gazebo/VRX thrusters: commands pass saturated, silence and
the e-stop give zero (DESIGN.md §5). Real node process over DDS (`make test`)."""
import math
import subprocess
import sys
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Bool, Float64

from asv_autonomy.ros import qos
from asv_autonomy.ros.conversions import read_diagnostics

GUARD = [sys.executable, '-c',
         'import sys; from asv_autonomy.ros.thrust_guard_node import main; sys.exit(main())',
         '--ros-args', '-p', 'guard.timeout:=0.5', '-p', 'guard.max_forward:=45.0']


@pytest.mark.ros
def test_guarded_thrust_follows_commands_times_out_and_stops_on_estop(ros_env):
    process = subprocess.Popen(GUARD, env=ros_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('guard_test', context=context)
    out = {'left': [], 'right': []}
    for side in out:
        node.create_subscription(Float64, f'actuators/{side}/thrust',
                                 lambda m, side=side: out[side].append(m.data), qos.COMMAND)
    left = node.create_publisher(Float64, 'thrusters/left/thrust', qos.COMMAND)
    right = node.create_publisher(Float64, 'thrusters/right/thrust', qos.COMMAND)
    estop = node.create_publisher(Bool, 'safety/estop', qos.LATCHED)
    statuses = []
    node.create_subscription(DiagnosticArray, 'diagnostics', lambda m: statuses.extend(
        s for s in read_diagnostics(m) if s['name'] == '/thrust_guard'), 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def drive(seconds, left_thrust=None, right_thrust=None):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if left_thrust is not None:
                left.publish(Float64(data=left_thrust))
            if right_thrust is not None:
                right.publish(Float64(data=right_thrust))
            executor.spin_once(timeout_sec=0.05)

    try:
        drive(8.0)                                   # discovery; nothing commanded yet
        assert out['left'] and set(out['left']) == {0.0}, 'no guarded output, or not zero'
        drive(1.5, 20.0, 100.0)                      # commands pass, saturated
        assert out['left'][-1] == 20.0 and out['right'][-1] == 45.0
        drive(1.5, 20.0)                             # right falls silent: zero after 0.5 s
        assert out['left'][-1] == 20.0 and out['right'][-1] == 0.0
        estop.publish(Bool(data=True))
        drive(1.5, 20.0, 20.0)                       # e-stop: zero despite commands
        assert out['left'][-1] == 0.0 and out['right'][-1] == 0.0
        estop.publish(Bool(data=False))
        drive(1.5, 10.0, 10.0)                       # released: fresh commands pass again
        assert out['left'][-1] == 10.0 and out['right'][-1] == 10.0
        def nan_counted():
            return any(s['values'].get('dropped/thrusters/left/thrust/nan', 0) > 0
                       for s in statuses)

        deadline = time.monotonic() + 5.0            # NaN: refused, counted, not applied
        while not nan_counted() and time.monotonic() < deadline:
            drive(0.2, math.nan, 10.0)
        assert nan_counted(), 'NaN thrust not counted on diagnostics'
        assert all(math.isfinite(v) for v in out['left'])
        assert process.poll() is None
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and 'Traceback' not in output, output
