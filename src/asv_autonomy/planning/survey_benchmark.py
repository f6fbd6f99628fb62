"""Informative survey against the lawnmower at equal distance travelled.

Both survey the same area of the simulator's lake (``SurveySettings.polygon``) from the same
start, headless (``sim.Simulator``, true odometry at the control rate), and feed every sonar
reading at its true position into the same streaming GP mapper (``mapping.GPMapper``). At
each distance mark the map is scored against the true bathymetry at the water cells of the
survey area: the question is how good the map is after the same distance, i.e. the same
battery. The lawnmower is ``planning.baseline.BaselineController`` with its line spacing;
the informative planner (``planning.planner.Planner`` in survey mode) reads the mapper's
standard deviation every ``information_period`` seconds, as the node reads
``map/<field>/uncertainty``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from ..mapping.gp import GPMapper, GPMapperConfig
from ..sim.simulator import SimConfig, Simulator
from .baseline import BaselineConfig, BaselineController
from .flow import FlowField
from .raster import Raster
from .workspace import Workspace

SURVEY_PLANNERS = ('asv', 'baseline')


@dataclass(frozen=True)
class SurveySettings:
    """Args:
        polygon: [m] survey area (config/autonomy.yaml's default), flat x0, y0, x1, y1, ...
        distances: [m] distance marks at which the map is scored.
        line_spacing: [m] the lawnmower's line spacing (config/autonomy.yaml's default).
        control_rate: [Hz] commands.
        information_period: [s] how often the planner reads the map's uncertainty.
        grid_resolution: [m] evaluation and information grid.
        max_time: [s] simulated time limit.
        mapper: the GP both surveys feed (as config/autonomy.yaml's bathymetry field).
    """

    polygon: tuple[float, ...] = (-50.0, 40.0, 150.0, 40.0, 150.0, 190.0, -50.0, 190.0)
    distances: tuple[float, ...] = (250.0, 500.0, 750.0, 1000.0, 1250.0)
    line_spacing: float = 25.0
    control_rate: float = 5.0
    information_period: float = 10.0
    grid_resolution: float = 5.0
    max_time: float = 2400.0
    mapper: GPMapperConfig = GPMapperConfig(inducing_spacing=10.0)


def run_survey(planner: str, seed: int, settings: SurveySettings = SurveySettings(),
               device: str = 'cpu', planner_config=None) -> tuple[list[dict], np.ndarray]:
    """One survey; rows ``{"planner", "seed", "distance_m", "map_rmse", "map_std_mean",
    "time_s", "wall_s"}`` per distance mark reached, and the true track (N, 2) [m].
    ``planner_config``: the ``PlannerConfig`` of ``'asv'`` (default: survey mode, defaults,
    ``settings.polygon``).

    Raises:
        ValueError: unknown planner.
    """
    if planner not in SURVEY_PLANNERS:
        raise ValueError(f'unknown survey planner {planner!r}; choose from '
                         f'{", ".join(SURVEY_PLANNERS)}')
    start = time.perf_counter()
    sim = Simulator(SimConfig(seed=seed))
    controller = _controller(planner, sim, settings, device, planner_config)
    mapper = GPMapper(replace(settings.mapper, seed=seed))
    polygon = np.asarray(settings.polygon, float).reshape(-1, 2)
    cells = _water_cells(sim, polygon, settings.grid_resolution)
    truth = sim.world.depth(cells[:, 0], cells[:, 1])
    info_grid = _grid_axes(polygon, settings.grid_resolution)
    period = 1.0 / settings.control_rate
    next_control = next_information = 0.0
    marks = list(settings.distances)
    rows, track = [], []
    travelled, last_xy = 0.0, None
    while marks and sim.elapsed < settings.max_time:
        step = sim.step()
        odom = step.odometry
        xy = np.array([odom.x, odom.y])
        if last_xy is not None:
            travelled += float(np.hypot(*(xy - last_xy)))
        last_xy = xy
        if step.depth is not None and math.isfinite(step.depth.value):
            mapper.update(xy[None], step.time, np.array([step.depth.value]))
        if sim.elapsed >= next_control - 1e-9:
            next_control += period
            track.append(xy)
            if planner == 'asv' and sim.elapsed >= next_information and mapper.num_samples:
                next_information += settings.information_period
                controller.set_information(_std_raster(mapper, info_grid, step.time))
            command = controller.plan(odom)
            sim.command_thrust(command.thrust_left, command.thrust_right)
            if command.done:
                break
        if travelled >= marks[0]:
            mean, var = mapper.predict(cells, step.time)
            rows.append({'planner': planner, 'seed': seed, 'distance_m': marks.pop(0),
                         'map_rmse': float(np.sqrt(np.mean((mean - truth) ** 2))),
                         'map_std_mean': float(np.mean(np.sqrt(var))),
                         'time_s': round(sim.elapsed, 2),
                         'wall_s': round(time.perf_counter() - start, 2)})
    return rows, np.array(track).reshape(-1, 2)


def _controller(planner: str, sim: Simulator, settings: SurveySettings, device: str,
                planner_config):
    vessel = sim.config.vessel
    if planner == 'baseline':
        return BaselineController(BaselineConfig(survey_polygon=settings.polygon,
                                                 line_spacing=settings.line_spacing), vessel)
    from .planner import Planner, PlannerConfig
    workspace = Workspace.from_world(sim.world, 5.0, min_depth=vessel.draft, device=device)
    flow = FlowField.uniform((0.0, 0.0), 0.1, workspace.extent, 20.0)   # current unknown
    config = planner_config or PlannerConfig(mode='survey', survey_polygon=settings.polygon)
    return Planner(config, vessel, workspace, flow, device)


def _grid_axes(polygon: np.ndarray, resolution: float) -> tuple[np.ndarray, np.ndarray]:
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    return (np.arange(low[0], high[0] + 1e-9, resolution),
            np.arange(low[1], high[1] + 1e-9, resolution))


def _water_cells(sim: Simulator, polygon: np.ndarray, resolution: float) -> np.ndarray:
    """(N, 2) [m] evaluation points: grid cells inside the (convex) polygon, in water."""
    from matplotlib.path import Path
    xs, ys = _grid_axes(polygon, resolution)
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    inside = Path(polygon).contains_points(points, radius=1e-6) | \
        Path(polygon[::-1]).contains_points(points, radius=1e-6)
    points = points[inside]
    return points[sim.world.depth(points[:, 0], points[:, 1]) > sim.config.vessel.draft]


def _std_raster(mapper: GPMapper, axes: tuple[np.ndarray, np.ndarray], t: float) -> Raster:
    xs, ys = axes
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    _, std = mapper.predict(points, t)        # the 1-sigma the mapping node publishes
    return Raster(std.reshape(len(ys), len(xs)), (float(xs[0]), float(ys[0])),
                  float(xs[1] - xs[0]))
