"""InputHealth.guard drops/counts malformed input; HealthReporter publishes it on diagnostics."""
from __future__ import annotations

import contextlib
import functools
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.time import Time

from asv_autonomy.measurements import InvalidInput, ScalarReading
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros.health import DIAGNOSTICS_QOS, HealthReporter, InputHealth

TOPIC = 'sensors/water/temperature'


@contextlib.contextmanager
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


@pytest.fixture
def node(ros_env):
    with ros_context() as context:
        node = Node('guarded', context=context)
        yield node
        node.destroy_node()


def now_s(node: Node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


def temperature(stamp: float, value: float = 15.0, frame: str = 'water'):
    return cv.to_temperature(ScalarReading(stamp, value), frame)


def test_guard_drops_and_counts_each_reason(node):
    health = InputHealth(node)
    handled = []

    def handle(reading):
        if reading.value > 40.0:
            raise InvalidInput('out_of_range', 'too warm for a lake')
        if reading.value < -5.0:
            raise RuntimeError('a bug in the core')
        handled.append(reading)

    callback = health.guard(TOPIC, functools.partial(cv.from_temperature, frame_id='water'),
                            handle, max_age=5.0)
    t = now_s(node)
    callback(temperature(t))                       # accepted
    callback(temperature(t + 0.2, float('nan')))   # nan (does not advance the last stamp)
    callback(temperature(t + 0.1, frame='odom'))   # wrong_frame
    callback(temperature(t - 0.5))                 # out_of_order
    callback(temperature(t + 0.1, 50.0))           # core refuses: out_of_range
    callback(temperature(t + 0.1, -10.0))          # core raises: internal_error, no crash
    callback(temperature(t + 0.1))                 # accepted: drops did not move the stamp
    callback(temperature(t + 0.1))                 # an equal stamp is not out of order
    assert [r.stamp for r in handled] == pytest.approx([t, t + 0.1, t + 0.1])

    stale = health.guard('sensors/sonar/depth', cv.from_temperature, handle, max_age=5.0)
    stale(temperature(t - 10.0))                   # stale on the node clock
    broken = health.guard('thrusters/left/thrust', lambda msg: 1 / 0, handle)
    broken(cv.to_float64(3.0))                     # any exception in convert: malformed

    assert health.dropped == {
        (TOPIC, 'nan'): 1, (TOPIC, 'wrong_frame'): 1, (TOPIC, 'out_of_order'): 1,
        (TOPIC, 'out_of_range'): 1, (TOPIC, 'internal_error'): 1,
        ('sensors/sonar/depth', 'stale'): 1, ('thrusters/left/thrust', 'malformed'): 1}
    assert health.received == {TOPIC: 8, 'sensors/sonar/depth': 1, 'thrusters/left/thrust': 1}
    assert (health.received_total, health.dropped_total) == (10, 7)


def test_guard_without_header_or_stamp_check(node):
    health = InputHealth(node)
    values = []
    health.guard('thrusters/left/thrust', cv.from_float64, values.append)(cv.to_float64(5.0))
    unchecked = health.guard(TOPIC, cv.from_temperature, values.append, stamp_check=False)
    unchecked(temperature(10.0))
    unchecked(temperature(5.0))  # older, but the check is off
    assert [getattr(v, 'value', v) for v in values] == [5.0, 15.0, 15.0]
    assert health.dropped_total == 0


def test_stale_and_restart_follow_sim_time(ros_env):
    with ros_context() as context:
        node = Node('sim_guarded', context=context,
                    parameter_overrides=[Parameter('use_sim_time', value=True)])
        clock = node.get_clock()
        health = InputHealth(node)
        handled = []
        callback = health.guard(TOPIC, cv.from_temperature, handled.append, max_age=2.0)
        callback(temperature(50.0))  # sim clock not started (0): no stale check yet
        clock.set_ros_time_override(Time(seconds=100))
        callback(temperature(97.0))  # newer than 50, but stale at t = 100 s
        callback(temperature(99.5))
        clock.set_ros_time_override(Time(seconds=3))  # the simulation restarted
        callback(temperature(2.5))  # older than 99.5, yet accepted after the restart
        assert [r.stamp for r in handled] == [50.0, 99.5, 2.5]
        assert health.dropped == {(TOPIC, 'stale'): 1}
        node.destroy_node()


def spin_until(executor, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return predicate()


def test_reporter_publishes_diagnostics_over_dds(ros_env):
    with ros_context() as context:
        node = Node('mapper', namespace='asv1', context=context)
        listener = Node('listener', context=context)
        received = []
        listener.create_subscription(DiagnosticArray, '/asv1/diagnostics',
                                     lambda msg: received.append(cv.read_diagnostics(msg)),
                                     DIAGNOSTICS_QOS)
        health = InputHealth(node)
        state = {'level': cv.OK}
        HealthReporter(node, health, period_s=0.1, extra=lambda: {'state': 'tracking'},
                       condition=lambda: (state['level'], 'no fix' if state['level'] else ''))
        callback = health.guard(TOPIC, cv.from_temperature, lambda reading: None)
        callback(temperature(10.0))
        callback(temperature(11.0, float('nan')))
        callback(temperature(12.0, float('nan')))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(listener)
        assert spin_until(executor, lambda: received), 'no diagnostics received'
        (status,) = received[0]
        assert status['name'] == '/asv1/mapper'
        assert status['level'] == cv.WARN  # drops in the last period
        assert status['values'] == {'received_total': 3, 'dropped_total': 2,
                                    f'received/{TOPIC}': 3, f'dropped/{TOPIC}/nan': 2,
                                    'state': 'tracking'}
        # Next period without drops: OK, the totals stay.
        assert spin_until(executor, lambda: len(received) >= 2)
        assert received[1][0]['level'] == cv.OK and received[1][0]['message'] == 'ok'
        assert received[1][0]['values']['dropped_total'] == 2
        # The node's own condition raises the level.
        state['level'] = cv.WARN
        count = len(received)
        assert spin_until(executor, lambda: len(received) > count)
        assert (received[-1][0]['level'], received[-1][0]['message']) == (cv.WARN, 'no fix')
        executor.shutdown()
        listener.destroy_node()
        node.destroy_node()


def test_reporter_period_follows_sim_time(ros_env):
    with ros_context() as context:
        node = Node('sim_mapper', context=context,
                    parameter_overrides=[Parameter('use_sim_time', value=True)])
        stamps = []
        node.create_subscription(DiagnosticArray, 'diagnostics',
                                 lambda msg: stamps.append(cv.from_time(msg.header.stamp)),
                                 DIAGNOSTICS_QOS)
        HealthReporter(node, InputHealth(node), period_s=1.0)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        node.get_clock().set_ros_time_override(Time(seconds=0.5))
        deadline = time.monotonic() + 1.5  # 1.5 wall seconds, but sim time stands at 0.5 s
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert stamps == []
        node.get_clock().set_ros_time_override(Time(seconds=1.2))
        assert spin_until(executor, lambda: stamps)
        assert stamps[0] == pytest.approx(1.2)
        executor.shutdown()
        node.destroy_node()
