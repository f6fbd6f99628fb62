"""Informative survey vs lawnmower at equal distance (planning/survey_benchmark.py)."""
from dataclasses import replace

import numpy as np
import pytest

from asv_autonomy.mapping.gp import GPMapperConfig
from asv_autonomy.planning.mppi import MPPIConfig
from asv_autonomy.planning.planner import PlannerConfig
from asv_autonomy.planning.survey_benchmark import SurveySettings, run_survey

# A small area next to the start, short distance marks, a fixed small GP.
POLYGON = (-30.0, 20.0, 30.0, 20.0, 30.0, 60.0, -30.0, 60.0)
SETTINGS = replace(SurveySettings(), polygon=POLYGON, distances=(30.0, 60.0),
                   line_spacing=15.0, max_time=300.0,
                   mapper=GPMapperConfig(kernel='rbf', lengthscale=10.0, signal_std=5.0,
                                         inducing_spacing=5.0, adapt_every=0))
SMALL = PlannerConfig(mode='survey', survey_polygon=POLYGON,
                      mppi=MPPIConfig(rollouts=128, horizon=20, dt=0.2, compile=False))


@pytest.mark.parametrize('planner', ['baseline', 'asv'])
def test_both_surveys_are_scored_at_the_same_distance_marks(planner):
    rows, track = run_survey(planner, 0, SETTINGS, planner_config=SMALL)
    assert [r['distance_m'] for r in rows] == [30.0, 60.0]
    for row in rows:
        assert row['planner'] == planner and row['seed'] == 0
        assert np.isfinite(row['map_rmse']) and row['map_rmse'] > 0.0
        assert 0.0 < row['time_s'] < SETTINGS.max_time
    # Sampling more of the area removes uncertainty: with fixed hyperparameters the mean
    # map std does not grow.
    assert rows[1]['map_std_mean'] <= rows[0]['map_std_mean'] + 1e-6
    # The boat went into the survey area.
    inside = (np.abs(track[:, 0]) <= 30.0) & (track[:, 1] >= 20.0) & (track[:, 1] <= 60.0)
    assert inside.any()


def test_unknown_planner_is_refused():
    with pytest.raises(ValueError, match='unknown survey planner'):
        run_survey('zigzag', 0, SETTINGS)


def test_the_planner_gets_the_maps_std_not_its_square_root():
    from asv_autonomy.mapping.gp import GPMapper, GPMapperConfig
    from asv_autonomy.planning.survey_benchmark import _std_raster
    mapper = GPMapper(GPMapperConfig(kernel='rbf', lengthscale=5.0, max_inducing=32))
    rng = np.random.default_rng(0)
    xy = rng.uniform(0.0, 20.0, (40, 2))
    mapper.update(xy, np.zeros(40), 10.0 * np.sin(xy[:, 0] / 5.0))
    xs, ys = np.linspace(-10.0, 30.0, 9), np.linspace(-10.0, 30.0, 7)
    raster = _std_raster(mapper, (xs, ys), 0.0)
    _, std = mapper.predict(np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2), 0.0)
    assert tuple(raster.values.shape) == (1, 7, 9)
    assert raster.values.numpy().reshape(-1) == pytest.approx(std)
