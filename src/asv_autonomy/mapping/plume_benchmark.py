"""Plume tracking in the simulator: the spatio-temporal temperature map against a static one.

Protocol. One headless survey (``sim.headless.run_headless``: simulator, localization and
the lawnmower ``BaselineController`` in one process, seeded). Every temperature reading is
placed at the latest odometry position (readings before the first odometry are skipped)
and folded, in time order and one update per reading (the mapping node's default
``batch_size``), into three maps of the same configuration (``MODELS``):

* ``spatiotemporal``: the mapper the mapping node builds from it (``make_mapper``: with
  ``temporal_timescale`` > 0 and ``static_background``, a static background plus a fading
  anomaly, `drifting.DriftingFieldMapper`);
* ``static``: a `GPMapper` with ``temporal_timescale=0`` (all readings weigh the same
  however old);
* ``fading``: a `GPMapper` with the configured timescale and ``static_background=False``
  (the whole field fades: the ablation of the background).

Every ``every_s`` simulated seconds the maps' means at that moment are scored against the
TRUE temperature at that moment (``Simulator.ground_truth_field``) over the area surveyed
so far: the water cells of that grid within ``radius_m`` of the true track so far (as
``asv report``'s ``map_rmse``), and over the plume part of it (cells where the plume's
excess temperature exceeds ``plume_threshold``). The question is whether forgetting old
readings keeps the map closer to the current, drifting field than remembering them all.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, replace
from itertools import chain
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.spatial import cKDTree

from ..jsonio import strict_json
from ..localization import LocalizationConfig, Localizer
from ..planning.baseline import BaselineConfig
from ..sim.headless import Controller, HeadlessConfig, run_headless
from ..sim.simulator import SimConfig, Simulator
from .drifting import Mapper, make_mapper
from .gp import GPMapper, GPMapperConfig
from .grid import SURVEYED_RADIUS_M

MODELS = ('spatiotemporal', 'static', 'fading')
ROW_KEYS = ('t_s', 'n_samples', 'surveyed_cells', 'plume_cells', 'rmse_spatiotemporal',
            'rmse_static', 'rmse_fading', 'plume_rmse_spatiotemporal', 'plume_rmse_static',
            'plume_rmse_fading')
SUMMARY_KEYS = ('mean_rmse_spatiotemporal', 'mean_rmse_static', 'final_rmse_spatiotemporal',
                'final_rmse_static', 'fraction_spatiotemporal_lower',
                'mean_plume_rmse_spatiotemporal', 'mean_plume_rmse_static', 'mean_rmse_fading',
                'final_rmse_fading', 'mean_plume_rmse_fading')
_PLOT_MARGIN_M = 20.0   # map panels: the track's bounding box plus this


@dataclass(frozen=True)
class PlumeBenchConfig:
    """Args:
        seed: simulator seed (world noise, sensors, gusts).
        duration: [s] simulated mission time. The default covers the default lawnmower
            survey (config/autonomy.yaml: done after ~1440 s with seed 0, then the boat
            holds with zero thrust and drifts); it does not repeat, so the only revisits
            are neighbouring lines (20 m apart, closer than 2 ``radius_m``).
        every_s: [s] simulated time between evaluations (the first at ``every_s``).
        warmup_s: [s] evaluations at or before this time are left out of the summary
            (all of them in a mission this short: the summary is NaN).
        radius_m: [m] cells this close to the true track are surveyed.
        plume_threshold: [degC] plume excess temperature above which a cell is plume.
        pulse_period, pulse_duty: the outfall's duty cycle in the simulator
            (``TemperatureConfig.plume_pulse_*``): by default a plume that drifts within
            the mission (the simulator's default, a continuous release, barely changes in
            an hour: nothing to track); period 0 = continuous.
    """

    seed: int = 0
    duration: float = 1500.0
    every_s: float = 30.0
    warmup_s: float = 120.0
    radius_m: float = SURVEYED_RADIUS_M
    plume_threshold: float = 0.1
    pulse_period: float = 600.0
    pulse_duty: float = 0.4

    def __post_init__(self):
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f'seed must be an integer >= 0, got {self.seed!r}')
        for name in ('duration', 'every_s', 'radius_m', 'plume_threshold'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        if self.every_s > self.duration:
            raise ValueError(f'every_s ({self.every_s} s) must not exceed duration '
                             f'({self.duration} s): there would be no evaluation')
        if not (math.isfinite(self.warmup_s) and self.warmup_s >= 0.0):
            raise ValueError(f'warmup_s must be >= 0, got {self.warmup_s}')


@dataclass
class PlumeBenchResult:
    """Outcome of one benchmark run.

    Args:
        rows: one dict per evaluation, keys ``ROW_KEYS`` (NaN where a figure does not
            apply: no sample yet, no plume cell surveyed).
        summary: keys ``SUMMARY_KEYS``, see `summarize`.
        x, y: [m] axes of the map panels' grid (the track's bounding box plus a margin).
        truth: [degC] true temperature at the end, NaN on land.
        means: model name (``MODELS``) -> [degC] its map mean at the end, NaN on land.
        surveyed: the surveyed cells at the end.
        track: [m] the true track.

    Shapes:
        x: (nx,), y: (ny,), truth, means[...], surveyed: (ny, nx), track: (N, 2)
    """

    rows: list[dict]
    summary: dict
    x: np.ndarray
    y: np.ndarray
    truth: np.ndarray
    means: dict[str, np.ndarray]
    surveyed: np.ndarray
    track: np.ndarray


class SurveyedArea:
    """Which of a fixed set of points lie within ``radius`` of a growing track.

    Args:
        points: [m] the candidate points. radius: [m].

    Shapes:
        points: (P, 2)
    """

    def __init__(self, points: np.ndarray, radius: float):
        self._tree = cKDTree(points)
        self._radius = radius
        self.mask = np.zeros(len(points), bool)   # (P,) surveyed so far

    def add(self, track: np.ndarray) -> None:
        """Extend the track by ``track`` [m]. Shapes: track: (N, 2)"""
        if len(track):
            hits = self._tree.query_ball_point(track, self._radius, return_sorted=False)
            self.mask[np.fromiter(chain.from_iterable(hits), int)] = True


def map_errors(predict: Callable[[np.ndarray], np.ndarray], xy: np.ndarray,
               truth: np.ndarray, in_plume: np.ndarray) -> tuple[float, float]:
    """RMSE of a map's mean against the truth, over all points and over the plume ones.

    Args:
        predict: map mean [field unit] at points [m], (Q, 2) -> (Q,).
        xy: [m] evaluation points. truth: [field unit] true values there.
        in_plume: which points are plume.

    Returns:
        (rmse, plume_rmse); NaN where there is no point (no plume point).

    Shapes:
        xy: (Q, 2), truth: (Q,), in_plume: (Q,) bool
    """
    if not len(xy):
        return math.nan, math.nan
    squared = (np.asarray(predict(xy), float) - truth) ** 2
    plume = float(np.sqrt(squared[in_plume].mean())) if in_plume.any() else math.nan
    return float(np.sqrt(squared.mean())), plume


def summarize(rows: list[dict], warmup_s: float) -> dict:
    """Summary of the evaluations after ``warmup_s``: mean and final RMSE of each model,
    the fraction of evaluations where the spatio-temporal map is more accurate than the
    static one (both finite), and the mean plume RMSEs (over evaluations with plume
    cells). NaN where nothing qualifies."""
    late = [r for r in rows if r['t_s'] > warmup_s]

    def mean(key: str) -> float:
        values = [r[key] for r in late if math.isfinite(r[key])]
        return float(np.mean(values)) if values else math.nan

    both = [r for r in late
            if math.isfinite(r['rmse_spatiotemporal']) and math.isfinite(r['rmse_static'])]
    def final(key: str) -> float:
        return late[-1][key] if late else math.nan

    return {
        'mean_rmse_spatiotemporal': mean('rmse_spatiotemporal'),
        'mean_rmse_static': mean('rmse_static'),
        'final_rmse_spatiotemporal': final('rmse_spatiotemporal'),
        'final_rmse_static': final('rmse_static'),
        'fraction_spatiotemporal_lower': (
            sum(r['rmse_spatiotemporal'] < r['rmse_static'] for r in both) / len(both)
            if both else math.nan),
        'mean_plume_rmse_spatiotemporal': mean('plume_rmse_spatiotemporal'),
        'mean_plume_rmse_static': mean('plume_rmse_static'),
        'mean_rmse_fading': mean('rmse_fading'),
        'final_rmse_fading': final('rmse_fading'),
        'mean_plume_rmse_fading': mean('plume_rmse_fading'),
    }


def run_plume_benchmark(config: PlumeBenchConfig, controller: Controller,
                        mapper: GPMapperConfig, loop: HeadlessConfig = HeadlessConfig(),
                        progress: Callable[[dict], None] | None = None) -> PlumeBenchResult:
    """One survey with the three maps, scored every ``config.every_s`` (module docstring).

    Args:
        config: the benchmark's settings.
        controller: a fresh controller driving the boat (the lawnmower
            ``BaselineController`` as the controller node configures it).
        mapper: the spatio-temporal map's configuration (the mapping node's temperature
            field); the static and fading maps are `GPMapper`s of the same with
            ``temporal_timescale=0`` and with ``static_background=False``.
        loop: the closed loop's rates (as the nodes have them); its duration is replaced
            by ``config.duration``.
        progress: called with each row as it is measured.
    """
    defaults = SimConfig()
    temperature = replace(defaults.temperature, plume_pulse_period=config.pulse_period,
                          plume_pulse_duty=config.pulse_duty)
    sim = Simulator(replace(defaults, seed=config.seed, temperature=temperature))
    localizer = Localizer(LocalizationConfig(datum=sim.config.datum))
    mapper = _as_run(mapper)
    mappers = {'spatiotemporal': make_mapper(mapper),
               'static': GPMapper(replace(mapper, temporal_timescale=0.0)),
               'fading': GPMapper(replace(mapper, static_background=False))}
    grid_x, grid_y, truth = sim.ground_truth_field('temperature')
    water = np.isfinite(truth)
    cells = np.column_stack([grid_x[water], grid_y[water]])
    area = SurveyedArea(cells, config.radius_m)
    steps = run_headless(sim, localizer, controller, replace(loop, duration=config.duration))
    latest, track, fresh, rows = None, [], [], []
    samples, next_evaluation = 0, config.every_s
    for step in steps:
        latest = step.odometry or latest
        fresh.append((step.sim.odometry.x, step.sim.odometry.y))
        reading = step.sim.temperature
        if reading is not None and latest is not None:
            for model in mappers.values():
                model.update(np.array([[latest.x, latest.y]]), reading.stamp, reading.value)
            samples += 1
        if sim.elapsed < next_evaluation - 1e-6:
            continue
        next_evaluation += config.every_s
        area.add(np.array(fresh))
        track.extend(fresh)
        fresh = []
        xy = cells[area.mask]
        true_now = sim.ground_truth_field('temperature')[2][water][area.mask]
        in_plume = sim.temperature.plume(xy[:, 0], xy[:, 1]) > config.plume_threshold
        errors = {name: map_errors(lambda q, m=model: m.predict(q, sim.time)[0], xy,
                                   true_now, in_plume) if samples else (math.nan, math.nan)
                  for name, model in mappers.items()}
        row = {'t_s': round(sim.elapsed, 3), 'n_samples': samples,
               'surveyed_cells': int(len(xy)), 'plume_cells': int(in_plume.sum()),
               **{f'rmse_{name}': errors[name][0] for name in MODELS},
               **{f'plume_rmse_{name}': errors[name][1] for name in MODELS}}
        rows.append(row)
        if progress is not None:
            progress(row)
    area.add(np.array(fresh).reshape(-1, 2))
    track = np.array(track + fresh).reshape(-1, 2)
    return _final_maps(sim, mappers, rows, summarize(rows, config.warmup_s), area.mask,
                       water, track)


def _final_maps(sim: Simulator, mappers: dict[str, Mapper], rows: list[dict],
                summary: dict, surveyed: np.ndarray, water: np.ndarray,
                track: np.ndarray) -> PlumeBenchResult:
    """The result with the truth and the maps at the end, cropped to the track."""
    grid_x, grid_y, truth = sim.ground_truth_field('temperature')
    low, high = track.min(axis=0) - _PLOT_MARGIN_M, track.max(axis=0) + _PLOT_MARGIN_M
    cols = (grid_x[0] >= low[0]) & (grid_x[0] <= high[0])
    lines = (grid_y[:, 0] >= low[1]) & (grid_y[:, 0] <= high[1])
    window = np.ix_(lines, cols)
    full_surveyed = np.zeros(water.shape, bool)
    full_surveyed[water] = surveyed
    wet = water[window]
    xy = np.column_stack([grid_x[window][wet], grid_y[window][wet]])
    means = {}
    for name, model in mappers.items():
        mean = np.full(wet.shape, np.nan)
        if model.num_samples:
            mean[wet] = model.predict(xy, sim.time)[0]
        means[name] = mean
    return PlumeBenchResult(rows, summary, grid_x[0][cols], grid_y[:, 0][lines],
                            truth[window], means, full_surveyed[window], track)


def write_json(path: Path, result: PlumeBenchResult | None, settings: dict) -> None:
    """``{"settings", "summary", "rows"}`` (empty without a result), strict JSON (NaN ->
    null), replaced atomically."""
    path = Path(path)
    content = {'settings': settings,
               'summary': result.summary if result else {},
               'rows': result.rows if result else []}
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(strict_json(content), indent=1) + '\n')
    tmp.replace(path)


def _as_run(mapper: GPMapperConfig) -> GPMapperConfig:
    """The maps' configuration as the benchmark runs it: simulated far faster than real
    time, with the hyperparameter fits inside the updates (reproducible)."""
    return replace(mapper, adapt_in_background=False)


def settings_dict(config: PlumeBenchConfig, controller: BaselineConfig,
                  mapper: GPMapperConfig, loop: HeadlessConfig) -> dict:
    """What the JSON records of the run's configuration."""
    return {'benchmark': asdict(config),
            'mapper': asdict(_as_run(mapper)),
            'controller': asdict(controller),
            'loop': asdict(replace(loop, duration=config.duration))}


def plot(path: Path, result: PlumeBenchResult, warmup_s: float) -> None:
    """RMSE against time of the maps (plume-only dashed), and the truth and the means at
    the end with the track."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(16, 9.5), layout='constrained')
    top, bottom = figure.subfigures(2, 1, height_ratios=(1, 1.2))
    ax = top.subplots()
    t = np.array([r['t_s'] for r in result.rows])
    for name, colour in zip(MODELS, ('tab:blue', 'tab:orange', 'tab:green')):
        ax.plot(t, [r[f'rmse_{name}'] for r in result.rows], color=colour,
                label=f'{name}: surveyed area')
        ax.plot(t, [r[f'plume_rmse_{name}'] for r in result.rows], color=colour, ls='--',
                label=f'{name}: plume cells')
    ax.axvspan(0.0, warmup_s, color='0.9', label='warm-up (not in the summary)')
    ax.set_xlabel('mission time [s]')
    ax.set_ylabel('RMSE against the current truth [degC]')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    s = result.summary
    ax.set_title(f'mean RMSE after warm-up: spatio-temporal {s["mean_rmse_spatiotemporal"]:.3f}'
                 f', static {s["mean_rmse_static"]:.3f}, fading {s["mean_rmse_fading"]:.3f} '
                 f'degC; spatio-temporal lower than static in '
                 f'{s["fraction_spatiotemporal_lower"]:.0%} of evaluations')
    panels = bottom.subplots(1, 4, sharex=True, sharey=True)
    finite = result.truth[np.isfinite(result.truth)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    half = 0.5 * (result.x[1] - result.x[0]) if len(result.x) > 1 else 0.5
    extent = (result.x[0] - half, result.x[-1] + half, result.y[0] - half, result.y[-1] + half)
    for ax, values, title in ((panels[0], result.truth, 'truth at the end'),
                              (panels[1], result.means['spatiotemporal'],
                               'spatio-temporal mean'),
                              (panels[2], result.means['static'], 'static mean'),
                              (panels[3], result.means['fading'], 'fading mean')):
        image = ax.imshow(values, origin='lower', extent=extent, cmap='inferno', vmin=low,
                          vmax=high)
        ax.contour(result.x, result.y, result.surveyed.astype(float), levels=[0.5],
                   colors='w', linewidths=0.8)
        ax.plot(result.track[:, 0], result.track[:, 1], color='c', lw=0.6)
        ax.set_title(title)
        ax.set_xlabel('x east [m]')
        ax.set_aspect('equal')
    panels[0].set_ylabel('y north [m]')
    bottom.colorbar(image, ax=panels, label='temperature [degC]', shrink=0.8)
    bottom.suptitle('final maps (white: surveyed area, cyan: true track)')
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_progress(row: dict) -> None:
    """One line per evaluation on stderr."""
    def f(value: float) -> str:
        return f'{value:7.3f}' if math.isfinite(value) else '    nan'
    print(f'[asv bench plume] t {row["t_s"]:6.0f} s  samples {row["n_samples"]:5d}  '
          f'cells {row["surveyed_cells"]:5d}  rmse st {f(row["rmse_spatiotemporal"])} '
          f'static {f(row["rmse_static"])} fading {f(row["rmse_fading"])}  plume '
          f'({row["plume_cells"]} cells) st {f(row["plume_rmse_spatiotemporal"])} static '
          f'{f(row["plume_rmse_static"])} fading {f(row["plume_rmse_fading"])}',
          file=sys.stderr, flush=True)
