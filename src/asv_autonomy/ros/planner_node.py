"""Planner node: MDP value function under currents + sampling-based thrust optimisation
(``planning/planner.py``), informative survey sampling and reactions to ``diagnostics``.

In: ``odometry/filtered``, ``goal_pose`` (switches to goto), ``safety/estop``,
``map/<information_field>/uncertainty`` (where the survey samples next),
``perception/navigable/grid`` (blocked cells join land in the costs), ``diagnostics``
(thruster, GPS and stuck statuses, see ``planning/health.py``).
Out: ``thrusters/{left,right}/thrust`` at the control rate (zero while ``safety/estop`` is
true or odometry is stale), ``plan/path`` (expected track), ``plan/goal``.

The chart of the lake (land, charted obstacles) is a ``chart.*`` world description (the
simulator's lake by default; a depth grid file on a real site); the current the planner
expects is ``current_file`` (``.npz``/NetCDF grid) or a uniform ``current_velocity``, with
``current_spread`` as its uncertainty.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from rclpy.node import Node
from std_msgs.msg import Bool, Float64

from asv_autonomy.measurements import InvalidInput
from asv_autonomy.planning.flow import FlowField
from asv_autonomy.planning.health import HealthMonitor, HealthMonitorConfig
from asv_autonomy.planning.planner import Planner, PlannerConfig
from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.planning.workspace import Workspace
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import ConfigError, declare_config
from asv_autonomy.ros.spin import run_node, set_torch_threads
from asv_autonomy.sim.world import World, WorldConfig


@dataclass(frozen=True)
class PlannerNodeConfig:
    """Args:
        map_frame: frame of odometry, goals, grids and the published plan.
        control_rate: [Hz] thrust command rate (on the node clock).
        odometry_timeout: [s] older odometry -> zero thrust.
        information_field: map field whose uncertainty guides the survey ('' = none: the
            planner's own coverage model).
        chart_resolution: [m] cell of the planner's land/obstacle distance grid.
        current_file: ``.npz``/``.nc`` current grid stretched over the chart ('' = uniform
            ``current_velocity``).
        current_velocity: [m/s] (east, north) expected uniform current.
        current_spread: [m/s] 1-sigma uncertainty of the current per component.
        current_resolution: [m] cell of the current grid.
        device: torch device of the planner ('cpu', 'cuda').
        torch_threads: CPU threads of the rollouts and solves (0 keeps torch's default).
            1 by default: with the other nodes on the same cores and OpenMP's threads
            sleeping between calls (``OMP_WAIT_POLICY=PASSIVE``), the optimiser ran
            1024 x 50 at 115 Hz on one thread and 94-96 Hz on two on a 2-core CPU.
        chart: the lake's chart (same fields as the simulator's world).
    """

    map_frame: str = 'map'
    control_rate: float = 10.0
    odometry_timeout: float = 1.0
    information_field: str = 'bathymetry'
    chart_resolution: float = 5.0
    current_file: str = ''
    current_velocity: tuple[float, ...] = (0.0, 0.0)
    current_spread: float = 0.1
    current_resolution: float = 20.0
    device: str = 'cpu'
    torch_threads: int = 1
    chart: WorldConfig = WorldConfig()

    def __post_init__(self):
        for name in ('control_rate', 'odometry_timeout', 'chart_resolution',
                     'current_resolution'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        if len(self.current_velocity) != 2 or not np.isfinite(self.current_velocity).all():
            raise ValueError(f'current_velocity must be finite (east, north), got '
                             f'{self.current_velocity}')
        if not (math.isfinite(self.current_spread) and self.current_spread >= 0.0):
            raise ValueError(f'current_spread must be >= 0, got {self.current_spread}')
        if self.torch_threads < 0:
            raise ValueError(f'torch_threads must be >= 0, got {self.torch_threads}')


class PlannerNode(Node):
    def __init__(self):
        super().__init__('controller')
        self.config = cfg = declare_config(self, PlannerNodeConfig)
        planner_config = declare_config(self, PlannerConfig)
        vessel = declare_config(self, VesselParams, 'vessel')
        self.monitor = HealthMonitor(declare_config(self, HealthMonitorConfig, 'health'))
        set_torch_threads(cfg.torch_threads)
        try:
            self.planner = build_planner(cfg, planner_config, vessel)
        except (ValueError, OSError, RuntimeError) as error:
            raise ConfigError('chart/current/planner', str(error)) from error
        # Compile before subscribing: the simulator's clock waits for our subscriptions,
        # and a real boat should not sit still for the first command.
        self.get_logger().info(f'optimiser ready in {self.planner.warm_up():.1f} s')
        self.health = InputHealth(self)
        self.odometry = None
        self.estop = False
        self.last_command = None
        frame = cfg.map_frame
        self.left_pub = self.create_publisher(Float64, 'thrusters/left/thrust', qos.COMMAND)
        self.right_pub = self.create_publisher(Float64, 'thrusters/right/thrust', qos.COMMAND)
        self.path_pub = self.create_publisher(Path, 'plan/path', qos.LATCHED)
        self.goal_pub = self.create_publisher(PoseStamped, 'plan/goal', qos.COMMAND)
        guard = self.health.guard
        self.create_subscription(Odometry, 'odometry/filtered', guard(
            'odometry/filtered', lambda m: cv.from_odometry(m, frame_id=frame),
            self.on_odometry), qos.SENSOR)
        self.create_subscription(PoseStamped, 'goal_pose', guard(
            'goal_pose', lambda m: cv.from_pose_stamped(m, frame_id=frame), self.on_goal),
            qos.COMMAND)
        self.create_subscription(Bool, 'safety/estop', guard(
            'safety/estop', lambda m: bool(m.data), self.on_estop), qos.LATCHED)
        # Many publishers share diagnostics: their stamps interleave, so no order check.
        self.create_subscription(DiagnosticArray, 'diagnostics', guard(
            'diagnostics', cv.read_diagnostics, self.on_diagnostics, stamp_check=False),
            qos.SENSOR)
        self.create_subscription(OccupancyGrid, 'perception/navigable/grid', guard(
            'perception/navigable/grid', lambda m: _level_grid(m, frame), self.on_navigable),
            qos.SENSOR)
        if cfg.information_field:
            topic = f'map/{cfg.information_field}/uncertainty'
            self.create_subscription(OccupancyGrid, topic, guard(
                topic, lambda m: _level_grid(m, frame), self.on_uncertainty), qos.LATCHED)
        self.create_timer(1.0 / cfg.control_rate, self.control)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_odometry(self, odometry) -> None:
        self.odometry = odometry
        self.monitor.odometry(odometry)

    def on_goal(self, pose) -> None:
        self.planner.set_goal(pose[0], pose[1])

    def on_estop(self, engaged: bool) -> None:
        if engaged != self.estop:
            self.get_logger().warning(f'e-stop {"ENGAGED" if engaged else "released"}')
        self.estop = engaged

    def on_diagnostics(self, statuses) -> None:
        own = self.get_fully_qualified_name()
        now = self.now()
        for status in statuses:
            if status['name'] != own:
                self.monitor.report(status['name'], status['level'], now)

    def on_navigable(self, grid: cv.GridArray) -> None:
        half = 0.5 * grid.resolution
        self.planner.set_blocked(grid.data, (grid.origin_x + half, grid.origin_y + half),
                                 grid.resolution)

    def on_uncertainty(self, grid: cv.GridArray) -> None:
        std = cv.values_from_occupancy(grid.data)
        if min(std.shape) < 2:
            return
        half = 0.5 * grid.resolution
        self.planner.set_information(Raster(std, (grid.origin_x + half, grid.origin_y + half),
                                            grid.resolution))

    def control(self) -> None:
        now = self.now()
        self.planner.set_health(self.monitor.health(now))
        fresh = (self.odometry is not None
                 and now - self.odometry.stamp <= self.config.odometry_timeout)
        command = None
        if fresh:
            try:
                command = self.planner.plan(self.odometry)
            except InvalidInput as error:
                self.health.drop('odometry/filtered', error.reason, str(error))
        self.last_command = command
        run = command is not None and not self.estop
        self.left_pub.publish(cv.to_float64(command.thrust_left if run else 0.0))
        self.right_pub.publish(cv.to_float64(command.thrust_right if run else 0.0))
        if command is not None:
            frame = self.config.map_frame
            self.goal_pub.publish(cv.to_pose_stamped(*command.goal, 0.0, now, frame))
            self.path_pub.publish(cv.to_path(command.path, now, frame))

    def status_values(self) -> dict:
        command = self.last_command
        health = self.planner.health
        values = {'thrust_efficiency': list(health.thrust_efficiency), 'gps_ok': health.gps_ok,
                  'estop': self.estop,
                  'distance_travelled': round(self.planner.distance_travelled, 1),
                  'current_correction': [round(v, 3) for v in self.planner.current_correction]}
        if command is not None:
            values.update(mode=command.mode, done=command.done,
                          solve_ms=round(1e3 * command.solve_s, 2))
        return values

    def condition(self) -> tuple[int, str]:
        if self.estop:
            return cv.WARN, 'e-stop engaged: thrust zero'
        if self.last_command is None:
            return cv.WARN, 'no fresh odometry: thrust zero'
        if self.last_command.mode in ('hold', 'backout'):
            return cv.WARN, f'{self.last_command.mode}: reacting to the boat\'s health'
        return cv.OK, ''


def build_planner(cfg: PlannerNodeConfig, planner_config: PlannerConfig,
                  vessel: VesselParams) -> Planner:
    """The node's planner: the chart's workspace and the expected current from ``cfg``
    (also used by the headless missions of ``asv sim faults``).

    Raises:
        ValueError, OSError, RuntimeError: a chart, current file or planner setting that
            cannot be used.
    """
    workspace = Workspace.from_world(World(cfg.chart), cfg.chart_resolution,
                                     min_depth=vessel.draft, device=cfg.device)
    return Planner(planner_config, vessel, workspace, _flow(cfg, workspace.extent),
                   cfg.device)


def _flow(cfg: PlannerNodeConfig, extent) -> FlowField:
    if cfg.current_file:
        return FlowField.from_file(cfg.current_file, extent, cfg.current_resolution,
                                   spread=cfg.current_spread)
    return FlowField.uniform(tuple(cfg.current_velocity), cfg.current_spread, extent,
                             cfg.current_resolution)


def _level_grid(msg: OccupancyGrid, frame: str) -> cv.GridArray:
    grid = cv.from_occupancy_grid(msg, frame_id=frame)
    if abs(grid.origin_yaw) > 1e-6:
        raise InvalidInput('malformed', f'rotated grid (origin yaw {grid.origin_yaw:.3f} rad)')
    return grid


def main(args=None):
    # torch.compile's on-disk cache defaults to /tmp, which a boat loses at every reboot:
    # the first optimisation would then compile again (about a minute on a 2-core CPU,
    # seconds from the cache).
    os.environ.setdefault('TORCHINDUCTOR_CACHE_DIR', os.path.join(
        os.path.expanduser('~'), '.cache', 'asv_autonomy', 'torchinductor'))
    code = run_node(PlannerNode, args)
    # The node is shut down and its output flushed; skip the interpreter's teardown of
    # torch.compile's state (seconds on a busy CPU, more than a launcher waits after
    # SIGINT) and any solve still running in the worker thread.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    raise SystemExit(main())
