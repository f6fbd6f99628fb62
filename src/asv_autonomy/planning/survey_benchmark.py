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
               device: str = 'cpu', planner_config=None,
               sim_config: SimConfig | None = None) -> tuple[list[dict], np.ndarray]:
    """One survey; rows ``{"planner", "seed", "distance_m", "map_rmse", "map_std_mean",
    "time_s", "wall_s"}`` per distance mark reached, and the true track (N, 2) [m].
    ``planner_config``: the ``PlannerConfig`` of ``'asv'`` (default: survey mode, defaults,
    ``settings.polygon``). ``sim_config``: the simulator (default: ``SimConfig(seed=seed)``).

    Raises:
        ValueError: unknown planner.
    """
    start = time.perf_counter()
    rows = []
    cells = truth = None

    def score(sim: Simulator, mapper: GPMapper, mark: float, t: float) -> None:
        nonlocal cells, truth
        if cells is None:
            cells = water_cells(sim, np.asarray(settings.polygon, float).reshape(-1, 2),
                                settings.grid_resolution)
            truth = sim.world.depth(cells[:, 0], cells[:, 1])
        mean, std = mapper.predict(cells, t)
        rows.append({'planner': planner, 'seed': seed, 'distance_m': mark,
                     'map_rmse': float(np.sqrt(np.mean((mean - truth) ** 2))),
                     'map_std_mean': float(np.mean(std)),
                     'time_s': round(sim.elapsed, 2),
                     'wall_s': round(time.perf_counter() - start, 2)})

    track, _, _ = _survey(planner, seed, settings, device, planner_config, sim_config, score)
    return rows, track


def survey_map(planner: str, seed: int, distance: float, settings: SurveySettings,
               sim_config: SimConfig | None = None, device: str = 'cpu',
               planner_config=None) -> tuple[GPMapper, float]:
    """The map of a survey after ``distance`` [m] travelled (or where the survey ended:
    its pattern done, or ``settings.max_time``), and the distance actually travelled [m].
    ``settings.distances`` is ignored. Same arguments as `run_survey`."""
    settings = replace(settings, distances=(float(distance),))
    _, mapper, travelled = _survey(planner, seed, settings, device, planner_config,
                                   sim_config, lambda *_: None)
    return mapper, travelled


def _survey(planner: str, seed: int, settings: SurveySettings, device: str, planner_config,
            sim_config: SimConfig | None,
            on_mark) -> tuple[np.ndarray, GPMapper, float]:
    """Run one survey, calling ``on_mark(sim, mapper, mark, t)`` at each distance mark
    reached; the true track (N, 2) [m], the final mapper and the distance travelled [m]."""
    if planner not in SURVEY_PLANNERS:
        raise ValueError(f'unknown survey planner {planner!r}; choose from '
                         f'{", ".join(SURVEY_PLANNERS)}')
    sim = Simulator(sim_config if sim_config is not None else SimConfig(seed=seed))
    # The mapping node adds the transducer's draft to each sonar range (value_offsets).
    draft = sim.config.sonar.transducer_draft
    controller = _controller(planner, sim, settings, device, planner_config)
    # Simulated far faster than real time: adaptations inside the updates (reproducible).
    mapper = GPMapper(replace(settings.mapper, seed=seed, adapt_in_background=False))
    polygon = np.asarray(settings.polygon, float).reshape(-1, 2)
    info_grid = _grid_axes(polygon, settings.grid_resolution)
    period = 1.0 / settings.control_rate
    next_control = next_information = 0.0
    marks = list(settings.distances)
    track = []
    travelled, last_xy = 0.0, None
    while marks and sim.elapsed < settings.max_time:
        step = sim.step()
        odom = step.odometry
        xy = np.array([odom.x, odom.y])
        if last_xy is not None:
            travelled += float(np.hypot(*(xy - last_xy)))
        last_xy = xy
        if step.depth is not None and math.isfinite(step.depth.value):
            mapper.update(xy[None], step.time, np.array([step.depth.value + draft]))
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
            on_mark(sim, mapper, marks.pop(0), step.time)
    return np.array(track).reshape(-1, 2), mapper, travelled


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


def water_cells(sim: Simulator, polygon: np.ndarray, resolution: float) -> np.ndarray:
    """(N, 2) [m] evaluation points: grid cells inside the (convex) polygon, in water."""
    xs, ys = _grid_axes(polygon, resolution)
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    points = points[inside_polygon(points, polygon)]
    return points[sim.world.depth(points[:, 0], points[:, 1]) > sim.config.vessel.draft]


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Which points lie inside or on the polygon (either winding). Shapes: (N, 2), (V, 2)
    -> (N,) bool"""
    from matplotlib.path import Path
    return (Path(polygon).contains_points(points, radius=1e-6)
            | Path(polygon[::-1]).contains_points(points, radius=1e-6))


def _std_raster(mapper: GPMapper, axes: tuple[np.ndarray, np.ndarray], t: float) -> Raster:
    xs, ys = axes
    points = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    _, std = mapper.predict(points, t)        # the 1-sigma the mapping node publishes
    return Raster(std.reshape(len(ys), len(xs)), (float(xs[0]), float(ys[0])),
                  float(xs[1] - xs[0]))
