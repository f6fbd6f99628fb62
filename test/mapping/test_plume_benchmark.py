"""The plume-tracking benchmark: evaluation pieces by hand, and a short simulated survey."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from asv_autonomy.mapping.gp import GPMapperConfig
from asv_autonomy.mapping.plume_benchmark import (
    ROW_KEYS, SUMMARY_KEYS, PlumeBenchConfig, SurveyedArea, map_errors, run_plume_benchmark,
    summarize, write_json)
from asv_autonomy.planning.baseline import BaselineConfig, BaselineController
from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.sim.headless import HeadlessConfig

# config/autonomy.yaml's survey and temperature field (the CLI reads them from there).
POLYGON = (-50.0, 40.0, 150.0, 40.0, 150.0, 190.0, -50.0, 190.0)
MAPPER = GPMapperConfig(inducing_spacing=10.0, temporal_timescale=600.0)
LOOP = HeadlessConfig(control_rate=5.0)


def _run(duration: float, every_s: float, mapper: GPMapperConfig = MAPPER):
    rows = []
    result = run_plume_benchmark(
        PlumeBenchConfig(duration=duration, every_s=every_s),
        BaselineController(BaselineConfig(survey_polygon=POLYGON), VesselParams()), mapper,
        LOOP, progress=rows.append)
    assert rows == result.rows       # progress saw every row, as measured
    return result


@pytest.fixture(scope='module')
def short_survey():
    """240 s of the default survey, scored every 60 s."""
    return _run(240.0, 60.0)


@pytest.mark.parametrize('kwargs, message', [
    ({'duration': 0.0}, 'duration must be > 0'),
    ({'every_s': math.nan}, 'every_s must be > 0'),
    ({'every_s': 700.0, 'duration': 600.0}, 'must not exceed duration'),
    ({'warmup_s': -1.0}, 'warmup_s must be >= 0'),
    ({'radius_m': 0.0}, 'radius_m must be > 0'),
    ({'plume_threshold': -0.1}, 'plume_threshold must be > 0'),
    ({'seed': -1}, 'seed must be an integer >= 0'),
    ({'seed': 1.5}, 'seed must be an integer >= 0'),
])
def test_config_refuses_bad_values_with_a_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PlumeBenchConfig(**kwargs)


def test_map_errors_by_hand():
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0], [30.0, 0.0]])
    truth = np.array([16.0, 17.0, 18.0, 19.0])
    plume = np.array([False, False, True, True])
    assert map_errors(lambda q: truth.copy(), xy, truth, plume) == (0.0, 0.0)
    # Off by 1 at the two plume points, exact elsewhere: sqrt(2 / 4) overall, 1 in the plume.
    rmse, plume_rmse = map_errors(lambda q: truth + (q[:, 0] >= 20.0), xy, truth, plume)
    assert rmse == pytest.approx(math.sqrt(0.5)) and plume_rmse == pytest.approx(1.0)
    rmse, plume_rmse = map_errors(lambda q: truth + 2.0, xy, truth, np.zeros(4, bool))
    assert rmse == pytest.approx(2.0) and math.isnan(plume_rmse)
    assert all(math.isnan(v) for v in map_errors(lambda q: q[:, 0], xy[:0], truth[:0],
                                                 plume[:0]))


def test_surveyed_area_grows_with_the_track():
    points = np.stack(np.meshgrid(np.arange(0.0, 101.0, 5.0), [0.0, 14.0, 16.0, 40.0]),
                      -1).reshape(-1, 2)
    area = SurveyedArea(points, 15.0)
    assert not area.mask.any()
    area.add(np.zeros((0, 2)))
    assert not area.mask.any()
    area.add(np.array([[0.0, 0.0], [1.0, 0.0]]))
    first = area.mask.copy()
    assert set(map(tuple, points[first])) == {
        (x, y) for x, y in map(tuple, points) if math.hypot(x - min(x, 1.0), y) <= 15.0}
    area.add(np.column_stack([np.linspace(0.0, 100.0, 201), np.zeros(201)]))
    assert (area.mask >= first).all() and area.mask.sum() > first.sum()
    assert set(points[area.mask][:, 1]) == {0.0, 14.0}     # 16 m and 40 m off stay out


def test_summary_leaves_out_the_warm_up_and_missing_figures():
    def row(t, st, static, plume_st=math.nan, plume_static=math.nan):
        # The fading map: the static one's figures plus 1.
        return {'t_s': t, 'rmse_spatiotemporal': st, 'rmse_static': static,
                'plume_rmse_spatiotemporal': plume_st, 'plume_rmse_static': plume_static,
                'rmse_fading': static + 1.0, 'plume_rmse_fading': plume_static + 1.0}
    rows = [row(60, 0.0, 9.0), row(120, math.nan, math.nan), row(180, 0.2, 0.3, 1.0, 2.0),
            row(240, 0.4, 0.3), row(300, 0.3, 0.5, 3.0, 4.0)]
    summary = summarize(rows, warmup_s=120.0)
    assert list(summary) == list(SUMMARY_KEYS)
    assert summary['mean_rmse_spatiotemporal'] == pytest.approx(0.3)
    assert summary['mean_rmse_static'] == pytest.approx(1.1 / 3)
    assert (summary['final_rmse_spatiotemporal'], summary['final_rmse_static']) == (0.3, 0.5)
    assert summary['fraction_spatiotemporal_lower'] == pytest.approx(2 / 3)
    assert summary['mean_plume_rmse_spatiotemporal'] == pytest.approx(2.0)
    assert summary['mean_plume_rmse_static'] == pytest.approx(3.0)
    assert summary['mean_rmse_fading'] == pytest.approx(1.1 / 3 + 1.0)
    assert summary['final_rmse_fading'] == 1.5
    assert summary['mean_plume_rmse_fading'] == pytest.approx(4.0)
    assert all(math.isnan(v) for v in summarize(rows, warmup_s=300.0).values())


@pytest.mark.slow
def test_short_survey_rows(short_survey):
    rows = short_survey.rows
    assert [r['t_s'] for r in rows] == [60.0, 120.0, 180.0, 240.0]
    for r in rows:
        assert list(r) == list(ROW_KEYS), r
    samples = [r['n_samples'] for r in rows]
    # 1 Hz probe; the first readings come before the first odometry.
    assert samples == sorted(samples) and 50 <= samples[0] <= 60 and samples[-1] >= 230
    cells = [r['surveyed_cells'] for r in rows]
    assert all(b > a for a, b in zip(cells, cells[1:])), cells
    for r in rows:     # samples from the first evaluation on: finite, sane errors [degC]
        for key in ('rmse_spatiotemporal', 'rmse_static', 'rmse_fading'):
            assert 0.0 < r[key] < 1.0, r
        assert r['plume_cells'] <= r['surveyed_cells']
        for key in ('plume_rmse_spatiotemporal', 'plume_rmse_static', 'plume_rmse_fading'):
            assert math.isnan(r[key]) == (r['plume_cells'] == 0)
    assert list(short_survey.summary) == list(SUMMARY_KEYS)
    assert short_survey.summary['final_rmse_static'] == rows[-1]['rmse_static']


@pytest.mark.slow
def test_short_survey_final_maps(short_survey):
    r = short_survey
    shape = (len(r.y), len(r.x))
    assert r.truth.shape == r.surveyed.shape == shape
    assert set(r.means) == {'spatiotemporal', 'static', 'fading'}
    land = np.isnan(r.truth)
    for mean in r.means.values():
        assert mean.shape == shape and (np.isnan(mean) == land).all()
    assert r.surveyed.sum() == r.rows[-1]['surveyed_cells']   # the window holds all of it
    assert r.track.shape[1] == 2 and len(r.track) == pytest.approx(240.0 / 0.02, abs=2)
    low, high = r.track.min(axis=0), r.track.max(axis=0)
    assert r.x[0] < low[0] and r.x[-1] > high[0] and r.y[0] < low[1] and r.y[-1] > high[1]
    # The static map is close to the (nearly steady) truth where surveyed.
    seen = r.surveyed & ~land
    assert np.abs(r.means['static'][seen] - r.truth[seen]).mean() < 0.2


@pytest.mark.slow
def test_the_maps_agree_without_a_timescale():
    """The maps differ only by the temporal timescale (and whether a static background
    lies under the fading part): with 0 for all they are the same static GP."""
    rows = _run(120.0, 60.0, replace(MAPPER, temporal_timescale=0.0)).rows
    for r in rows:
        assert r['rmse_spatiotemporal'] == pytest.approx(r['rmse_static'], abs=1e-9)
        assert r['rmse_fading'] == pytest.approx(r['rmse_static'], abs=1e-9)


@pytest.mark.slow
def test_without_static_background_the_spatiotemporal_map_is_the_fading_one():
    rows = _run(120.0, 60.0, replace(MAPPER, static_background=False)).rows
    for r in rows:
        assert r['rmse_spatiotemporal'] == pytest.approx(r['rmse_fading'], abs=1e-9)


@pytest.mark.slow
def test_json_is_strict_and_replaced_atomically(short_survey, tmp_path):
    path = tmp_path / 'plume.json'
    write_json(path, None, {'seed': 0})
    assert json.loads(path.read_text()) == {'settings': {'seed': 0}, 'summary': {},
                                            'rows': []}
    write_json(path, short_survey, {'seed': 0})
    content = json.loads(path.read_text(), parse_constant=pytest.fail)   # no NaN token
    assert len(content['rows']) == 4
    nan_rows = [r for r in short_survey.rows if math.isnan(r['plume_rmse_static'])]
    assert sum(r['plume_rmse_static'] is None for r in content['rows']) == len(nan_rows)
    assert [p.name for p in tmp_path.iterdir()] == ['plume.json']
