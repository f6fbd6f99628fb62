"""Simulator node: the built-in simulator on the contract topics, with ``/clock``.

It is the time source (``use_sim_time`` is false here): a wall-clock timer advances the
simulation so that simulated time runs ``real_time_factor`` times faster than wall time
(at most: ``pace_lead`` keeps the clock within reach of the stack's odometry and thrust
commands when the machine cannot run them that fast, see sim/pacing.py), publishes ``/clock`` every physics step, the sensors when they fall due, and the ground
truth on ``sim/*`` for evaluation only. It consumes ``thrusters/*/thrust`` and
``safety/estop``; the thrust watchdog and the e-stop live in the simulator core.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock as RosClock, ClockType
from rclpy.node import Node, NodeNameNonExistentError
from rclpy.task import Future
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import (CameraInfo, Image, Imu, NavSatFix, PointCloud2, Range,
                             Temperature)
from std_msgs.msg import Bool, Float64

from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import sim_messages as sm
from asv_autonomy.ros.sim_messages import SimMessages
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import ConfigError, declare_config
from asv_autonomy.ros.spin import run_node
from asv_autonomy.sim.faults import FaultSchedule
from asv_autonomy.sim.pacing import StackPacer
from asv_autonomy.sim.simulator import SimConfig, Simulator

THRUSTERS = ('left', 'right')
GOAL = 'goal_pose'
# Subscriptions rclpy makes for every node (use_sim_time, parameter events): a node that
# has only these has not created its own yet (it may still be loading a model).
INFRASTRUCTURE_TOPICS = ('/clock', '/parameter_events')


@dataclass(frozen=True)
class SimNodeConfig:
    """Args:
        duration: [s] simulated time after which the node exits (0: run until stopped).
        start_delay: [s] wall time the clock still holds once the graph is up (see
            ``wait_for_nodes``), so that the other nodes discover each other too.
        wait_for_nodes: names of nodes (in the simulator's namespace) that must be running
            with their subscriptions before the clock starts: the mission begins when
            localization, mapping and the controller are up, however long their start
            takes on a loaded machine.
        wait_timeout: [s] wall time after which the clock starts anyway (with a warning
            naming what is missing), so a simulator run on its own still runs.
        real_time_factor: simulated seconds per wall second.
        tick_rate: [Hz] wall-clock rate of the stepping timer (several steps per tick at
            high real-time factors).
        max_lag: [s] simulated time the simulation may fall behind its schedule before it
            gives up catching up (the achieved factor is then lower, and reported).
        pace_lead: [s] simulated time the clock may run ahead of the newest
            ``odometry/filtered`` stamp and of the newest thrust command (0: no pacing;
            must be shorter than the thrust watchdog's ``sim.thrust_timeout``).
        pace_timeout: [s] wall time after which a paced signal that stopped (node
            finished, e-stop) no longer holds the clock.
        ground_truth_rate: [Hz] of ``sim/ground_truth/odometry``.
        temperature_truth_period: [s] between publications of the true temperature field.
        fault_period: [s] between ``sim/faults`` publications while a fault is active.
        goal: ``'x,y'`` [m] in ``map`` that the simulated operator sends on ``goal_pose``
            when the clock starts (a goto mission); '' = none (the controller's survey).
            A string, because a launch argument cannot carry an empty list.
        map_frame, base_frame, gps_frame, imu_frame, sonar_frame, camera_frame: frame ids.
    """

    duration: float = 0.0
    start_delay: float = 1.0
    wait_for_nodes: tuple[str, ...] = ()
    wait_timeout: float = 60.0
    real_time_factor: float = 1.0
    tick_rate: float = 100.0
    max_lag: float = 1.0
    pace_lead: float = 0.3
    pace_timeout: float = 1.0
    ground_truth_rate: float = 10.0
    temperature_truth_period: float = 10.0
    fault_period: float = 1.0
    goal: str = ''
    map_frame: str = 'map'
    base_frame: str = 'base_link'
    gps_frame: str = 'gps_link'
    imu_frame: str = 'imu_link'
    sonar_frame: str = 'sonar_link'
    camera_frame: str = 'camera_link'

    def __post_init__(self):
        for name in ('duration', 'start_delay', 'wait_timeout', 'pace_lead'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'{name} must be >= 0 s, got {value}')
        for name in ('real_time_factor', 'tick_rate', 'max_lag', 'ground_truth_rate',
                     'temperature_truth_period', 'fault_period', 'pace_timeout'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        self.goal_xy   # refuses a malformed goal

    @property
    def goal_xy(self) -> tuple[float, float] | None:
        """[m] the parsed ``goal``, None when empty."""
        if not self.goal.strip():
            return None
        try:
            x, y = (float(v) for v in self.goal.split(','))
        except ValueError:
            x = y = math.nan
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"goal must be '' or 'x,y' in metres, got {self.goal!r}")
        return x, y


class SimNode(Node):
    def __init__(self):
        super().__init__('sim')
        self.config = declare_config(self, SimNodeConfig)
        sim_config = declare_config(self, SimConfig, 'sim')
        try:
            faults = (FaultSchedule.from_yaml(sim_config.fault_schedule)
                      if sim_config.fault_schedule else None)
            self.sim = Simulator(sim_config, faults)
        except (OSError, ValueError) as error:
            raise ConfigError('sim.fault_schedule' if sim_config.fault_schedule else 'sim', str(error)) from error
        if self.config.pace_lead >= sim_config.thrust_timeout:
            raise ConfigError('pace_lead', f'{self.config.pace_lead} s must be shorter than '
                              f'sim.thrust_timeout ({sim_config.thrust_timeout} s): the '
                              'watchdog would zero thrust the clock ran ahead of')
        self.pacer = (StackPacer(self.config.pace_lead, self.config.pace_timeout)
                      if self.config.pace_lead > 0.0 else None)
        self.done = Future()
        self.health = InputHealth(self)
        self._create_publishers()
        for side in THRUSTERS:
            topic = f'thrusters/{side}/thrust'
            self.create_subscription(Float64, topic, self.health.guard(
                topic, cv.from_float64, lambda value, side=side: self.on_thrust(side, value)),
                qos.COMMAND)
        if self.pacer is not None:
            self.create_subscription(Odometry, 'odometry/filtered', self.health.guard(
                'odometry/filtered', lambda m: cv.from_time(m.header.stamp),
                lambda stamp: self.pacer.observe('odometry', stamp, time.monotonic())),
                qos.SENSOR)
        self.create_subscription(Bool, 'safety/estop', self.health.guard(
            'safety/estop', lambda m: bool(m.data), self.sim.set_estop), qos.LATCHED)
        self.last = None          # latest SimStep
        self.messages = SimMessages(self.sim, self.config)
        self._publish_static_truth()
        self._waiting_since = time.monotonic()
        self._wall_start = None          # set once the graph is up
        self._next_graph_check = 0.0
        self._elapsed_at_start = self.sim.elapsed
        self._achieved = (time.monotonic(), self.sim.elapsed)
        self.achieved_rtf = 0.0
        # The simulator is the time source: its timer runs on the wall (steady) clock.
        self.create_timer(1.0 / self.config.tick_rate, self.tick,
                          clock=RosClock(clock_type=ClockType.STEADY_TIME))
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)
        self.get_logger().info(
            f'simulating at {self.config.real_time_factor}x real time'
            + (f' for {self.config.duration} s' if self.config.duration else ''))

    def _create_publishers(self):
        """One publisher per topic of ``SimMessages`` (sensors reliable: see qos)."""
        topics = [
            (sm.CLOCK, Clock, 10), (sm.GPS, NavSatFix, qos.SENSOR_SOURCE),
            (sm.IMU, Imu, qos.SENSOR_SOURCE), (sm.DEPTH, Range, qos.SENSOR_SOURCE),
            (sm.TEMPERATURE, Temperature, qos.SENSOR_SOURCE),
            (sm.IMAGE, Image, qos.SENSOR_SOURCE), (sm.CAMERA_INFO, CameraInfo, qos.SENSOR_SOURCE),
            (sm.TRUTH_ODOMETRY, Odometry, 10), (sm.TRUTH_MASK, Image, 10),
            (sm.truth_field_topic('bathymetry'), PointCloud2, qos.LATCHED),
            (sm.truth_field_topic('temperature'), PointCloud2, qos.LATCHED),
            (sm.FAULTS, DiagnosticArray, qos.LATCHED), (GOAL, PoseStamped, qos.COMMAND)]
        self.publishers_by_topic = {topic: self.create_publisher(kind, topic, profile)
                                    for topic, kind, profile in topics}

    # ------------------------------------------------------------------ inputs
    def on_thrust(self, side: str, value: float) -> None:
        self.sim.command_thruster(THRUSTERS.index(side), value)
        if self.pacer is not None:
            self.pacer.observe('thrust', self.sim.time, time.monotonic())

    # ------------------------------------------------------------------ stepping
    def tick(self) -> None:
        if self.done.done():
            return
        cfg = self.config
        now = time.monotonic()
        if self._wall_start is None:
            self._wait_for_graph(now)
            return
        if now < self._wall_start:
            return
        if self.config.goal_xy and self.sim.elapsed == self._elapsed_at_start:
            self.publishers_by_topic[GOAL].publish(cv.to_pose_stamped(
                *self.config.goal_xy, 0.0, self.sim.time, self.config.map_frame))
        target = self._elapsed_at_start + (now - self._wall_start) * cfg.real_time_factor
        if target - self.sim.elapsed > cfg.max_lag:
            # Too slow for the requested factor: re-anchor instead of bursting to catch up.
            self._wall_start = now - (self.sim.elapsed - self._elapsed_at_start) / \
                cfg.real_time_factor
            target = self.sim.elapsed + self.sim.config.dt
        while self.sim.elapsed + 0.5 * self.sim.config.dt <= target:
            if self.pacer is not None and not self.pacer.allows(
                    self.sim.time + self.sim.config.dt, now):
                break                  # the stack is behind: hold the clock
            self.publish_step(self.sim.step())
            if cfg.duration and self.sim.elapsed >= cfg.duration - 1e-9:
                self.get_logger().info(f'reached duration {cfg.duration} s: stopping')
                self.done.set_result(True)
                return
        wall0, sim0 = self._achieved
        if now - wall0 >= 2.0:
            self.achieved_rtf = (self.sim.elapsed - sim0) / (now - wall0)
            self._achieved = (now, self.sim.elapsed)

    def missing_nodes(self) -> list[str]:
        """The ``wait_for_nodes`` not yet in the graph with a subscription."""
        namespace = self.get_namespace()
        running = set(self.get_node_names_and_namespaces())
        missing = []
        for name in self.config.wait_for_nodes:
            try:
                up = (name, namespace) in running and any(
                    topic not in INFRASTRUCTURE_TOPICS for topic, _ in
                    self.get_subscriber_names_and_types_by_node(name, namespace))
            except NodeNameNonExistentError:      # left the graph since the listing
                up = False
            if not up:
                missing.append(name)
        return missing

    def _wait_for_graph(self, now: float) -> None:
        if now < self._next_graph_check:
            return
        self._next_graph_check = now + 0.1
        missing = self.missing_nodes()
        waited = now - self._waiting_since
        if missing and waited < self.config.wait_timeout:
            return
        if missing:
            self.get_logger().warning(f'starting after {waited:.1f} s without the node(s) '
                                      + ', '.join(missing))
        else:
            self.get_logger().info(f'graph up after {waited:.1f} s: starting the clock in '
                                   f'{self.config.start_delay} s')
        self._wall_start = now + self.config.start_delay
        self._achieved = (self._wall_start, self.sim.elapsed)

    def publish_step(self, step) -> None:
        self.last = step
        for topic, msg in self.messages.step(step):
            self.publishers_by_topic[topic].publish(msg)

    def _publish_static_truth(self) -> None:
        for topic, msg in self.messages.static():
            self.publishers_by_topic[topic].publish(msg)

    # ------------------------------------------------------------------ health
    def status_values(self) -> dict:
        values = {'elapsed_s': round(self.sim.elapsed, 3),
                  'real_time_factor': round(self.achieved_rtf, 3),
                  'energy_J': round(self.sim.energy_j, 1), 'contacts': self.sim.contacts}
        if self.pacer is not None:
            values.update(paced_ticks=self.pacer.held,
                          paced_by=','.join(self.pacer.active(time.monotonic())))
        if self.last is not None:
            values.update(watchdog=self.last.watchdog, estop=self.last.estop,
                          grounded=self.last.grounded, collision=self.last.collision,
                          active_faults=len(self.last.active_faults))
        return values

    def condition(self) -> tuple[int, str]:
        step = self.last
        if step is None:
            return cv.OK, ''
        if step.grounded or step.collision:
            return cv.WARN, 'boat aground' if step.grounded else 'boat against an obstacle'
        if step.estop:
            return cv.WARN, 'e-stop engaged: thrust zero'
        if step.watchdog:
            return cv.WARN, 'no thrust command within the timeout: thrust zero'
        return cv.OK, ''


def main(args=None):
    return run_node(SimNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
