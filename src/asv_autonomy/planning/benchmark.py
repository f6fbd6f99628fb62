"""Closed-loop planner benchmark: controllers drive the simulator through the scenarios.

One episode: the simulator (``sim.simulator.Simulator``, physics step ``sim_dt``) runs the
scenario's lake with a seeded realisation of its current (``Scenario.sim_config``) and the
default wind; the controller under test reads the true odometry at ``control_hz`` and its
thrust command is held until the next control step. The episode ends at the first of:

* the boat's centre enters the goal disc: success;
* contact: the simulator reports the boat grounded (water shallower than its draft) or
  against an obstacle. It is held there, so the episode ends at the first contact;
  ``collisions`` counts contact events, hence 0 or 1 per episode;
* the scenario's time limit.

Metrics: ``time_s`` simulated seconds until the end, ``energy_J`` the integral of
``thruster_power(thrust_applied)``, ``min_land_distance_m`` the least signed distance to
land of the true positions (the scenario's ``Workspace`` raster, 5 m cells; the hull
radius is not subtracted), ``wall_s`` the episode's wall-clock time (controller included).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..measurements import PlanarOdometry
from ..sim.simulator import Simulator
from .baseline import BaselineConfig, BaselineController
from .scenarios import Scenario
from .vessel import VesselParams, thruster_power
from .workspace import Workspace

PLANNERS = ('asv', 'asv-no-mdp', 'baseline', 'pytorch-mppi')
#: planner name -> optimiser whose compute speed the report measures.
OPTIMISERS = {'asv': 'asv', 'asv-no-mdp': 'asv', 'pytorch-mppi': 'pytorch-mppi'}
RESULT_KEYS = ('scenario', 'planner', 'seed', 'success', 'time_s', 'energy_J',
               'min_land_distance_m', 'collisions', 'outcome', 'wall_s')


@dataclass(frozen=True)
class EpisodeConfig:
    """How an episode is simulated.

    Args:
        sim_dt: [s] physics step of the simulator.
        control_hz: [Hz] rate at which the controller is called.
    """

    sim_dt: float = 0.05
    control_hz: float = 5.0

    def __post_init__(self):
        if not 0.0 < self.sim_dt <= 0.1:
            raise ValueError(f'sim_dt must be in (0, 0.1] s, got {self.sim_dt}')
        if not (math.isfinite(self.control_hz) and 0.0 < self.control_hz <= 1.0 / self.sim_dt):
            raise ValueError(f'control_hz must be > 0 and at most 1 / sim_dt, got '
                             f'{self.control_hz}')

    @property
    def steps_per_control(self) -> int:
        """Physics steps between two controller calls."""
        return max(1, round(1.0 / (self.control_hz * self.sim_dt)))


class EpisodeController(Protocol):
    """What the runner drives: thrust [N] (left, right) for the latest true odometry."""

    def command(self, odom: PlanarOdometry) -> tuple[float, float]:
        ...


class BaselineEpisodeController:
    """The baseline autopilot (default gains) in goto mode towards the scenario's goal."""

    def __init__(self, scenario: Scenario, vessel: VesselParams):
        self._controller = BaselineController(BaselineConfig(), vessel)
        self._controller.set_goal(*scenario.goal)

    def command(self, odom: PlanarOdometry) -> tuple[float, float]:
        out = self._controller.plan(odom)
        return out.thrust_left, out.thrust_right


class PlannerEpisodeController:
    """The planner (``planning.planner.Planner``) in goto mode; it knows the scenario's
    mean current and spread, not the realisation the simulator runs, and has the
    episode's time limit as its ``time_budget``."""

    def __init__(self, planner):
        self._planner = planner

    def command(self, odom: PlanarOdometry) -> tuple[float, float]:
        out = self._planner.plan(odom)
        return out.thrust_left, out.thrust_right


def make_controller(name: str, scenario: Scenario, workspace: Workspace,
                    vessel: VesselParams, device: str = 'cpu') -> EpisodeController:
    """A fresh controller of planner ``name`` (one of ``PLANNERS``) for one episode.

    Raises:
        ValueError: unknown name.
    """
    if name == 'baseline':
        return BaselineEpisodeController(scenario, vessel)
    if name not in PLANNERS:
        raise ValueError(f'unknown planner {name!r}; choose from {", ".join(PLANNERS)}')
    from .planner import Planner, PlannerConfig
    config = PlannerConfig(mode='goto', use_mdp=name != 'asv-no-mdp',
                           optimiser=OPTIMISERS[name], time_budget=scenario.time_limit_s)
    planner = Planner(config, vessel, workspace.to(device), scenario.flow.to(device),
                      device=device)
    planner.set_goal(*scenario.goal)
    return PlannerEpisodeController(planner)


@dataclass
class Episode:
    """One episode's metrics (``row``: a JSON result with ``RESULT_KEYS``) and its true
    track ``(N, 2)`` [m] at the control rate (for plots)."""

    row: dict
    track: np.ndarray


def run_episode(scenario: Scenario, planner: str, controller: EpisodeController, seed: int,
                workspace: Workspace, directory: Path,
                config: EpisodeConfig = EpisodeConfig()) -> Episode:
    """Simulate one episode (module doc) and measure it.

    Args:
        scenario: the problem; planner: name reported in the row.
        controller: drives the boat. seed: simulator seed (true current, wind, sensors).
        workspace: the scenario's workspace (distance to land).
        directory: where the simulator's world and current files are written.
        config: physics and control rates.
    """
    sim_config = scenario.sim_config(seed, directory, config.sim_dt)
    vessel = sim_config.vessel
    sim = Simulator(sim_config)
    goal = np.asarray(scenario.goal, float)
    positions = [np.asarray(scenario.start[:2], float)]
    track = [positions[0]]
    energy, collisions, outcome = 0.0, 0, 'timeout'
    steps = int(math.ceil(scenario.time_limit_s / config.sim_dt))
    started = time.perf_counter()
    odom = sim.true_odometry()
    step_index = 0
    while step_index < steps and outcome == 'timeout':
        left, right = controller.command(odom)
        sim.command_thrust(left, right)
        for _ in range(min(config.steps_per_control, steps - step_index)):
            out = sim.step()
            step_index += 1
            energy += float(thruster_power(out.thrust_applied, vessel)) * config.sim_dt
            odom = out.odometry
            positions.append(np.array([odom.x, odom.y]))
            if out.grounded or out.collision:
                collisions, outcome = 1, 'contact'
                break
            if math.hypot(odom.x - goal[0], odom.y - goal[1]) <= scenario.goal_radius:
                outcome = 'goal'
                break
        track.append(positions[-1])
    wall = time.perf_counter() - started
    xy = torch.as_tensor(np.stack(positions), dtype=workspace.distance.values.dtype,
                         device=workspace.device)
    clearance = float(workspace.distance_to_land(xy).min())
    row = {'scenario': scenario.name, 'planner': planner, 'seed': seed,
           'success': outcome == 'goal', 'time_s': round(step_index * config.sim_dt, 3),
           'energy_J': energy, 'min_land_distance_m': clearance, 'collisions': collisions,
           'outcome': outcome, 'wall_s': wall}
    return Episode(row, np.stack(track))


def compute_section(planners: list[str], device: str) -> list[dict]:
    """Optimisation rate of the optimiser of every sampling planner asked for
    (``planning.compute.measure``): 1024 x 50 and 4096 x 50 rollouts x horizon on the CPU,
    plus 100000 x 100 on ``device`` when it is CUDA; nothing for the baseline."""
    from .compute import measure
    optimisers = list(dict.fromkeys(OPTIMISERS[p] for p in planners if p in OPTIMISERS))
    sizes = [('cpu', 1024, 50), ('cpu', 4096, 50)]
    if device.startswith('cuda'):
        sizes.append((device, 100_000, 100))
    return [measure(optimiser, device=where, rollouts=k, horizon=t)
            for optimiser in optimisers for where, k, t in sizes]


def write_json(path: Path, results: list[dict], compute: list[dict],
               settings: dict, survey: list[dict] | None = None) -> None:
    """``{"results": [...], "compute": [...], "settings": {...}}`` (and ``"survey": [...]``
    when given, see ``survey_benchmark.run_survey``), replaced atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + '.tmp')
    content = {'results': results, 'compute': compute, 'settings': settings}
    if survey is not None:
        content['survey'] = survey
    tmp.write_text(json.dumps(content, indent=1))
    tmp.replace(path)


def summarise(results: list[dict]) -> list[dict]:
    """Per (scenario, planner): episodes, success rate, mean time / energy of successful
    episodes, least clearance, collisions, mean wall time."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r['scenario'], r['planner']), []).append(r)
    rows = []
    for (scenario, planner), group in groups.items():
        done = [r for r in group if r['success']]
        rows.append({
            'scenario': scenario, 'planner': planner, 'episodes': len(group),
            'success_rate': len(done) / len(group),
            'time_s': float(np.mean([r['time_s'] for r in done])) if done else math.nan,
            'energy_J': float(np.mean([r['energy_J'] for r in done])) if done else math.nan,
            'min_land_distance_m': min(r['min_land_distance_m'] for r in group),
            'collisions': sum(r['collisions'] for r in group),
            'wall_s': float(np.mean([r['wall_s'] for r in group]))})
    return rows


def plot(path: Path, scenarios: list[Scenario], workspaces: list[Workspace],
         episodes: list[Episode]) -> None:
    """One panel per scenario (land, mean current quiver, tracks coloured by planner,
    start and goal disc) and a bar panel of success rate and mean energy."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    planners = list(dict.fromkeys(e.row['planner'] for e in episodes))
    colours = {p: plt.get_cmap('tab10')(i) for i, p in enumerate(planners)}
    fig, axes = plt.subplots(1, len(scenarios) + 1, figsize=(5.5 * (len(scenarios) + 1), 5),
                             squeeze=False)
    for ax, scenario, workspace in zip(axes[0], scenarios, workspaces):
        x0, x1, y0, y1 = workspace.extent
        land = (workspace.distance.values[0] <= 0).cpu().numpy()
        ax.imshow(land, origin='lower', extent=(x0, x1, y0, y1), cmap='Greys', vmin=0,
                  vmax=1.6, interpolation='nearest')
        flow = scenario.flow.raster
        stride = max(1, int(round(40.0 / flow.resolution)))
        centres = flow.cell_centres()[::stride, ::stride].cpu().numpy()
        uv = flow.values[:2, ::stride, ::stride].cpu().numpy()
        ax.quiver(centres[..., 0], centres[..., 1], uv[0], uv[1], np.hypot(*uv),
                  cmap='Blues', scale=25, width=0.003)
        for e in episodes:
            if e.row['scenario'] == scenario.name:
                ax.plot(e.track[:, 0], e.track[:, 1], color=colours[e.row['planner']],
                        lw=1.0, alpha=0.8)
        ax.plot(*scenario.start[:2], 'k^', ms=8)
        ax.add_patch(plt.Circle(scenario.goal, scenario.goal_radius, color='k', fill=False))
        ax.set_title(f'{scenario.name}: {scenario.description}', fontsize=8)
        ax.set_aspect('equal')
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    summary = summarise([e.row for e in episodes])
    bars = axes[0, -1]
    labels = [f'{s["scenario"]}\n{s["planner"]}' for s in summary]
    positions = np.arange(len(summary))
    bars.bar(positions, [s['success_rate'] for s in summary],
             color=[colours[s['planner']] for s in summary])
    bars.set_xticks(positions, labels, fontsize=7, rotation=60)
    bars.set_ylim(0, 1.05)
    bars.set_ylabel('success rate')
    energy = bars.twinx()
    energy.plot(positions, [s['energy_J'] / 1e3 for s in summary], 'kD', label='energy')
    energy.set_ylabel('mean energy of successful episodes [kJ]')
    handles = [plt.Line2D([], [], color=colours[p], lw=2) for p in planners]
    axes[0, 0].legend(handles, planners, fontsize=7, loc='lower left')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
