"""Scenarios: the lakes, currents, starts and goals they promise."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from asv_autonomy.planning import scenarios
from asv_autonomy.planning.flow import FlowField
from asv_autonomy.sim.simulator import Simulator


def _build(name):
    try:
        return scenarios.build(name)
    except scenarios.ScenarioUnavailable as reason:
        pytest.skip(str(reason))


@pytest.fixture(scope='module', params=scenarios.NAMES)
def built(request, tmp_path_factory):
    scenario = _build(request.param)
    return scenario, scenario.workspace(tmp_path_factory.mktemp(request.param))


def _at(workspace, points):
    return workspace.distance_to_land(torch.tensor(points, dtype=torch.float32))


def test_start_and_goal_in_open_water_connected_with_a_clear_straight_line(built):
    scenario, workspace = built
    start, goal = np.array(scenario.start[:2]), np.array(scenario.goal)
    line = start + np.linspace(0.0, 1.0, 400)[:, None] * (goal - start)
    # Still water: a plain autopilot driving the straight line never comes near land.
    assert float(_at(workspace, line).min()) >= scenarios.STRAIGHT_LINE_CLEARANCE
    labels, _ = ndimage.label(workspace.distance.values[0].numpy() > 0)
    cells = [np.round((p - workspace.origin) / workspace.resolution).astype(int)[::-1]
             for p in (start, goal)]
    assert labels[tuple(cells[0])] == labels[tuple(cells[1])] > 0
    assert scenario.time_limit_s == pytest.approx(
        3.0 * scenario.straight_distance / scenarios.CRUISE_SPEED, rel=0.1)


def test_land_where_the_scenarios_say():
    gyre, passage = scenarios.gyre_scenario(), scenarios.passage_scenario()
    for scenario, land, water in (
            (gyre, [(0.0, 0.0), (0.0, 440.0), (-640.0, 0.0)], [(0.0, 110.0), (0.0, -200.0)]),
            (passage, [(120.0, 200.0), (120.0, -200.0), (0.0, 390.0)],
             [(120.0, 0.0), (-300.0, 200.0), (300.0, -200.0)])):
        x, y = np.array(land + water).T
        depth = ndimage.map_coordinates(
            scenario.depth, [(y - scenario.origin[1]) / scenario.cell_size,
                             (x - scenario.origin[0]) / scenario.cell_size], order=1)
        assert (depth[:len(land)] <= 0).all() and (depth[len(land):] > 1.0).all(), \
            scenario.name


def test_currents_as_specified():
    gyre, passage = scenarios.gyre_scenario(), scenarios.passage_scenario()
    mean, spread = gyre.flow.sample(torch.tensor([[220.0, 0.0], [0.0, 220.0]]))
    # Counter-clockwise, 1.5 m/s on the 220 m ring: north on the east side, west on top.
    assert mean.numpy() == pytest.approx(np.array([[0.0, 1.5], [-1.5, 0.0]]), abs=0.05)
    assert spread.numpy() == pytest.approx([0.25, 0.25])
    mean, _ = passage.flow.sample(torch.tensor([[40.0, 200.0], [-400.0, 0.0], [120.0, 0.0]]))
    assert mean[0].numpy() == pytest.approx([0.0, -1.4], abs=0.02)       # the jet's axis
    assert mean[1:].norm(dim=-1).max() < 0.05                              # still elsewhere
    for scenario in (gyre, passage):
        land = torch.as_tensor(scenario.depth <= 0)
        assert scenario.flow.raster.values[:2, land].abs().max() == 0.0


def test_arctic_is_the_real_field_scaled_or_skipped(tmp_path):
    with pytest.raises(scenarios.ScenarioUnavailable, match='absent'):
        scenarios.build('arctic', arctic_file=tmp_path / 'missing.nc')
    arctic = _build('arctic')
    assert arctic.flow.max_speed() == pytest.approx(1.5, abs=0.1)   # faded over banks
    assert arctic.depth.shape == (51, 91)
    # The coastal jet runs east, against the westward transit.
    mean, _ = arctic.flow.sample(torch.tensor([[-435.0, -262.0]]))
    assert mean[0, 0] > 1.0


def test_true_current_is_a_seeded_realisation_the_simulator_runs(tmp_path):
    scenario = scenarios.passage_scenario()
    a, b = scenario.true_flow(0), scenario.true_flow(1)
    assert torch.equal(a.raster.values, scenario.true_flow(0).raster.values)
    deviation = (a.raster.values[:2] - scenario.flow.raster.values[:2])
    assert not torch.equal(a.raster.values, b.raster.values)
    assert float(deviation.std()) == pytest.approx(0.25, rel=0.5)
    assert float(a.raster.values[2].abs().max()) == 0.0
    sim = Simulator(scenario.sim_config(0, tmp_path))
    for x, y in ((40.0, 200.0), (-300.0, -100.0)):
        expected, _ = a.sample(torch.tensor([x, y]))
        got = sim.current.velocity(x, y, 0.0)
        assert np.array(got, float) == pytest.approx(expected.numpy(), abs=1e-3)
    assert sim.true_odometry().x == scenario.start[0]


def test_currents_file_replaces_the_field(tmp_path):
    path = tmp_path / 'east.npz'
    np.savez(path, u=np.full((5, 6), 0.7), v=np.zeros((5, 6)))
    scenario = scenarios.build('gyre', currents=path)
    mean, spread = scenario.flow.sample(torch.tensor([[220.0, 0.0], [-300.0, 200.0]]))
    assert mean.numpy() == pytest.approx(np.array([[0.7, 0.0], [0.7, 0.0]]), abs=1e-5)
    assert spread.numpy() == pytest.approx([0.25, 0.25])
    assert scenario.goal == scenarios.gyre_scenario().goal


def test_bad_names_and_configs_are_refused():
    with pytest.raises(ValueError, match="unknown scenario 'lagoon'"):
        scenarios.build('lagoon')
    good = scenarios.passage_scenario()
    with pytest.raises(ValueError, match='goal_radius'):
        scenarios.Scenario(**{**good.__dict__, 'goal_radius': 0.0})
    with pytest.raises(ValueError, match='finite 2-D'):
        scenarios.Scenario(**{**good.__dict__, 'depth': np.full((3, 3), math.nan)})
    assert isinstance(good.flow, FlowField)


def test_the_river_core_outruns_the_boat_and_its_banks_do_not():
    from asv_autonomy.planning.mdp import max_steady_speed
    from asv_autonomy.planning.vessel import VesselParams
    river = scenarios.river_scenario()
    top = max_steady_speed(VesselParams())
    mean, _ = river.flow.sample(torch.tensor([[0.0, 0.0], [0.0, 80.0], [0.0, -80.0]]))
    speed = mean.norm(dim=-1)
    assert float(speed[0]) > top + 0.3                    # no headway up the middle
    assert float(speed[1:].max()) < 0.7                   # slow water near the banks
    assert float(mean[0, 0]) < 0.0                        # flowing west, against the boat
