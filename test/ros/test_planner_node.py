"""The planner node (ros/planner_node.py): thrust commands towards a goal within the limits,
the plan's goal, zero thrust on the e-stop, NaN odometry dropped and counted, a thruster
fault on `diagnostics` reaching the planner. Real node process over DDS (`make test`)."""
import ast
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
from std_msgs.msg import Bool, Float64

from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.ros import qos
from asv_autonomy.ros.conversions import (ERROR, diagnostic_array, diagnostic_status,
                                          read_diagnostics, to_header)
from asv_autonomy.ros.health import DIAGNOSTICS_QOS

PLANNER = [sys.executable, '-c',
           'import sys; from asv_autonomy.ros.planner_node import main; sys.exit(main())',
           '--ros-args', '-p', 'mode:=goto', '-p', 'mppi.rollouts:=128',
           '-p', 'mppi.horizon:=20', '-p', 'mppi.compile:=false',
           '-p', 'background_solve:=true']
START = (0.0, 0.0)           # open water of the default chart (the simulator's lake)
GOAL = (30.0, 10.0)
VESSEL = VesselParams()


@pytest.mark.ros
def test_planner_node_drives_to_the_goal_and_reacts_to_estop_bad_odometry_and_faults(ros_env):
    process = subprocess.Popen(PLANNER, env=ros_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('planner_test', context=context)
    thrust = {'left': [], 'right': []}
    for side in thrust:
        node.create_subscription(Float64, f'thrusters/{side}/thrust',
                                 lambda m, side=side: thrust[side].append(m.data), qos.COMMAND)
    goals = []
    node.create_subscription(PoseStamped, 'plan/goal', lambda m: goals.append(
        (m.pose.position.x, m.pose.position.y)), qos.COMMAND)
    statuses = []
    node.create_subscription(DiagnosticArray, 'diagnostics', lambda m: statuses.extend(
        s for s in read_diagnostics(m) if s['name'] == '/controller'), 10)
    odometry_pub = node.create_publisher(Odometry, 'odometry/filtered', 10)
    goal_pub = node.create_publisher(PoseStamped, 'goal_pose', qos.COMMAND)
    estop_pub = node.create_publisher(Bool, 'safety/estop', qos.LATCHED)
    diagnostics_pub = node.create_publisher(DiagnosticArray, 'diagnostics', DIAGNOSTICS_QOS)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def now():
        return node.get_clock().now().nanoseconds * 1e-9

    def odometry(x=START[0]):
        msg = Odometry()
        msg.header = to_header(now(), 'map')
        msg.child_frame_id = 'base_link'
        msg.pose.pose.position.x, msg.pose.pose.position.y = x, START[1]
        msg.pose.pose.orientation.w = 1.0
        return msg

    def goal_pose():
        msg = PoseStamped()
        msg.header = to_header(now(), 'map')
        msg.pose.position.x, msg.pose.position.y = GOAL
        msg.pose.orientation.w = 1.0
        return msg

    def run_until(condition, seconds, *, nan_odometry=False, fault=False):
        """Publish odometry (and faults) at ~10 Hz until ``condition()`` or the deadline."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            odometry_pub.publish(odometry(math.nan if nan_odometry else START[0]))
            if fault:
                diagnostics_pub.publish(diagnostic_array(
                    [diagnostic_status('anomaly/thrust_left', ERROR, 'no thrust')], now()))
            for _ in range(2):
                executor.spin_once(timeout_sec=0.05)
            if condition():
                return True
        return False

    def latest(key):
        return statuses[-1]['values'].get(key) if statuses else None

    try:
        # Discovery, then the goal: thrust towards it, the plan says where it goes.
        assert run_until(lambda: statuses, 20.0), 'no diagnostics from /controller'
        goal_pub.publish(goal_pose())
        assert run_until(lambda: goals and goals[-1] == GOAL and thrust['left']
                         and max(thrust['left'][-1], thrust['right'][-1]) > 1.0, 10.0), \
            f'no thrust towards the goal: goals {goals[-3:]}, thrust {thrust["left"][-3:]}'
        # E-stop: zero thrust while engaged.
        estop_pub.publish(Bool(data=True))
        assert run_until(lambda: latest('estop') is True, 3.0)
        count = len(thrust['left'])
        run_until(lambda: False, 0.5)
        assert len(thrust['left']) > count
        assert set(thrust['left'][count:]) == {0.0} and set(thrust['right'][count:]) == {0.0}
        estop_pub.publish(Bool(data=False))
        assert run_until(lambda: latest('estop') is False, 3.0)
        # NaN odometry: dropped and counted on diagnostics; the node keeps running.
        assert run_until(lambda: (latest('dropped/odometry/filtered/nan') or 0) > 0, 5.0,
                         nan_odometry=True), statuses[-1]['values']
        # A failed left thruster reported on diagnostics reaches the planner.
        assert run_until(lambda: latest('thrust_efficiency') is not None and ast.literal_eval(
            latest('thrust_efficiency')) == [0.0, 1.0], 5.0, fault=True), \
            statuses[-1]['values']
        for side in thrust:
            assert all(-VESSEL.max_thrust_reverse <= t <= VESSEL.max_thrust_forward
                       for t in thrust[side])
        assert process.poll() is None, 'the planner node died'
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert 'Traceback' not in output, output


def test_node_settings_are_refused_with_reasons():
    from asv_autonomy.ros.planner_node import PlannerNodeConfig
    with pytest.raises(ValueError, match='torch_threads'):
        PlannerNodeConfig(torch_threads=-1)
    with pytest.raises(ValueError, match='control_rate'):
        PlannerNodeConfig(control_rate=0.0)
    assert PlannerNodeConfig().torch_threads == 1
