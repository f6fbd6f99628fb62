"""AnomalyDetector end to end on a small synthetic system, and safe checkpoints."""
import dataclasses
import os
import pickle

import numpy as np
import pytest
import torch

from asv_autonomy.anomaly.augment import AugmentConfig
from asv_autonomy.anomaly.detector import (AnomalyDetector, CheckpointError, DetectorConfig,
                                           NORMAL)
from asv_autonomy.anomaly.model import ModelConfig
from asv_autonomy.anomaly.series import AlignedSeries
from asv_autonomy.anomaly.training import TrainConfig

CHANNELS = ('a', 'b', 'c')
FAULT = (1200, 1400)


def _system(n, seed, fault=None):
    """a: two sines + noise; b: a delayed by 0.5 s; c: noise (and a short gap). A fault
    breaks the coupling: b is offset by 2 (a sensor bias, a value b takes in normal
    operation too, but not together with that a)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 0.1
    a = np.sin(2 * np.pi * t / 7.0) + 0.5 * np.sin(2 * np.pi * t / 3.1 + seed) \
        + 0.05 * rng.standard_normal(n)
    b = np.roll(a, 5) + 0.05 * rng.standard_normal(n)
    c = rng.standard_normal(n)
    anomaly = np.zeros(n, bool)
    fault_name = np.full(n, '', dtype=object)
    if fault is not None:
        b[fault[0]:fault[1]] += 2.0
        anomaly[fault[0]:fault[1]] = True
        fault_name[fault[0]:fault[1]] = 'coupling_break'
    values = np.stack([a, b, c], 1)
    values[100:130, 2] = np.nan                   # a gap: missing data, not an anomaly
    return AlignedSeries(t, values, CHANNELS, anomaly, fault_name,
                         np.where(anomaly, 'b', '').astype(object))


CONFIG = DetectorConfig(window=21, model=ModelConfig(hidden=16, embedding_dim=8, top_k=2),
                        training=TrainConfig(epochs=4, batch_size=128, windows_per_epoch=2048,
                                             augment=AugmentConfig(max_crop=5)))


@pytest.fixture(scope='module')
def fitted():
    torch.manual_seed(0)
    detector = AnomalyDetector(CONFIG)
    report = detector.fit([_system(2500, 1), _system(2500, 2)], [_system(1500, 3)],
                          labelled=[_system(1200, 4, fault=(500, 800))])
    return detector, report


def test_flags_a_planted_fault_and_not_the_normal_part(fitted):
    detector, report = fitted
    assert report.threshold == detector.threshold > 0
    assert detector.channels == CHANNELS
    assert detector.fault_types == ('coupling_break',)
    series = _system(2000, 7, fault=FAULT)
    scores = detector.score(series)
    inside = scores.is_anomaly[FAULT[0]:FAULT[1]]
    assert inside.mean() > 0.8
    assert np.flatnonzero(inside)[0] <= 20               # within 2 s of the onset
    assert np.median(scores.score[slice(*FAULT)]) > 3 * np.median(scores.score[200:FAULT[0]])
    assert not scores.is_anomaly[:FAULT[0]].any()         # the gap in c included
    # The long-window mean still holds the fault for up to its length after the end.
    assert not scores.is_anomaly[FAULT[1] + 30 + CONFIG.long_window:].any()
    assert np.all(scores.score[:CONFIG.rows_needed - 1] == 0)
    assert set(scores.channel[scores.is_anomaly]) <= {'a', 'b'}
    assert set(scores.channel[~scores.is_anomaly]) == {''}
    named = scores.fault[FAULT[0]:FAULT[1]][inside]        # the classifier, in the fault
    assert np.mean(named == 'coupling_break') > 0.5
    assert np.isfinite(scores.channel_scores).all()


def test_score_window_with_a_memory_matches_offline_scores(fitted):
    detector, _ = fitted
    series = _system(1600, 8, fault=FAULT)
    scores = detector.score(series)
    rows = CONFIG.rows_needed
    memory = detector.score_memory()
    assert memory is not None
    checked = range(rows - 1, FAULT[0] + 100)           # the gap in c, normal, the fault
    for row in checked:
        part = slice(row - rows + 1, row + 1)
        window = detector.score_window(series.values[part], memory, series.times[part])
        assert window.score == pytest.approx(float(scores.score[row]), rel=1e-4, abs=1e-5)
        assert window.is_anomaly == scores.is_anomaly[row]
        assert window.channel == scores.channel[row]
    # Without a memory the long window is left out: never more than with it.
    row = FAULT[0] + 99
    short = detector.score_window(series.values[row - rows + 1:row + 1])
    assert short.score <= scores.score[row] + 1e-5
    with pytest.raises(ValueError, match='score_window needs'):
        detector.score_window(series.values[:5])
    with pytest.raises(ValueError, match='times'):
        detector.score_window(series.values[:rows], detector.score_memory())


def test_the_long_window_finds_a_persistent_offset_the_short_one_misses(fitted):
    detector, _ = fitted
    series = _system(2000, 7)
    series.values[1000:1400, 1] += 0.5       # inside b's normal range, held for 40 s
    with_long = detector.score(series)
    short_only = AnomalyDetector(dataclasses.replace(CONFIG, long_window=0))
    short_only.__dict__.update({k: v for k, v in vars(detector).items() if k != 'config'})
    without = short_only.score(series)
    assert with_long.is_anomaly[1000:1400].mean() > 0.5
    assert without.is_anomaly[1000:1400].mean() < 0.3
    assert not with_long.is_anomaly[:1000].any() and not with_long.is_anomaly[1500:].any()
    assert detector.long_gain.shape == (3,) and np.all(detector.long_gain > 0)
    assert short_only.score_memory() is None


def _echoes(n, seed, spikes=(), size=0.0):
    """a, b as in `_system` (without the gap); c: a slow, quiet signal (a depth) with
    one-step drops of ``size`` at the rows ``spikes`` (spurious echoes)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 0.1
    a = np.sin(2 * np.pi * t / 7.0) + 0.05 * rng.standard_normal(n)
    b = np.roll(a, 5) + 0.05 * rng.standard_normal(n)
    c = 0.5 * np.sin(2 * np.pi * t / 40.0 + seed) + 0.02 * rng.standard_normal(n)
    c[list(spikes)] -= size
    return AlignedSeries(t, np.stack([a, b, c], 1), CHANNELS)


def test_the_peak_term_flags_a_one_step_spike_the_short_average_spreads_out():
    torch.manual_seed(0)
    detector = AnomalyDetector(dataclasses.replace(CONFIG, long_window=0))
    detector.fit([_echoes(2500, 1), _echoes(2500, 2)], [_echoes(1500, 3)])
    assert detector.peak_gain.shape == (3,) and np.all(detector.peak_gain > 0)
    no_peak = AnomalyDetector(dataclasses.replace(detector.config, peak_margin=0.0))
    no_peak.__dict__.update({k: v for k, v in vars(detector).items() if k != 'config'})
    no_peak.peak_gain = np.zeros(3, np.float32)
    # A drop of 25 noise std for one step, at two places.
    series = _echoes(2000, 7, spikes=(1000, 1400), size=0.5)
    scores = detector.score(series)
    assert list(np.flatnonzero(scores.is_anomaly)) == [1000, 1400]
    assert set(scores.channel[scores.is_anomaly]) == {'c'}
    assert not no_peak.score(series).is_anomaly.any()
    # Online the same: the window ending at the spike alarms.
    rows = detector.config.rows_needed
    window = detector.score_window(series.values[1000 - rows + 1:1001])
    assert window.is_anomaly and window.channel == 'c'
    assert window.score == pytest.approx(float(scores.score[1000]), rel=1e-4)
    assert not detector.score(_echoes(2000, 8)).is_anomaly.any()


def _burst(series: AlignedSeries, start: int, seed: int) -> AlignedSeries:
    """``series`` with c three times as noisy for 5 s: rare, but normal."""
    values = series.values.copy()
    values[start:start + 50, 2] *= 3.0
    return dataclasses.replace(series, values=values)


def test_the_threshold_covers_a_normal_excursion_only_training_saw():
    """Half an hour of validation holds few of the normal excursions: the threshold is
    calibrated on the training series as well, so a burst one training mission had does
    not alarm when it comes again (and a real fault still does)."""
    torch.manual_seed(0)
    config = dataclasses.replace(CONFIG, long_window=0, peak_margin=0.0,
                                 threshold_on_training=True)
    detector = AnomalyDetector(config)
    report = detector.fit([_burst(_system(2500, 1), 1500, 1), _system(2500, 2)],
                          [_system(1500, 3)])
    assert report.calibration_hours == pytest.approx((2500 * 2 + 1500) / 10 / 3600)
    again = detector.score(_burst(_system(2000, 9), 600, 9))
    assert not again.is_anomaly.any()
    assert detector.score(_system(2000, 9, fault=FAULT)).is_anomaly[FAULT[0]:FAULT[1]].any()
    # Off (the CSV path's default, for logs that may hold unlabelled anomalies): the
    # validation alone, whose highest score is below the burst's.
    torch.manual_seed(0)
    validation_only = AnomalyDetector(dataclasses.replace(config, threshold_on_training=False))
    report = validation_only.fit([_burst(_system(2500, 1), 1500, 1), _system(2500, 2)],
                                 [_system(1500, 3)])
    assert report.calibration_hours == pytest.approx(1500 / 10 / 3600)
    assert validation_only.threshold < detector.threshold


def test_the_attributed_group_is_the_attributed_channels_not_the_classifiers(fitted):
    detector, _ = fitted
    # The classifier names the fault (class 1: coupling_break on b) in both rows; the
    # scores put the anomaly on a in the first: its group stays a's.
    assert detector.classes[1] == ('coupling_break', 'b')
    scores = np.zeros((2, len(detector.channels)), np.float32)
    scores[0, 0], scores[1, 1] = 9.0, 9.0
    channel, group, fault = detector._labels(scores, np.array([True, True]),
                                             np.array([[0.1, 0.9], [0.2, 0.8]]))
    assert list(channel) == ['a', 'b'] and list(group) == ['a', 'b']
    assert list(fault) == ['coupling_break', 'coupling_break']


def test_both_thrust_residuals_above_the_threshold_is_the_hull():
    detector = AnomalyDetector(CONFIG)
    detector._channels = ('gps_fix', 'thrust_left_residual', 'thrust_right_residual',
                          'thrust_common_residual')
    detector._threshold = 3.0
    scores = np.array([[0.0, 9.0, 1.0, 5.0],      # the left side alone: its thruster
                       [0.0, 9.0, 4.0, 8.0],      # both sides short alike: the hull
                       [8.0, 9.0, 4.0, 8.0],      # the same, GPS lower than a side
                       [9.5, 9.0, 4.0, 8.0]])     # GPS highest: GPS
    channel, group, _ = detector._labels(scores, np.ones(4, bool), None)
    assert list(channel) == ['thrust_left_residual', 'thrust_common_residual',
                             'thrust_common_residual', 'gps_fix']
    assert list(group) == ['thruster_left', 'hull', 'hull', 'gps']


def test_long_window_channels_limit_the_long_window_to_them():
    config = dataclasses.replace(CONFIG, long_window_channels=['b'],
                                 training=dataclasses.replace(CONFIG.training, epochs=1))
    assert config.long_window_channels == ('b',)
    assert DetectorConfig.from_dict(config.to_dict()) == config
    detector = AnomalyDetector(config)
    detector.fit([_system(2500, 1)], [_system(1500, 3)])
    assert detector.long_gain[1] > 0 and detector.long_gain[0] == detector.long_gain[2] == 0
    with pytest.raises(ValueError, match='long_window_channels'):
        DetectorConfig(long_window_channels=[3])


def test_missing_channel_scores_without_nan(fitted):
    detector, _ = fitted
    series = _system(600, 9)
    only_ab = AlignedSeries(series.times, series.values[:, :2], ('a', 'b'))
    scores = detector.score(only_ab)                      # c is all missing
    assert np.isfinite(scores.score).all() and np.all(scores.channel_scores[:, 2] == 0)


def test_checkpoint_round_trip(fitted, tmp_path):
    detector, _ = fitted
    path = tmp_path / 'model.pt'
    detector.save(path)
    loaded = AnomalyDetector.load(path)
    series = _system(800, 10)
    assert loaded.config == detector.config and loaded.channels == detector.channels
    assert loaded.threshold == detector.threshold and loaded.classes[0] == (NORMAL, '')
    np.testing.assert_allclose(loaded.score(series).score, detector.score(series).score,
                               rtol=1e-6)


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'import pathlib; pathlib.Path({self.marker!r}).touch()',))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / 'code-ran'
    path = tmp_path / 'evil.pt'
    torch.save({'format': 'asv_autonomy.anomaly', 'payload': _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match='not a readable torch checkpoint') as error:
        AnomalyDetector.load(path)
    assert str(path) in str(error.value)
    assert not marker.exists()
    plain = tmp_path / 'plain.pkl'
    plain.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError):
        AnomalyDetector.load(plain)
    assert not marker.exists()


def test_tampered_or_broken_checkpoints_are_rejected(fitted, tmp_path):
    detector, _ = fitted
    good = tmp_path / 'good.pt'
    detector.save(good)

    def tampered(name, change):
        blob = torch.load(good, weights_only=True)
        change(blob)
        path = tmp_path / name
        torch.save(blob, path)
        return path

    def reshape(blob):
        key = next(k for k in blob['state_dict'] if k.endswith('forecast_head.0.weight'))
        blob['state_dict'][key] = torch.zeros(3, 3)

    cases = {
        tampered('shape.pt', reshape): 'weights do not match',
        tampered('version.pt', lambda b: b.update(version=99)): 'unsupported version 99',
        tampered('keys.pt', lambda b: b.pop('normaliser')): 'bad or missing entry',
        tampered('format.pt', lambda b: b.update(format='other')): 'not an anomaly checkpoint',
        tampered('channels.pt', lambda b: b.update(channels=['a', 'b'])): 'do not match 2',
        tampered('gain.pt', lambda b: b.update(long_gain=torch.tensor([1.0, -1.0, 0.0]))):
            'long_gain must be 3',
        tampered('peak.pt', lambda b: b.update(peak_gain=torch.tensor([1.0, float('nan'), 0.0]))):
            'peak_gain must be 3',
        tmp_path / 'absent.pt': 'no such file',
    }
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(os.urandom(256))
    cases[garbage] = 'not a readable torch checkpoint'
    for path, reason in cases.items():
        with pytest.raises(CheckpointError, match=reason) as error:
            AnomalyDetector.load(path)
        assert isinstance(error.value, ValueError) and str(path) in str(error.value)


def test_config_round_trip_and_validation():
    config = DetectorConfig(window=12, unscored_channels=['x'],
                            training=TrainConfig(epochs=2, augment=AugmentConfig(jitter_std=0.1)))
    assert DetectorConfig.from_dict(config.to_dict()) == config
    assert config.rows_needed == 12 + config.smoothing - 1
    with pytest.raises(ValueError, match='window'):
        DetectorConfig(window=1)
    with pytest.raises(ValueError, match='false_alarms_per_hour'):
        DetectorConfig(false_alarms_per_hour=0.0)
    with pytest.raises(TypeError, match='unknown'):
        DetectorConfig.from_dict({'windw': 3})
    assert DetectorConfig(long_window=0).long_window == 0
    for bad in (1, -5, 2.5):
        with pytest.raises(ValueError, match='long_window'):
            DetectorConfig(long_window=bad)
    with pytest.raises(ValueError, match='long_margin'):
        DetectorConfig(long_margin=0.9)
    assert DetectorConfig(peak_margin=0.0).peak_margin == 0.0
    for bad in (0.5, -1.0, float('nan'), float('inf')):
        with pytest.raises(ValueError, match='peak_margin'):
            DetectorConfig(peak_margin=bad)
    on = DetectorConfig(threshold_on_training=True)
    assert DetectorConfig.from_dict(on.to_dict()) == on
    with pytest.raises(ValueError, match='threshold_on_training'):
        DetectorConfig(threshold_on_training='yes')


def test_a_checkpoint_without_the_gains_loads_with_those_terms_off(fitted, tmp_path):
    detector, _ = fitted
    assert detector.long_gain.any() and detector.peak_gain.any()
    path = tmp_path / 'model.pt'
    detector.save(path)
    blob = torch.load(path, weights_only=True)
    del blob['long_gain'], blob['peak_gain']   # as written before those terms existed
    torch.save(blob, path)
    old = AnomalyDetector.load(path)
    assert old.score_memory() is None and not old.long_gain.any() and not old.peak_gain.any()
    series = _system(800, 10)
    assert np.all(old.score(series).score <= detector.score(series).score + 1e-6)


def test_unfitted_detector_and_wrong_rate_are_clear_errors():
    with pytest.raises(RuntimeError, match='not fitted'):
        AnomalyDetector().score(_system(100, 0))
    series = _system(400, 0)
    slow = AlignedSeries(series.times * 2.0, series.values, CHANNELS)
    with pytest.raises(ValueError, match='rate_hz'):
        AnomalyDetector(CONFIG).fit([slow])
