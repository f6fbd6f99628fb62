"""Static background + fading anomaly (mapping/drifting.py) and the mapper factory."""
import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from asv_autonomy.mapping import (DriftingFieldMapper, GPMapper, GPMapperConfig, load_mapper,
                                  make_mapper)
from asv_autonomy.measurements import InvalidInput

from tracks import lawnmower

TAU = 150.0
CONFIG = GPMapperConfig(kernel='rbf', inducing_spacing=10.0, lengthscale=30.0, noise_std=0.05,
                        temporal_timescale=TAU, adapt_steps=10)


def plume(xy, t):
    """test_gp's warm plume drifting east at 0.2 m/s across a 200 m square."""
    cx = 40.0 + 0.2 * t
    return 15.0 + 3.0 * np.exp(-((xy[:, 0] - cx) ** 2 + (xy[:, 1] - 100.0) ** 2) / (2 * 30.0 ** 2))


def background(xy):
    """A static structure (shallow warming, gradients) under the plume."""
    return 0.8 * np.sin(xy[:, 0] / 40.0) + 0.5 * np.cos(xy[:, 1] / 50.0)


def _feed(mapper, x, t, y, batch=5):
    for i in range(0, len(x), batch):
        mapper.update(x[i:i + batch], t[i:i + batch], y[i:i + batch])
    return mapper


def _survey(n=320, seed=0):
    """One lawnmower pass over a static field: positions, times, noisy values."""
    x = lawnmower(n, width=200.0, lane=25.0, step=5.0)
    t = np.arange(n) * 1.0
    y = 15.0 + background(x) + 0.05 * np.random.default_rng(seed).normal(size=n)
    return x, t, y


@pytest.fixture(scope='module')
def trained():
    x, t, y = _survey()
    return _feed(DriftingFieldMapper(CONFIG), x, t, y), x, t, y


# ------------------------------------------------------------------------------ model

def test_on_a_static_field_the_composite_approaches_the_background(trained):
    mapper, x, t, y = trained
    noise = CONFIG.noise_std
    q = np.stack(np.meshgrid(np.linspace(0, 200, 21), np.linspace(0, 175, 18)), -1).reshape(-1, 2)
    alone = mapper.background.predict(q)[0]
    anomaly = mapper.anomaly.predict(q)[0]
    # Along a track the background predicts the next reading: the innovations the anomaly
    # holds are noise and interpolation errors, within the noise level.
    assert np.sqrt(np.mean(anomaly ** 2)) < noise and np.abs(anomaly).max() < 3 * noise
    composite = mapper.predict(q)[0]
    np.testing.assert_allclose(composite, alone + anomaly)
    truth = 15.0 + background(q)
    assert np.sqrt(np.mean((composite - truth) ** 2)) < np.sqrt(
        np.mean((alone - truth) ** 2)) + 0.5 * noise
    # After many timescales the background is left, plus the anomaly's prior mean (the
    # running mean of the innovations: about 0).
    later = mapper.predict(q, t[-1] + 20 * TAU)[0]
    assert abs(mapper.anomaly.output_mean) < 0.5 * noise
    np.testing.assert_allclose(later, alone + mapper.anomaly.output_mean, atol=1e-6)


def test_tracks_a_drifting_plume_better_than_static_and_fading_maps():
    """A static region surveyed first and not revisited, then two passes over a drifting
    plume (test_gp's) 320 s apart. The static map keeps the plume where it was; the
    fading one forgets the first region; the composite keeps it and follows the plume."""
    first = lawnmower(320, width=200.0, lane=25.0, step=5.0) + [200.0, 0.0]
    x = np.concatenate([first, lawnmower(640, width=200.0, lane=25.0, step=5.0)])
    t = np.arange(len(x)) * 1.0

    def truth(xy, time):
        return background(xy) + plume(xy, time - 320.0)   # drifts over x < 200
    y = np.concatenate([truth(x[i:i + 1], t[i]) for i in range(len(x))])
    y += 0.05 * np.random.default_rng(6).normal(size=len(x))
    q = np.stack(np.meshgrid(np.linspace(0, 400, 41), np.linspace(0, 200, 21)), -1).reshape(-1, 2)
    mappers = {'static': GPMapper(replace(CONFIG, temporal_timescale=0.0)),
               'fading': GPMapper(replace(CONFIG, static_background=False)),
               'drifting': make_mapper(CONFIG)}
    rmse = {}
    for name, mapper in mappers.items():
        error = _feed(mapper, x, t, y).predict(q)[0] - truth(q, t[-1])
        rmse[name] = {area: np.sqrt(np.mean(error[mask] ** 2)) for area, mask in (
            ('all', q[:, 0] >= 0.0), ('plume', q[:, 0] < 200.0), ('first', q[:, 0] > 200.0))}
    assert isinstance(mappers['drifting'], DriftingFieldMapper)
    assert rmse['drifting']['all'] < 0.9 * min(rmse['static']['all'], rmse['fading']['all']), rmse
    assert rmse['drifting']['plume'] < 0.8 * rmse['static']['plume'], rmse
    assert rmse['drifting']['first'] < 0.5 * rmse['fading']['first'], rmse


def test_the_background_is_not_forgotten():
    """A warm bay sampled early keeps its value many timescales later with the composite;
    with a plain fading map it reverts to the mean."""
    bay = np.column_stack([np.linspace(0.0, 40.0, 41), np.full(41, 20.0)])
    lake = np.column_stack([np.linspace(200.0, 300.0, 101), np.full(101, 20.0)])
    x = np.concatenate([bay, lake, lake[::-1], lake])
    t = np.concatenate([np.arange(41.0), 41.0 + 6.0 * np.arange(303)])   # ~12 tau later
    y = np.where(x[:, 0] < 100.0, 18.0, 15.0)
    q = bay[::10]
    drifting = _feed(DriftingFieldMapper(CONFIG), x, t, y)
    fading = _feed(GPMapper(replace(CONFIG, static_background=False)), x, t, y)
    assert t[-1] - t[40] > 10 * TAU
    np.testing.assert_allclose(drifting.predict(q)[0], 18.0, atol=0.1)
    assert (fading.predict(q)[0] < 16.0).all()


def test_predictive_std_adds_the_parts_variances(trained):
    mapper = trained[0]
    q = np.array([[50.0, 50.0], [500.0, 500.0]])
    for noise in (False, True):
        _, std = mapper.predict(q, include_noise=noise)
        _, std_g = mapper.background.predict(q, include_noise=noise)
        _, std_h = mapper.anomaly.predict(q)
        np.testing.assert_allclose(std, np.sqrt(std_g ** 2 + std_h ** 2))
    # The background's noise, fitted to the readings: near the true 0.05.
    assert mapper.noise_std == mapper.background.noise_std == pytest.approx(0.05, rel=0.3)


def test_variance_reduction_sums_the_parts(trained):
    mapper = trained[0]
    candidates = np.array([[50.0, 60.0], [400.0, 400.0]])
    targets = mapper.inducing_points
    gain = mapper.variance_reduction(candidates)
    np.testing.assert_allclose(gain, mapper.background.variance_reduction(candidates, targets)
                               + mapper.anomaly.variance_reduction(candidates, targets))
    assert gain[0] > gain[1] >= 0.0           # far from every target: nothing to gain
    assert mapper.variance_reduction(np.zeros((3, 4, 2))).shape == (3,)
    empty = DriftingFieldMapper(CONFIG)
    np.testing.assert_array_equal(empty.variance_reduction(candidates), np.zeros(2))


def test_the_interface_the_callers_use(trained):
    mapper, x, t, _ = trained
    assert mapper.num_samples == len(x) == mapper.anomaly.num_samples
    np.testing.assert_array_equal(mapper.inducing_points, mapper.background.inducing_points)
    assert mapper.spacing == mapper.background.spacing
    assert mapper.time == t[-1]
    empty = DriftingFieldMapper(CONFIG)
    assert empty.num_samples == 0 and empty.time is None
    mean, std = empty.predict(np.zeros((2, 2)))
    assert np.isfinite(mean).all() and (std > 0).all()


def test_first_batch_defines_the_background_only():
    mapper = DriftingFieldMapper(CONFIG)
    mapper.update(np.array([[0.0, 0.0], [5.0, 0.0]]), 0.0, [16.0, 16.2])
    q = np.array([[0.0, 0.0]])
    assert abs(mapper.anomaly.predict(q)[0][0]) < 1e-9
    assert mapper.predict(q)[0][0] == pytest.approx(16.0, abs=0.2)


@pytest.mark.parametrize('xy, t, y', [
    ([[0.0, np.nan]], 500.0, 1.0),
    ([[0.0, 1.0]], np.inf, 1.0),
    ([[0.0, 1.0], [2.0, 3.0]], 500.0, [1.0, np.nan]),
])
def test_non_finite_input_is_refused_and_changes_nothing(trained, xy, t, y):
    mapper = copy.deepcopy(trained[0])
    q = np.array([[10.0, 10.0]])
    before, count = mapper.predict(q), mapper.num_samples
    with pytest.raises(InvalidInput) as error:
        mapper.update(np.array(xy), t, y)
    assert error.value.reason == 'nan'
    assert mapper.num_samples == mapper.anomaly.num_samples == count
    for a, b in zip(before, mapper.predict(q)):
        np.testing.assert_array_equal(a, b)


def test_a_static_field_is_refused():
    with pytest.raises(ValueError, match='temporal_timescale > 0'):
        DriftingFieldMapper(replace(CONFIG, temporal_timescale=0.0))


# ------------------------------------------------------------------------------ factory

@pytest.mark.parametrize('tau, static_background, expected', [
    (0.0, True, GPMapper), (0.0, False, GPMapper), (TAU, False, GPMapper),
    (TAU, True, DriftingFieldMapper),
])
def test_make_mapper_picks_the_class(tau, static_background, expected):
    config = replace(CONFIG, temporal_timescale=tau, static_background=static_background)
    mapper = make_mapper(config)
    assert type(mapper) is expected and mapper.config == config


def test_the_parts_are_plain_gp_mappers():
    mapper = DriftingFieldMapper(CONFIG)
    assert mapper.background.config == replace(CONFIG, temporal_timescale=0.0,
                                               static_background=False)
    assert mapper.anomaly.config == replace(CONFIG, static_background=False)
    assert GPMapperConfig().static_background is True


# ------------------------------------------------------------------------------ snapshots

def test_snapshot_round_trip_predicts_and_continues_identically(trained, tmp_path):
    mapper = copy.deepcopy(trained[0])
    path = tmp_path / 'temperature.pt'
    mapper.save(path)
    restored = DriftingFieldMapper.load(path)
    assert restored.config == mapper.config and restored.num_samples == mapper.num_samples
    via_factory = load_mapper(path, CONFIG)
    q = np.random.default_rng(3).uniform(0, 200, size=(100, 2))
    for other in (restored, via_factory):
        for a, b in zip(mapper.predict(q, 400.0), other.predict(q, 400.0)):
            np.testing.assert_array_equal(a, b)
    x, t, y = _survey(200, seed=1)
    for m in (mapper, restored):
        _feed(m, x + 20.0, t + 400.0, y)
    for a, b in zip(mapper.predict(q), restored.predict(q)):
        np.testing.assert_array_equal(a, b)


def test_load_refuses_the_other_kind_naming_the_file(trained, tmp_path):
    drifting = tmp_path / 'drifting.pt'
    trained[0].save(drifting)
    plain = tmp_path / 'plain.pt'
    _feed(GPMapper(replace(CONFIG, static_background=False)), *_survey(50)).save(plain)
    with pytest.raises(ValueError, match=f'{drifting}.*snapshot of a DriftingFieldMapper, '
                                         'not of a GPMapper'):
        GPMapper.load(drifting)
    with pytest.raises(ValueError, match=f'{plain}.*snapshot of a GPMapper, not of a '
                                         'DriftingFieldMapper'):
        DriftingFieldMapper.load(plain)
    # The factory follows the configuration: a field saved as plain fading map does not
    # restore as a composite, and the message says which setting decides.
    with pytest.raises(ValueError, match='static_background'):
        load_mapper(plain, CONFIG)
    assert isinstance(load_mapper(plain, replace(CONFIG, static_background=False)), GPMapper)


def test_corrupt_or_mismatched_snapshots_are_refused_and_change_nothing(trained, tmp_path):
    mapper = copy.deepcopy(trained[0])
    path = tmp_path / 'temperature.pt'
    mapper.save(path)
    with pytest.raises(ValueError, match=f'{path}.*max_inducing'):
        DriftingFieldMapper.load(path, replace(CONFIG, max_inducing=32))
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a snapshot')
    with pytest.raises(ValueError, match=f'{garbage}: not a readable DriftingFieldMapper'):
        DriftingFieldMapper.load(garbage)
    with pytest.raises(FileNotFoundError):
        load_mapper(tmp_path / 'missing.pt', CONFIG)
    q = np.array([[10.0, 10.0], [150.0, 100.0]])
    before = mapper.predict(q)
    state = mapper.state_dict()
    state['anomaly']['m'] = state['anomaly']['m'] * np.nan   # the second part is refused
    state['background'] = DriftingFieldMapper(CONFIG).background.state_dict()
    with pytest.raises(ValueError, match='anomaly: m is not finite'):
        mapper.load_state_dict(state)
    for a, b in zip(before, mapper.predict(q)):
        np.testing.assert_array_equal(a, b)
    state = mapper.state_dict()
    state['version'] += 1
    with pytest.raises(ValueError, match='version'):
        mapper.load_state_dict(state)


def test_gp_snapshot_from_before_static_background_existed_still_loads(tmp_path):
    mapper = _feed(GPMapper(replace(CONFIG, temporal_timescale=0.0)), *_survey(50))
    state = mapper.state_dict()
    del state['config']['static_background']
    path = tmp_path / 'bathymetry.pt'
    torch.save(state, path)
    restored = load_mapper(path, replace(CONFIG, temporal_timescale=0.0))
    q = np.array([[10.0, 10.0]])
    np.testing.assert_array_equal(restored.predict(q)[0], mapper.predict(q)[0])
