"""The simulated mission without ROS: simulator, localization and a controller (the
baseline or the planner) in one process, stepped as fast as the CPU allows.

For datasets (``asv sim faults`` writes labelled bags for the anomaly detector): the nodes'
logic runs in the same order as on the ROS graph (sensors -> EKF -> odometry at
``odometry_rate`` -> controller at ``control_rate`` -> thrust), without DDS, processes or
timing jitter, so a seed always gives the same mission.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, NamedTuple

from typing import Protocol

from asv_autonomy.localization import Localizer
from asv_autonomy.measurements import InvalidInput, PlanarOdometry
from asv_autonomy.planning.health import HealthMonitor
from asv_autonomy.planning.planner import Planner, PlannerCommand
from asv_autonomy.sim.simulator import Simulator, SimStep


@dataclass(frozen=True)
class HeadlessConfig:
    """Args:
        duration: [s] simulated time of the mission.
        odometry_rate: [Hz] of the localization output (as LocalizationNodeConfig).
        control_rate: [Hz] of the thrust commands (as the controller node).
        odometry_timeout: [s] older odometry -> zero thrust (as the controller node).
        idle_start: [s] the controller starts this long after the simulator and nothing
            is commanded before: on the ROS graph the planner starts seconds after the
            simulator, so the boat sets off from rest with the localization running.
    """

    duration: float = 600.0
    odometry_rate: float = 20.0
    control_rate: float = 10.0
    odometry_timeout: float = 1.0
    idle_start: float = 0.0

    def __post_init__(self):
        for name in ('duration', 'odometry_rate', 'control_rate', 'odometry_timeout'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        if not (math.isfinite(self.idle_start) and self.idle_start >= 0.0):
            raise ValueError(f'idle_start must be >= 0 s, got {self.idle_start}')


class MissionStep(NamedTuple):
    """One simulator step and what the autonomy did in it.

    Args:
        sim: the simulator's step (true state, sensor readings, active faults).
        odometry: localization output published this step, else None.
        thrust: (left, right) [N] commanded this step, else None.
    """

    sim: SimStep
    odometry: PlanarOdometry | None
    thrust: tuple[float, float] | None


class Controller(Protocol):
    """What the loop drives the boat with: ``BaselineController`` or a `PlannerLoop`."""

    def plan(self, odometry: PlanarOdometry):
        """A command with ``thrust_left``, ``thrust_right`` [N]."""


class PlannerLoop:
    """The planner as the planner node runs it: before each command the health monitor
    sees the odometry (a coasting filter = GPS lost) and the planner gets the health.
    No diagnostics reach it here (no anomaly or driver nodes run headless).

    Args:
        planner: a warmed-up or fresh ``Planner`` (synchronous solves: set
            ``background_solve=False`` for a reproducible mission).
        monitor: the planner node's health monitor configuration in an instance.
    """

    def __init__(self, planner: Planner, monitor: HealthMonitor):
        self.planner = planner
        self.monitor = monitor

    def plan(self, odometry: PlanarOdometry) -> PlannerCommand:
        self.monitor.odometry(odometry)
        self.planner.set_health(self.monitor.health(odometry.stamp))
        return self.planner.plan(odometry)


def run_headless(sim: Simulator, localizer: Localizer, controller: Controller,
                 config: HeadlessConfig = HeadlessConfig()) -> Iterator[MissionStep]:
    """Step the closed loop for ``config.duration`` simulated seconds.

    Readings the localizer refuses (outliers, NaN) are skipped, as the node drops them.
    """
    odometry_period, control_period = 1.0 / config.odometry_rate, 1.0 / config.control_rate
    next_odometry = sim.time
    next_control = sim.time + config.idle_start
    latest: PlanarOdometry | None = None
    end = sim.elapsed + config.duration
    while sim.elapsed + 0.5 * sim.config.dt < end:
        step = sim.step()
        for reading, feed in ((step.imu, localizer.imu), (step.gnss, localizer.gnss)):
            if reading is not None:
                try:
                    feed(reading)
                except InvalidInput:
                    pass
        odometry = thrust = None
        if step.time >= next_odometry - 1e-9:
            next_odometry += odometry_period
            odometry = localizer.estimate()
            latest = odometry or latest
        if step.time >= next_control - 1e-9:
            next_control += control_period
            fresh = latest is not None and step.time - latest.stamp <= config.odometry_timeout
            command = controller.plan(latest) if fresh else None
            thrust = ((command.thrust_left, command.thrust_right) if command is not None
                      else (0.0, 0.0))
            sim.command_thrust(*thrust)
        yield MissionStep(step, odometry, thrust)
