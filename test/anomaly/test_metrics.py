"""Metrics against hand-computed answers."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from asv_autonomy.anomaly import metrics
from asv_autonomy.anomaly.series import AlignedSeries


def test_auroc_counts_ties_as_half_and_is_nan_with_one_class():
    # Pairs (pos, neg): 0.8>0.1, 0.8>0.4, 0.4=0.4 (1/2), 0.4>0.1 -> 3.5 of 4.
    assert metrics.auroc([1, 0, 1, 0], [0.8, 0.1, 0.4, 0.4]) == pytest.approx(0.875)
    assert metrics.auroc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert metrics.auroc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert math.isnan(metrics.auroc([0, 0, 0], [0.1, 0.2, 0.3]))
    # A NaN score is ignored, not ranked.
    assert metrics.auroc([1, 0, 0], [0.5, np.nan, 0.1]) == 1.0


def test_f1_point_and_events():
    # tp 2, fp 1, fn 1 -> 2*2 / (3 + 3)
    assert metrics.f1_point([0, 1, 1, 1, 0], [1, 1, 1, 0, 0]) == pytest.approx(4 / 6)
    assert math.isnan(metrics.f1_point([0, 0], [0, 0]))
    assert metrics.events([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert metrics.events([1, 1]) == [(0, 2)]
    assert metrics.events([0, 0]) == []


def _scenario():
    """10 Hz, 100 s: faults at 10-20 s and 50-60 s; alarms at 12-15 s (delay 2 s), 30-31 s
    (false), 30.5 s gap 0.5 s then 31.5-32 s (merged with the previous: one false alarm),
    and 61-61.5 s (1 s after the second fault's end: within the 2 s tolerance)."""
    times = np.arange(1000) * 0.1
    labels = ((times >= 10) & (times < 20)) | ((times >= 50) & (times < 60))
    alarm = (((times >= 12) & (times < 15)) | ((times >= 30) & (times < 31))
             | ((times >= 31.5) & (times < 32)) | ((times >= 61) & (times < 61.5)))
    return times, labels, alarm


def test_event_metrics_by_hand():
    times, labels, alarm = _scenario()
    counts = metrics.event_counts(labels, alarm, times)
    assert (counts.faults, counts.detected, counts.alarms, counts.false_alarms) == (2, 2, 3, 1)
    # precision 2/3, recall 1 -> F1 0.8
    assert metrics.f1_event(labels, alarm, times) == pytest.approx(0.8)
    # delays 2.0 s and 61.0 - 50.0 = 11.0 s (first alarm inside the extended fault).
    assert metrics.detection_delay_s(labels, alarm, times) == pytest.approx(6.5)
    # 1 false alarm in 80 s of normal operation.
    assert metrics.false_alarms_per_hour(labels, alarm, times) == pytest.approx(3600 / 80)
    # Without tolerance the late alarm is a false alarm and the fault is missed.
    strict = metrics.event_counts(labels, alarm, times, tolerance_s=0.0)
    assert (strict.detected, strict.false_alarms) == (1, 2)
    # Without merging, the flickering false alarm counts twice.
    assert metrics.event_counts(labels, alarm, times, merge_gap_s=0.0).false_alarms == 2


def test_attribution_takes_the_most_frequent_group_per_fault():
    labels = np.array([0, 1, 1, 1, 0, 1, 1, 0], bool)
    channel = np.array(['', 'gps', 'gps', 'gps', '', 'imu', 'imu', ''], object)
    alarm = np.array([0, 1, 1, 1, 0, 1, 1, 0], bool)
    group = np.array(['', 'gps', 'imu', 'gps', '', 'hull', 'hull', ''], object)
    assert metrics.attribution_accuracy(channel, group, labels, alarm) == 0.5
    assert math.isnan(metrics.attribution_accuracy(channel, group, labels, np.zeros(8, bool)))


def test_evaluate_pools_series():
    times, labels, alarm = _scenario()
    score = alarm.astype(float) + 0.5 * labels       # alarms and faults both score high
    group = np.where(alarm, 'gps', '')
    series = AlignedSeries(times, np.zeros((len(times), 1)), ('a',), labels,
                           np.where(labels, 'gps_jump', ''), np.where(labels, 'gps', ''))
    scores = SimpleNamespace(score=score, is_anomaly=alarm, group=group)
    one = metrics.evaluate(series, scores)
    assert one['f1_event'] == pytest.approx(0.8)
    assert one['attribution_accuracy'] == 1.0
    assert set(one) == {'auroc', 'f1_event', 'f1_point', 'detection_delay_s',
                        'false_alarms_per_hour', 'attribution_accuracy'}
    two = metrics.evaluate_many([(series, scores), (series, scores)])
    assert two['false_alarms_per_hour'] == pytest.approx(one['false_alarms_per_hour'])
    assert two['f1_event'] == pytest.approx(0.8)
    with pytest.raises(ValueError, match='no ground truth'):
        metrics.evaluate(AlignedSeries(times, np.zeros((len(times), 1)), ('a',)), scores)
