"""Fault injection into a normal series: effects on the channels and labels."""
import math

import numpy as np
import pytest

from asv_autonomy.anomaly import inject as inj
from asv_autonomy.anomaly.series import AlignedSeries

NMEA = ('gps_fix', 'gps_speed', 'gps_step_east', 'gps_step_north', 'cog_vs_track', 'sog',
        'depth', 'wind_speed_relative')


def _series(channels=NMEA, seconds=600, rate=1.0):
    times = 1000.0 + np.arange(int(seconds * rate)) / rate
    values = np.zeros((times.size, len(channels)))
    for j, name in enumerate(channels):
        values[:, j] = {'gps_fix': 1.0, 'gps_speed': 3.0, 'sog': 3.0, 'depth': 10.0,
                        'cog_vs_track': 0.1, 'imu_heading_vs_course': 0.1}.get(name, 0.0)
    return AlignedSeries(times, values, channels)


def _col(series, name):
    return series.values[:, series.channels.index(name)]


def test_gps_dropout_loses_the_fix_and_the_positions():
    out = inj.inject(_series(), 'gps_dropout', 100.0, 30.0, np.random.default_rng(0))
    inside = np.zeros(600, bool)
    inside[100:130] = True
    assert (_col(out, 'gps_fix') == np.where(inside, 0.0, 1.0)).all()
    for name in ('gps_speed', 'gps_step_east', 'cog_vs_track', 'sog'):
        assert np.isnan(_col(out, name)[inside]).all()
        assert np.isfinite(_col(out, name)[~inside]).all()
    assert (_col(out, 'depth') == 10.0).all()                 # not a GPS channel
    assert (out.anomaly == inside).all()
    assert set(out.fault[inside]) == {'gps_dropout'} and set(out.fault_channel[inside]) == {'gps'}
    assert set(out.fault[~inside]) == {''}


def test_gps_jump_steps_out_and_back():
    out = inj.inject(_series(), 'gps_jump', 100.0, 30.0, np.random.default_rng(1), severity=10.0)
    east, north = _col(out, 'gps_step_east'), _col(out, 'gps_step_north')
    step = np.hypot(east, north)
    assert step[[100, 101, 130, 131]] == pytest.approx(10.0, rel=1e-5)
    assert (east[100], north[100]) == pytest.approx((-east[101], -north[101]))
    assert (east[130], north[130]) == pytest.approx((-east[100], -north[100]))
    assert np.count_nonzero(step) == 4
    assert out.anomaly.sum() == 32 and out.anomaly[100:132].all()   # incl. the jump back
    assert _col(out, 'gps_speed')[100] == pytest.approx(math.hypot(3.0, 10.0), rel=1e-5)
    boat = _series(('gps_fix', 'gps_residual_east', 'gps_residual_north'), rate=10.0)
    out = inj.inject(boat, 'gps_jump', 100.0, 30.0, np.random.default_rng(1), severity=10.0)
    residual = np.hypot(_col(out, 'gps_residual_east'), _col(out, 'gps_residual_north'))
    assert residual[1000:1300] == pytest.approx(10.0, rel=1e-5)
    assert (residual[:1000] == 0.0).all() and (residual[1300:] == 0.0).all()


def test_depth_spikes_are_shallow_echoes_at_the_given_rate():
    out = inj.inject(_series(seconds=3000), 'depth_spike', 100.0, 2000.0,
                     np.random.default_rng(2), severity=0.4)
    depth = _col(out, 'depth')
    spikes = depth != 10.0
    assert not spikes[:100].any() and not spikes[2100:].any()
    assert spikes[100:2100].mean() == pytest.approx(0.4, abs=0.04)
    assert ((depth[spikes] >= 0.5) & (depth[spikes] <= 3.0)).all()
    assert set(out.fault_channel[out.anomaly]) == {'sonar'}


def test_heading_drift_rotates_the_course_comparison():
    out = inj.inject(_series(), 'heading_drift', 100.0, 50.0, np.random.default_rng(3),
                     severity=0.002)
    values = _col(out, 'cog_vs_track')               # plaka-like log: no heading
    assert values[120] == pytest.approx(math.sin(math.asin(0.1) + 0.002 * 20.0), rel=1e-5)
    assert values[99] == pytest.approx(0.1) and values[150] == pytest.approx(0.1)
    assert set(out.fault_channel[out.anomaly]) == {'gps'}
    boat = _series(('imu_heading_vs_course', 'gps_fix'))
    out = inj.inject(boat, 'heading_drift', 100.0, 50.0, np.random.default_rng(3),
                     severity=-0.002)
    assert _col(out, 'imu_heading_vs_course')[140] == pytest.approx(
        math.sin(math.asin(0.1) - 0.08), rel=1e-5)
    assert set(out.fault_channel[out.anomaly]) == {'imu'}


def test_errors_and_random_injections():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match='unknown injection'):
        inj.inject(_series(), 'meteor', 10.0, 10.0, rng)
    with pytest.raises(ValueError, match='changes none'):
        inj.inject(_series(('a', 'b')), 'depth_spike', 10.0, 10.0, rng)
    with pytest.raises(ValueError, match='outside'):
        inj.inject(_series(), 'gps_dropout', 700.0, 10.0, rng)
    series = _series(seconds=3600)
    out = inj.random_injections(series, 5, rng)
    runs = np.flatnonzero(np.diff(np.concatenate([[0], out.anomaly.astype(int), [0]])))
    starts, stops = runs[::2], runs[1::2]
    assert len(starts) == 5
    # 20-90 s each (a jump's label also covers the two samples of the jump back).
    assert starts[0] >= 120 and (stops - starts >= 20).all() and (stops - starts <= 92).all()
    assert (starts[1:] - stops[:-1] >= 40).all()
    assert set(out.fault[out.anomaly]) <= set(inj.KINDS)
    # Outside the labelled faults nothing changed.
    assert (out.values[~out.anomaly] == series.values[~out.anomaly]).all()
    with pytest.raises(ValueError, match='need more than'):
        inj.random_injections(_series(seconds=300), 3, rng)
