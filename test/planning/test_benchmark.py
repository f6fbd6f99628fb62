"""Closed-loop episodes: the runner's metrics on problems with known answers."""
import json
import math

import numpy as np
import pytest

from asv_autonomy.planning import benchmark
from asv_autonomy.planning.flow import FlowField
from asv_autonomy.planning.scenarios import Scenario
from asv_autonomy.planning.vessel import VesselParams, thruster_power


def _open_lake(wall: bool = False, time_limit: float = 400.0) -> Scenario:
    """A 400 x 200 m rectangular lake (10 m cells, 6 m deep), still water; with ``wall`` a
    strip of land across the lake at x in [20, 40] m (no way around it)."""
    origin, cell = (-250.0, -150.0), 10.0
    x, y = np.meshgrid(origin[0] + cell * np.arange(51), origin[1] + cell * np.arange(31))
    water = (np.abs(x) < 200.0) & (np.abs(y) < 100.0)
    if wall:
        water &= ~((x >= 20.0) & (x <= 40.0))
    depth = np.where(water, 6.0, -3.0)
    return Scenario(name='calm', description='open water', depth=depth, origin=origin,
                    cell_size=cell, start=(-100.0, 0.0, 0.0), goal=(100.0, 0.0),
                    goal_radius=5.0, time_limit_s=time_limit,
                    flow=FlowField.uniform((0.0, 0.0), 0.0, (-250.0, 250.0, -150.0, 150.0),
                                           cell),
                    perturbation_lengthscale=50.0)


def _episode(scenario, tmp_path, planner='baseline'):
    workspace = scenario.workspace(tmp_path)
    controller = benchmark.make_controller(planner, scenario, workspace, VesselParams())
    return benchmark.run_episode(scenario, planner, controller, 0, workspace, tmp_path)


def test_baseline_crosses_calm_open_water(tmp_path):
    episode = _episode(_open_lake(), tmp_path)
    row = episode.row
    assert list(row) == list(benchmark.RESULT_KEYS)
    assert row['success'] and row['outcome'] == 'goal' and row['collisions'] == 0
    # 195 m to the goal disc at the 1.2 m/s cruise (plus the speed-up).
    assert 195.0 / 1.2 < row['time_s'] < 195.0 / 1.2 + 25.0
    # Cruise power: both thrusters share the surge damping 15 u + 15 u^2 at 1.2 m/s.
    vessel = VesselParams()
    half = 0.5 * (15.0 * 1.2 + 15.0 * 1.2 ** 2)
    cruise_w = float(thruster_power(np.array([half, half]), vessel))
    assert row['energy_J'] == pytest.approx(cruise_w * row['time_s'], rel=0.25)
    # The straight line y = 0 is 100 m from both shores (the 5 m distance raster).
    assert row['min_land_distance_m'] == pytest.approx(100.0, abs=6.0)
    assert np.hypot(*(episode.track[-1] - (100.0, 0.0))) <= 5.0
    assert episode.track[0] == pytest.approx([-100.0, 0.0])


def test_contact_ends_the_episode_and_counts(tmp_path):
    row = _episode(_open_lake(wall=True), tmp_path).row
    assert row['outcome'] == 'contact' and row['collisions'] == 1 and not row['success']
    assert row['min_land_distance_m'] < 3.0
    assert row['time_s'] < 120.0                   # the wall is 120 m ahead


def test_time_limit(tmp_path):
    row = _episode(_open_lake(time_limit=30.0), tmp_path).row
    assert row['outcome'] == 'timeout' and not row['success']
    assert row['time_s'] == pytest.approx(30.0)


def test_json_and_summary(tmp_path):
    rows = [{'scenario': 's', 'planner': 'p', 'seed': k, 'success': k < 2, 'time_s': 10.0 * k,
             'energy_J': 100.0 * (k + 1), 'min_land_distance_m': 5.0 - k, 'collisions': 0,
             'outcome': 'goal', 'wall_s': 1.0} for k in range(3)]
    path = tmp_path / 'r.json'
    benchmark.write_json(path, rows, [{'planner': 'asv', 'hz': 1.0}], {'seeds': 3})
    data = json.loads(path.read_text())
    assert data['results'] == rows and data['compute'][0]['hz'] == 1.0
    (summary,) = benchmark.summarise(rows)
    assert summary['success_rate'] == pytest.approx(2 / 3)
    assert summary['energy_J'] == pytest.approx(150.0)       # successful episodes only
    assert summary['min_land_distance_m'] == 3.0
    assert math.isnan(benchmark.summarise(rows[2:])[0]['energy_J'])


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match='unknown planner'):
        benchmark.make_controller('dwa', _open_lake(), None, VesselParams())
    with pytest.raises(ValueError, match='sim_dt'):
        benchmark.EpisodeConfig(sim_dt=0.5)
    with pytest.raises(ValueError, match='control_hz'):
        benchmark.EpisodeConfig(control_hz=50.0)
    assert benchmark.EpisodeConfig().steps_per_control == 4
