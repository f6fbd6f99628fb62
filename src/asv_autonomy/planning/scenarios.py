"""Closed-loop planning scenarios: a lake, a current with its uncertainty, a start and a goal.

Each scenario is a lake-scale transit (0.6-1 km) through a strong current, designed so that
the straight line from start to goal stays in open water (at least ``STRAIGHT_LINE_CLEARANCE``
from land), i.e. a plain goto autopilot reaches the goal in still water. What makes it hard
is the current only:

* ``gyre``: a Lamb-Oseen gyre (1.5 m/s on its fastest ring, 220 m) turning counter-clockwise
  around an island. The straight route eastwards runs north of the island, against the
  ring and across its inflow towards the island; the way south of the island rides it.
* ``passage``: the lake is split by a north-south ridge of land with one 80 m wide gap.
  A river crosses the lake north to south just upstream of the ridge (a 1.4 m/s jet
  running along the ridge's western face), so the route to the gap crosses the jet right
  where it meets the ridge: the boat is set onto the gap's southern point unless it crabs
  (or approaches from upstream) early enough.
* ``river``: upstream along a 200 m wide river in flood, from 60 m south of the centre
  line to 60 m north of it 850 m upstream: 2.4 m/s in mid-channel, more than the boat's
  top speed through the water (2 m/s), but under 0.7 m/s within 25 m of the banks. The
  straight route crosses the core diagonally and makes no headway there; every boater
  knows to go up a river along its bank and to ferry across the core where drifting
  back costs least. The one scenario built so that a current-blind autopilot
  cannot succeed: it asks whether a planner finds the slow water on its own.
* ``arctic``: land mask, bathymetry and surface current of a real ocean-model forecast
  (``Arctic20_1to5Feb_2016.nc``, first time, top layer) squeezed onto a 1.35 x 0.75 km lake,
  speeds scaled so the fastest is 1.5 m/s; a westward transit along the southern coast,
  against the coastal jet (1-1.5 m/s) that runs 20-40 m off the straight line, while the
  water 100 m offshore is nearly still.

The planners know the mean current and its spread (1-sigma per component); the simulator
runs a seeded realisation of it (mean + smooth Gaussian perturbation, ``FlowField.realisation``),
so every seed is a different "true" current consistent with the forecast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ..sim.fields import CurrentConfig
from ..sim.simulator import SimConfig
from ..sim.world import World, WorldConfig
from .flow import FlowField, gyre
from .workspace import Workspace

#: [m] every scenario's straight start-goal line keeps at least this distance from land.
STRAIGHT_LINE_CLEARANCE = 30.0
#: [m/s] the boat's cruise speed; the time limit is relative to a cruise at this speed.
CRUISE_SPEED = 1.2
ARCTIC_FILE = Path(__file__).resolve().parents[3].parent / 'shared' / 'data' / 'currents' / \
    'Arctic20_1to5Feb_2016.nc'
NAMES = ('gyre', 'passage', 'river', 'arctic')


class ScenarioUnavailable(Exception):
    """A scenario cannot be built here (its data file is absent); the message says why."""


@dataclass(frozen=True, eq=False)
class Scenario:
    """One closed-loop transit problem.

    Args:
        name: scenario name.
        description: one line for reports.
        depth: [m] (ny, nx) water depth at cell centres (<= 0 on land), rows along +y.
        origin: [m] map (x, y) of the centre of cell (0, 0).
        cell_size: [m] grid spacing of ``depth``.
        start: (x [m], y [m], yaw [rad]) start pose in ``map``.
        goal: [m] (x, y) goal in ``map``.
        goal_radius: [m] the goal counts as reached inside this disc.
        time_limit_s: [s] episode length limit (simulated time).
        flow: mean current and its spread, what the planners are told.
        perturbation_lengthscale: [m] correlation length of the true current's deviation
            from the mean.
    """

    name: str
    description: str
    depth: np.ndarray
    origin: tuple[float, float]
    cell_size: float
    start: tuple[float, float, float]
    goal: tuple[float, float]
    goal_radius: float
    time_limit_s: float
    flow: FlowField
    perturbation_lengthscale: float

    def __post_init__(self):
        if self.depth.ndim != 2 or min(self.depth.shape) < 4 or not np.isfinite(self.depth).all():
            raise ValueError(f'scenario {self.name}: depth must be a finite 2-D grid >= 4x4')
        if not (self.cell_size > 0 and self.goal_radius > 0 and self.time_limit_s > 0
                and self.perturbation_lengthscale > 0):
            raise ValueError(f'scenario {self.name}: cell_size, goal_radius, time_limit_s and '
                             'perturbation_lengthscale must be > 0')

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """[m] (x_min, x_max, y_min, y_max) of the depth grid's cell centres."""
        ny, nx = self.depth.shape
        x0, y0 = self.origin
        return (x0, x0 + (nx - 1) * self.cell_size, y0, y0 + (ny - 1) * self.cell_size)

    @property
    def straight_distance(self) -> float:
        """[m] start to goal, straight."""
        return math.hypot(self.goal[0] - self.start[0], self.goal[1] - self.start[1])

    def world_config(self, directory: Path) -> WorldConfig:
        """The simulator's world: the depth grid written to ``directory/<name>_depth.npy``,
        no buoys or moored boats."""
        path = Path(directory) / f'{self.name}_depth.npy'
        if not path.exists():
            np.save(path, self.depth)
        return WorldConfig(source=str(path), cell_size=self.cell_size, origin=self.origin,
                           buoy_positions=(), boat_positions=())

    def world(self, directory: Path) -> World:
        """The simulator's ``World`` of this scenario (see :meth:`world_config`)."""
        return World(self.world_config(directory))

    def workspace(self, directory: Path, resolution: float = 5.0) -> Workspace:
        """Where the boat may go: water at least the draft deep in :meth:`world`."""
        return Workspace.from_world(self.world(directory), resolution)

    def true_flow(self, seed: int) -> FlowField:
        """The current the simulator runs for ``seed``: a realisation of ``flow``."""
        return self.flow.realisation(seed, self.perturbation_lengthscale)

    def sim_config(self, seed: int, directory: Path, dt: float = 0.05) -> SimConfig:
        """Simulator set-up of one episode: this world, the seed's true current written to
        ``directory``, the start pose; every other setting (wind, sensors) at its default.
        """
        current = Path(directory) / f'{self.name}_current_seed{seed}.npz'
        self.true_flow(seed).to_npz(current)
        return SimConfig(seed=seed, dt=dt, start_pose=tuple(self.start),
                         world=self.world_config(directory),
                         current=CurrentConfig(source=str(current)))

    def with_flow(self, flow: FlowField) -> 'Scenario':
        """The same lake, start and goal in another current (``--currents``)."""
        return replace(self, flow=flow)


def build(name: str, currents: Path | None = None, arctic_file: Path = ARCTIC_FILE) -> Scenario:
    """The named scenario; with ``currents``, in the current read from that file
    (``FlowField.from_file`` stretched over the scenario's lake, the scenario's spread).

    Raises:
        ValueError: unknown name, or a bad ``currents`` file.
        ScenarioUnavailable: the arctic data file is absent.
    """
    builders = {'gyre': gyre_scenario, 'passage': passage_scenario, 'river': river_scenario,
                'arctic': lambda: arctic_scenario(arctic_file)}
    if name not in builders:
        raise ValueError(f'unknown scenario {name!r}; choose from {", ".join(NAMES)}')
    scenario = builders[name]()
    if currents is not None:
        spread = float(scenario.flow.raster.values[2].max())
        flow = FlowField.from_file(currents, extent=scenario.extent,
                                   resolution=scenario.cell_size, spread=spread)
        scenario = scenario.with_flow(flow)
    return scenario


def gyre_scenario() -> Scenario:
    """Transit past an island ringed by a strong counter-clockwise gyre (module doc)."""
    cell, origin, shape = 10.0, (-650.0, -450.0), (91, 131)
    x, y = _cell_centres(origin, cell, shape)
    # An irregular oval lake (~1.24 x 0.84 km) with a 50 m island at the gyre's centre.
    angle = np.arctan2(y / 420.0, x / 620.0)
    shore = 1.0 + 0.04 * np.sin(3.0 * angle + 0.4) + 0.03 * np.cos(5.0 * angle)
    water = (np.hypot(x / 620.0, y / 420.0) < shore) & (np.hypot(x, y) > 50.0)
    depth = _depth_from_water(water, cell)
    centre, radius, speed = (0.0, 0.0), 220.0, 1.5
    flow = gyre(centre, radius, speed, _extent(origin, cell, shape), cell, spread=0.25)
    return Scenario(
        name='gyre', description='eastward transit past an island ringed by a 1.5 m/s gyre',
        depth=depth, origin=origin, cell_size=cell, start=(-480.0, 110.0, 0.0),
        goal=(480.0, 110.0), goal_radius=10.0,
        time_limit_s=_time_limit(960.0), flow=_tapered(flow, depth, origin, cell),
        perturbation_lengthscale=120.0)


def passage_scenario() -> Scenario:
    """Through an 80 m gap in a land ridge, across a river jet (module doc)."""
    cell, origin, shape = 10.0, (-600.0, -400.0), (81, 121)
    x, y = _cell_centres(origin, cell, shape)
    lake = (np.abs(x) < 560.0) & (np.abs(y) < 360.0)
    ridge = (np.abs(x - 120.0) < 50.0) & (np.abs(y) > 40.0)   # x in [70, 170] m
    water = lake & ~ridge
    depth = _depth_from_water(water, cell)
    jet_x, jet_speed = 40.0, 1.4

    def river(px, py):
        """North-to-south jet along x = jet_x: 60 m half-width over the open basin, 25 m on
        its eastern side where it runs along the ridge's face (x = 70 m)."""
        width = np.where(px < jet_x, 60.0, 25.0)
        return np.zeros_like(px), -jet_speed * np.exp(-0.5 * ((px - jet_x) / width) ** 2)

    flow = FlowField.from_function(river, _extent(origin, cell, shape), cell, spread=0.25)
    return Scenario(
        name='passage', description='through an 80 m gap across a 1.4 m/s river jet',
        depth=depth, origin=origin, cell_size=cell, start=(-420.0, 0.0, 0.0),
        goal=(420.0, 0.0), goal_radius=10.0, time_limit_s=_time_limit(840.0),
        flow=_tapered(flow, depth, origin, cell), perturbation_lengthscale=80.0)


def river_scenario() -> Scenario:
    """Upstream along a river in flood, fastest in mid-channel (module doc)."""
    cell, origin, shape = 10.0, (-650.0, -160.0), (33, 131)
    x, y = _cell_centres(origin, cell, shape)
    half_width = 100.0
    water = (np.abs(y) < half_width) & (np.abs(x) < 630.0)
    depth = _depth_from_water(water, cell)
    core_speed, bank_speed, core_width = 2.1, 0.3, 40.0

    def flood(px, py):
        """Westward flow: 0.3 m/s everywhere plus a 2.1 m/s Gaussian core 40 m wide."""
        speed = bank_speed + core_speed * np.exp(-0.5 * (py / core_width) ** 2)
        return -speed, np.zeros_like(py)

    flow = FlowField.from_function(flood, _extent(origin, cell, shape), cell, spread=0.2)
    return Scenario(
        name='river', description='upstream along a river in flood (2.4 m/s mid-channel)',
        depth=depth, origin=origin, cell_size=cell, start=(-350.0, -60.0, 0.0),
        goal=(500.0, 60.0), goal_radius=10.0, time_limit_s=_time_limit(860.0),
        flow=_tapered(flow, depth, origin, cell), perturbation_lengthscale=100.0)


def arctic_scenario(path: Path = ARCTIC_FILE) -> Scenario:
    """The real forecast's coast and current squeezed onto a lake (module doc).

    Raises:
        ScenarioUnavailable: ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioUnavailable(f'arctic scenario skipped: {path} is absent')
    from scipy.io import netcdf_file
    with netcdf_file(path, 'r', mmap=False) as data:
        water = np.asarray(data.variables['mask'][:], float) > 0.5
        seabed = np.asarray(data.variables['h'][:], float)
    cell = 15.0
    ny, nx = water.shape
    origin = (-0.5 * (nx - 1) * cell, -0.5 * (ny - 1) * cell)
    seabed = np.where(water, seabed, 0.0)
    depth = np.where(water, 1.0 + 39.0 * np.sqrt(seabed / seabed[water].max()), -3.0)
    extent = _extent(origin, cell, water.shape)
    top = FlowField.from_file(path, extent=extent, resolution=cell, spread=0.0).max_speed()
    flow = FlowField.from_file(path, extent=extent, resolution=cell, spread=0.2,
                               scale=1.5 / top)
    return Scenario(
        name='arctic', description='westward along a coast against a real forecast current '
                                   '(peak 1.5 m/s)', depth=depth, origin=origin, cell_size=cell,
        start=(350.0, -225.0, math.pi), goal=(-560.0, -225.0), goal_radius=10.0,
        time_limit_s=_time_limit(910.0), flow=_tapered(flow, depth, origin, cell),
        perturbation_lengthscale=120.0)


def _time_limit(distance: float) -> float:
    """[s] three times a cruise straight over ``distance`` [m]: an average speed over ground
    of 0.4 m/s, a third of cruise, is the least a useful transit makes."""
    return 3.0 * distance / CRUISE_SPEED


def _cell_centres(origin, cell, shape) -> tuple[np.ndarray, np.ndarray]:
    """[m] (ny, nx) x and y of the cell centres."""
    ny, nx = shape
    return np.meshgrid(origin[0] + cell * np.arange(nx), origin[1] + cell * np.arange(ny))


def _extent(origin, cell, shape) -> tuple[float, float, float, float]:
    ny, nx = shape
    return (origin[0], origin[0] + (nx - 1) * cell, origin[1], origin[1] + (ny - 1) * cell)


def _depth_from_water(water: np.ndarray, cell: float, slope: float = 0.15,
                      max_depth: float = 12.0, land: float = -3.0) -> np.ndarray:
    """[m] depth grid of a water mask: banks deepening by ``slope`` [m/m] away from the
    shore down to ``max_depth``; ``land`` [m] (negative) on land."""
    to_shore = ndimage.distance_transform_edt(water) * cell
    return np.where(water, np.clip(slope * to_shore, 0.5, max_depth), land)


def _tapered(flow: FlowField, depth: np.ndarray, origin, cell) -> FlowField:
    """The flow on the depth grid, its mean zero on land and fading over the shallow banks
    the way the simulator fades its current (``CurrentConfig.shore_depth``)."""
    x, y = _cell_centres(origin, cell, depth.shape)
    mean, spread = flow.sample(torch.as_tensor(np.stack([x, y], -1)))
    fade = np.clip(depth / CurrentConfig().shore_depth, 0.0, 1.0)
    mean = mean.cpu().double().numpy() * fade[..., None]
    return FlowField.from_grid(mean[..., 0], mean[..., 1], spread.cpu().double().numpy(),
                               origin, cell)
