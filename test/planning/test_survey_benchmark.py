"""Informative survey vs lawnmower at equal distance (planning/survey_benchmark.py)."""
from dataclasses import replace

import numpy as np
import pytest

from asv_autonomy.planning.mppi import MPPIConfig
from asv_autonomy.planning.planner import PlannerConfig
from asv_autonomy.planning.survey_benchmark import SurveySettings, run_survey

# A small area next to the start, short distance marks, a fixed small GP.
POLYGON = (-30.0, 20.0, 30.0, 20.0, 30.0, 60.0, -30.0, 60.0)
SETTINGS = replace(SurveySettings(), polygon=POLYGON, distances=(30.0, 60.0),
                   line_spacing=15.0, max_time=300.0)
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
    # Sampling more of the area removes uncertainty: the mean map std does not grow.
    assert rows[1]['map_std_mean'] <= rows[0]['map_std_mean'] + 1e-6
    # The boat went into the survey area.
    inside = (np.abs(track[:, 0]) <= 30.0) & (track[:, 1] >= 20.0) & (track[:, 1] <= 60.0)
    assert inside.any()


def test_unknown_planner_is_refused():
    with pytest.raises(ValueError, match='unknown survey planner'):
        run_survey('zigzag', 0, SETTINGS)
