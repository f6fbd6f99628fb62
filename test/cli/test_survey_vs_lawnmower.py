"""summary.json's survey_vs_lawnmower: the mission's map against the lawnmower's after the
same distance (cli/report.py), and which missions get one (cli/sim.py)."""
from dataclasses import replace

import numpy as np
import pytest

from asv_autonomy.cli.launch_xml import load_launch, resolve_launch_file
from asv_autonomy.cli.report import LawnmowerReference, RunData, survey_vs_lawnmower
from asv_autonomy.cli.sim import lawnmower_reference
from asv_autonomy.mapping.gp import GPMapperConfig
from asv_autonomy.planning.survey_benchmark import SurveySettings
from asv_autonomy.sim.simulator import SimConfig, Simulator

POLYGON = (-30.0, 20.0, 30.0, 20.0, 30.0, 60.0, -30.0, 60.0)
SETTINGS = replace(SurveySettings(), polygon=POLYGON, line_spacing=15.0, max_time=300.0,
                   mapper=GPMapperConfig(kernel='rbf', max_inducing=64,
                                         inducing_spacing=5.0))


def _run(map_error: float, distance: float = 80.0) -> RunData:
    """A mission whose final map is the truth plus ``map_error`` on a 3 m grid over
    x, y in [-45, 45] (beyond the polygon on the west: points outside it must not count),
    and whose true track is ``distance`` [m] long."""
    sim = Simulator(SimConfig(seed=0))
    xs, ys = np.meshgrid(np.arange(-60.0, 60.1, 5.0), np.arange(0.0, 80.1, 5.0))
    x, y = xs.ravel(), ys.ravel()
    truth = sim.world.depth(x, y)
    gx, gy = np.meshgrid(np.arange(-45.0, 45.1, 3.0), np.arange(0.0, 80.1, 3.0))
    mean = sim.world.depth(gx.ravel(), gy.ravel()) + map_error
    t = np.linspace(0.0, 100.0, 11)
    track = np.column_stack([t, np.zeros_like(t), np.linspace(0.0, distance, 11)])
    return RunData(truth=track, fields={'bathymetry': (x, y, truth)},
                   maps={'bathymetry': (gx.ravel(), gy.ravel(), mean,
                                        np.ones(mean.size))})


def test_both_maps_are_scored_at_the_same_points_after_the_same_distance():
    reference = LawnmowerReference(SETTINGS, SimConfig(seed=0))
    result = survey_vs_lawnmower(_run(map_error=0.5), reference)
    assert result['field'] == 'bathymetry'
    assert result['distance_m'] == pytest.approx(80.0)
    assert result['lawnmower_distance_m'] == pytest.approx(80.0, abs=1.0)
    # The mission's map: the truth + 0.5 m (bilinear interpolation of a smooth field).
    assert result['map_rmse'] == pytest.approx(0.5, abs=0.05)
    # The lawnmower mapped 80 m of a 60 x 40 m area: a real map, not the truth.
    assert 0.05 < result['lawnmower_map_rmse'] < 10.0
    # Only points inside the polygon, in water, where the mission's map has a value.
    assert result['points'] > 0 and result['points_fraction'] == pytest.approx(1.0)


def test_a_longer_lawnmower_survey_maps_better():
    reference = LawnmowerReference(SETTINGS, SimConfig(seed=0))
    short = survey_vs_lawnmower(_run(0.0, distance=30.0), reference)
    long = survey_vs_lawnmower(_run(0.0, distance=150.0), reference)
    assert long['lawnmower_map_rmse'] < short['lawnmower_map_rmse']


def test_no_comparison_without_a_map_of_the_field():
    run = _run(0.0)
    run.maps.clear()
    assert survey_vs_lawnmower(run, LawnmowerReference(SETTINGS, SimConfig())) is None


def test_survey_missions_of_the_planner_get_a_reference_from_the_nodes_parameters():
    reference = lawnmower_reference(load_launch(resolve_launch_file('sim'), {'seed': '3'}))
    # config/autonomy.yaml's survey polygon and bathymetry GP, the sim node's seed
    assert reference.settings.polygon == (-50.0, 40.0, 150.0, 40.0, 150.0, 190.0, -50.0,
                                          190.0)
    assert reference.settings.mapper.inducing_spacing == 10.0
    assert reference.sim_config.seed == 3
    assert reference.field == 'bathymetry'


@pytest.mark.parametrize('arguments', [{'goal': '10,20'},
                                       {'controller': 'baseline_controller_node'}])
def test_goto_missions_and_the_lawnmower_itself_get_none(arguments):
    assert lawnmower_reference(load_launch(resolve_launch_file('sim'), arguments)) is None
