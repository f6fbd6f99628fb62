"""PCA and Isolation Forest baselines (anomaly/baselines.py) and the benchmark driver
(anomaly/benchmark.py) on small synthetic series with planted faults."""
import math

import numpy as np
import pytest

from asv_autonomy.anomaly.baselines import (IsolationForestDetector, PCADetector,
                                            window_features)
from asv_autonomy.anomaly.benchmark import METRICS, DatasetSplit, benchmark_dataset
from asv_autonomy.anomaly.series import AlignedSeries

CHANNELS = ('a', 'b', 'c')


def synthetic(rows, seed, fault=None):
    """a: slow wave; b = 2 a (coupled); c: noise. ``fault`` = (kind, start, stop): 'level'
    adds 3 to c, 'decouple' sets b to -2 a; both labelled with group = channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows) * 0.1
    a = np.sin(t / 4) + 0.05 * rng.standard_normal(rows)
    b = 2 * a + 0.05 * rng.standard_normal(rows)
    c = 0.1 * rng.standard_normal(rows)
    anomaly = np.zeros(rows, bool)
    fault_channel = np.full(rows, '', object)
    if fault:
        kind, start, stop = fault
        if kind == 'level':
            c[start:stop] += 3.0
            fault_channel[start:stop] = 'c'
        else:
            b[start:stop] = -2 * a[start:stop]
            fault_channel[start:stop] = 'b'
        anomaly[start:stop] = True
    fault_kind = np.where(anomaly, fault[0] if fault else '', '').astype(object)
    return AlignedSeries(t, np.stack([a, b, c], axis=1), CHANNELS, anomaly, fault_kind,
                         fault_channel)


def test_window_features_hold_the_last_steps_of_each_channel():
    values = np.arange(12, dtype=np.float32).reshape(4, 3)          # row i: 3i, 3i+1, 3i+2
    mask = np.ones_like(values, dtype=bool)
    mask[2, 1] = False
    features = window_features(values, mask, 2)
    assert features.shape == (4, 12)
    # Row 2: channel 0 at rows 1, 2 -> 3, 6; channel 1 -> 4, 7; channel 2 -> 5, 8.
    np.testing.assert_array_equal(features[2, :6], [3, 6, 4, 7, 5, 8])
    np.testing.assert_array_equal(features[2, 6:], [1, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(features[0, :2], [0, 0])           # padded with row 0


@pytest.mark.parametrize('detector_cls', [PCADetector, IsolationForestDetector])
def test_baselines_flag_a_level_fault_and_not_the_normal_part(detector_cls):
    detector = detector_cls().fit([synthetic(6000, 0)])
    assert math.isfinite(detector.threshold)
    test = synthetic(2000, 1, ('level', 1200, 1400))
    scores = detector.score(test)
    assert scores.is_anomaly[1205:1400].mean() > 0.6      # the threshold is strict: max of normal
    assert scores.is_anomaly[:1100].mean() < 0.01     # threshold: the highest normal score
    assert set(scores.group[1200:1400][scores.is_anomaly[1200:1400]]) == {'c'}  # it moved


def test_benchmark_rows_cover_every_method_and_fault():
    split = DatasetSplit('toy', [synthetic(6000, 0)],
                         {'level': [synthetic(2000, 1, ('level', 1200, 1400))],
                          'decouple': [synthetic(2000, 2, ('decouple', 1200, 1400))]})
    said = []
    rows, train_s, models, scored = benchmark_dataset(split, ('pca', 'isolation-forest'),
                                                      said.append)
    assert [(r['method'], r['fault']) for r in rows] == [
        ('pca', 'level'), ('pca', 'decouple'), ('pca', 'all'),
        ('isolation-forest', 'level'), ('isolation-forest', 'decouple'),
        ('isolation-forest', 'all')]
    for row in rows:
        assert set(row) == {'dataset', 'fault', 'method', *METRICS}
    level = rows[0]
    assert level['dataset'] == 'toy' and level['f1_event'] > 0.0
    assert level['attribution_accuracy'] == 1.0 and level['auroc'] > 0.95
    assert set(train_s) == {'pca', 'isolation-forest'} and len(said) == 2
    assert scored['pca']['toy', 'level'][0][0] is split.tests['level'][0]
