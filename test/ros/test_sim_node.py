"""The simulated clock starts only once the nodes it waits for are up (or after the
timeout), so a slow start of the autonomy nodes on a loaded machine loses no readings.

Real node processes over DDS: run inside a private network namespace (`make test`).
"""
import signal
import subprocess
import sys
import time

import pytest
import rclpy
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64

import node_process

SIM = [sys.executable, '-c',
       'import sys; from asv_autonomy.ros.sim_node import main; sys.exit(main())',
       '--ros-args', '-p', 'real_time_factor:=5.0', '-p', 'start_delay:=0.0']


class _Graph:
    """A test context with a /clock listener; `node(name)` adds a stand-in peer."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.listener = Node('clock_listener', context=self.context)
        self.clock = []
        self.listener.create_subscription(Clock, '/clock', self.clock.append, 10)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.listener)
        self.peers = []

    def node(self, name: str) -> None:
        peer = Node(name, context=self.context)
        peer.create_subscription(Float64, 'anything', lambda _: None, 10)
        self.executor.add_node(peer)
        self.peers.append(peer)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        self.executor.shutdown()
        for node in [self.listener, *self.peers]:
            node.destroy_node()
        rclpy.shutdown(context=self.context)


def _start(ros_env, *params):
    args = [a for p in params for a in ('-p', p)]
    return subprocess.Popen(SIM + args, env=ros_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)



def _stop(process) -> str:
    return node_process.stop(process, signal.SIGTERM)



@pytest.mark.ros
def test_clock_waits_for_the_named_nodes(ros_env):
    process = _start(ros_env, "wait_for_nodes:=['stand_in']", 'wait_timeout:=60.0')
    graph = _Graph()
    try:
        graph.spin_for(6.0)      # the simulator has started and discovered the listener
        assert process.poll() is None
        assert graph.clock == [], 'the clock ran before the node it waits for was up'
        graph.node('stand_in')
        deadline = time.monotonic() + 20.0
        while not graph.clock and time.monotonic() < deadline:
            graph.spin_for(0.2)
        assert graph.clock, 'the clock did not start once the node was up'
    finally:
        graph.close()
        output = _stop(process)
    assert 'graph up after' in output, output


@pytest.mark.ros
def test_clock_starts_after_the_timeout_naming_what_is_missing(ros_env):
    process = _start(ros_env, "wait_for_nodes:=['never_started']", 'wait_timeout:=2.0')
    graph = _Graph()
    try:
        deadline = time.monotonic() + 30.0
        while not graph.clock and time.monotonic() < deadline:
            graph.spin_for(0.2)
        assert graph.clock, 'the clock never started'
    finally:
        graph.close()
        output = _stop(process)
    assert 'without the node(s) never_started' in output, output


@pytest.mark.ros
@pytest.mark.parametrize('pace_lead', [0.3, 0.0])
def test_clock_stays_within_the_lead_of_a_slow_controller(ros_env, pace_lead):
    """A controller that publishes only every 0.4 s of wall time (a starved machine)
    keeps the clock within ``pace_lead`` of its commands; without pacing (0) the 5x
    clock runs seconds ahead of it."""
    process = _start(ros_env, f'pace_lead:={pace_lead}')
    graph = _Graph()
    publisher = graph.listener.create_publisher(Float64, 'thrusters/left/thrust', 10)
    leads = []
    try:
        deadline = time.monotonic() + 30.0
        while not graph.clock and time.monotonic() < deadline:
            graph.spin_for(0.2)
        assert graph.clock, 'the clock never started'
        for _ in range(15):
            sent_at = graph.clock[-1].clock
            publisher.publish(Float64(data=0.0))
            graph.spin_for(0.4)
            newest = graph.clock[-1].clock
            leads.append((newest.sec - sent_at.sec) + 1e-9 * (newest.nanosec - sent_at.nanosec))
    finally:
        graph.close()
        _stop(process)
    steady = sorted(leads[3:])            # after discovery
    if pace_lead:
        # The command arrives a little after the clock it was sent at: one step of slack.
        assert steady[-2] <= pace_lead + 0.15, leads
    else:
        assert steady[len(steady) // 2] > 1.0, leads
