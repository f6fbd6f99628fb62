"""Anomaly-detection metrics: point-wise, event-wise, delay, false alarms, attribution.

Conventions (the benchmark and ``asv anomaly score --metrics`` use them):

* A *fault event* is a maximal run of ``labels`` True; an *alarm event* a maximal run of
  ``predicted`` True, after merging alarm runs separated by less than ``merge_gap_s``
  (one flickering alarm is one alarm, as an operator sees it).
* A fault is *detected* when an alarm sample falls inside it or within ``tolerance_s``
  after its end (a detector scoring windows reacts a little late, also at the end).
* An alarm event is *true* when it overlaps a fault (extended by the tolerance), else a
  *false alarm*. Event precision = true alarm events / alarm events, recall = detected
  faults / faults.
* Detection delay: first alarm time in the fault (extended) minus its onset, averaged
  over detected faults. False alarms per hour: false alarm events per hour of normal
  operation (samples outside faults times the grid step).
* A metric that is undefined (no fault, no alarm, one class only) is NaN; pool several
  series with :func:`evaluate_many`, which sums the event counts before dividing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

__all__ = ['auroc', 'f1_point', 'events', 'EventCounts', 'event_counts', 'f1_event',
           'detection_delay_s', 'false_alarms_per_hour', 'attribution_accuracy',
           'evaluate', 'evaluate_many']

MERGE_GAP_S = 1.0
TOLERANCE_S = 2.0


def _bool(a) -> np.ndarray:
    return np.asarray(a, dtype=bool).reshape(-1)


def auroc(labels, scores) -> float:
    """Area under the ROC curve (Mann-Whitney U from ranks; ties count one half).

    Samples with a non-finite score are ignored. NaN when only one class remains.

    Shapes:
        labels, scores ``(N,)``.
    """
    labels = _bool(labels)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f'labels {labels.shape} and scores {scores.shape} differ')
    keep = np.isfinite(scores)
    labels, scores = labels[keep], scores[keep]
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(scores)          # average ranks for ties
    u = ranks[labels].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def f1_point(labels, predicted) -> float:
    """F1 over samples; NaN when there is neither a fault nor an alarm sample."""
    labels, predicted = _bool(labels), _bool(predicted)
    tp = int((labels & predicted).sum())
    denominator = int(labels.sum()) + int(predicted.sum())
    return 2.0 * tp / denominator if denominator else math.nan


def events(mask) -> list[tuple[int, int]]:
    """Runs of True as (start, stop) index pairs, stop exclusive.

    Example: ``events([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]``.
    """
    mask = _bool(mask).astype(np.int8)
    edges = np.diff(np.concatenate([[0], mask, [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _step(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if times.size > 1 else 0.0


def _alarm_events(predicted, times, merge_gap_s: float) -> list[tuple[int, int]]:
    runs = events(predicted)
    merged: list[tuple[int, int]] = []
    for start, stop in runs:
        # gap = time from the last alarm sample of the previous run to this run's first.
        if merged and times[start] - times[merged[-1][1] - 1] <= merge_gap_s + 1e-9:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _extended(fault: tuple[int, int], times, tolerance_s: float) -> tuple[int, int]:
    """Index span of a fault plus the tolerance after its end."""
    end_time = times[fault[1] - 1] + tolerance_s
    return fault[0], int(np.searchsorted(times, end_time, side='right'))


@dataclass
class EventCounts:
    """Event-level counts of one or more series (add them up to pool series).

    Args:
        faults: fault events. detected: faults with an alarm inside (extended).
        alarms: alarm events. false_alarms: alarm events overlapping no fault.
        delays_s: [s] detection delay of each detected fault.
        attributed: detected faults whose most attributed group equals their channel
            (counted only where an attribution was given).
        attribution_total: detected faults with an attribution to compare.
        normal_hours: [h] time outside faults.
    """

    faults: int = 0
    detected: int = 0
    alarms: int = 0
    false_alarms: int = 0
    delays_s: tuple[float, ...] = ()
    attributed: int = 0
    attribution_total: int = 0
    normal_hours: float = 0.0

    def __add__(self, other: 'EventCounts') -> 'EventCounts':
        return EventCounts(self.faults + other.faults, self.detected + other.detected,
                           self.alarms + other.alarms, self.false_alarms + other.false_alarms,
                           self.delays_s + other.delays_s, self.attributed + other.attributed,
                           self.attribution_total + other.attribution_total,
                           self.normal_hours + other.normal_hours)

    @property
    def f1_event(self) -> float:
        if self.faults == 0 and self.alarms == 0:
            return math.nan
        precision = (self.alarms - self.false_alarms) / self.alarms if self.alarms else 0.0
        recall = self.detected / self.faults if self.faults else 0.0
        return (2.0 * precision * recall / (precision + recall)
                if precision + recall > 0.0 else 0.0)

    @property
    def detection_delay_s(self) -> float:
        return float(np.mean(self.delays_s)) if self.delays_s else math.nan

    @property
    def false_alarms_per_hour(self) -> float:
        return self.false_alarms / self.normal_hours if self.normal_hours > 0.0 else math.nan

    @property
    def attribution_accuracy(self) -> float:
        return (self.attributed / self.attribution_total if self.attribution_total
                else math.nan)


def event_counts(labels, predicted, times, fault_channel=None, predicted_group=None,
                 merge_gap_s: float = MERGE_GAP_S, tolerance_s: float = TOLERANCE_S
                 ) -> EventCounts:
    """Fault/alarm event matching of one series (see the module doc).

    Args:
        labels: True inside faults. predicted: True where the detector alarms.
        times: [s] sample times, increasing.
        fault_channel, predicted_group: per sample, the fault's label channel and the
            group the detector attributes the alarm to (optional: attribution).
        merge_gap_s: [s] alarm runs closer than this are one alarm event.
        tolerance_s: [s] a fault counts as detected by alarms up to this after its end.

    Shapes:
        all ``(N,)``.
    """
    labels, predicted = _bool(labels), _bool(predicted)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if not labels.shape == predicted.shape == times.shape:
        raise ValueError(f'labels {labels.shape}, predicted {predicted.shape} and times '
                         f'{times.shape} must have one shape')
    faults = [_extended(f, times, tolerance_s) for f in events(labels)]
    alarms = _alarm_events(predicted, times, merge_gap_s)
    covered = np.zeros(labels.shape, dtype=bool)
    for start, stop in faults:
        covered[start:stop] = True
    false_alarms = sum(1 for start, stop in alarms if not covered[start:stop].any())
    detected, delays, attributed, attribution_total = 0, [], 0, 0
    for start, stop in faults:
        hits = np.flatnonzero(predicted[start:stop])
        if not hits.size:
            continue
        detected += 1
        delays.append(float(times[start + hits[0]] - times[start]))
        if fault_channel is not None and predicted_group is not None:
            groups = np.asarray(predicted_group, dtype=object)[start + hits]
            groups = [g for g in groups if g]
            if groups:
                values, counts = np.unique(np.asarray(groups, dtype=str), return_counts=True)
                truth = np.asarray(fault_channel, dtype=object)[start]
                attributed += int(values[np.argmax(counts)] == truth)
            attribution_total += 1
    normal_hours = float((~labels).sum()) * _step(times) / 3600.0
    return EventCounts(len(faults), detected, len(alarms), false_alarms, tuple(delays),
                       attributed, attribution_total, normal_hours)


def f1_event(labels, predicted, times, merge_gap_s: float = MERGE_GAP_S,
             tolerance_s: float = TOLERANCE_S) -> float:
    """Event F1 (module doc); NaN when there is neither a fault nor an alarm."""
    return event_counts(labels, predicted, times, merge_gap_s=merge_gap_s,
                        tolerance_s=tolerance_s).f1_event


def detection_delay_s(labels, predicted, times, tolerance_s: float = TOLERANCE_S) -> float:
    """[s] mean first-alarm delay over detected faults; NaN when none is detected."""
    return event_counts(labels, predicted, times, tolerance_s=tolerance_s).detection_delay_s


def false_alarms_per_hour(labels, predicted, times, merge_gap_s: float = MERGE_GAP_S,
                          tolerance_s: float = TOLERANCE_S) -> float:
    """Alarm events overlapping no fault, per hour of normal operation."""
    return event_counts(labels, predicted, times, merge_gap_s=merge_gap_s,
                        tolerance_s=tolerance_s).false_alarms_per_hour


def attribution_accuracy(fault_channel, predicted_group, labels, predicted, times=None,
                         tolerance_s: float = TOLERANCE_S) -> float:
    """Share of detected faults whose most often attributed group (over the alarm
    samples in the fault) is the fault's channel; NaN when none is detected.
    Without ``times`` the tolerance after the end is not applied."""
    labels = _bool(labels)
    if times is None:
        times, tolerance_s = np.arange(labels.size, dtype=np.float64), 0.0
    return event_counts(labels, predicted, times, fault_channel, predicted_group,
                        tolerance_s=tolerance_s).attribution_accuracy


def _counts_of(series, scores, merge_gap_s, tolerance_s) -> EventCounts:
    if series.anomaly is None:
        raise ValueError('the series has no ground truth (anomaly labels)')
    predicted = np.asarray(scores.is_anomaly, dtype=bool)
    if predicted.shape != series.anomaly.shape:
        raise ValueError(f'scores cover {predicted.shape[0]} samples, the series '
                         f'{series.anomaly.shape[0]}')
    return event_counts(series.anomaly, predicted, series.times, series.fault_channel,
                        getattr(scores, 'group', None), merge_gap_s, tolerance_s)


def evaluate_many(pairs, merge_gap_s: float = MERGE_GAP_S,
                  tolerance_s: float = TOLERANCE_S) -> dict[str, float]:
    """All metrics over several (series, scores) pairs, pooled.

    Args:
        pairs: (labelled ``AlignedSeries``, scores) pairs; scores has ``score`` ``(N,)``,
            ``is_anomaly`` ``(N,)`` and optionally ``group`` ``(N,)`` (attribution).

    Returns:
        ``auroc`` and ``f1_point`` over all samples together, ``f1_event``,
        ``detection_delay_s``, ``false_alarms_per_hour`` and ``attribution_accuracy``
        from the summed event counts (floats, NaN when undefined).
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError('nothing to evaluate')
    counts = EventCounts()
    for series, scores in pairs:
        counts = counts + _counts_of(series, scores, merge_gap_s, tolerance_s)
    labels = np.concatenate([s.anomaly for s, _ in pairs])
    return {
        'auroc': auroc(labels, np.concatenate([np.asarray(c.score, float) for _, c in pairs])),
        'f1_event': counts.f1_event,
        'f1_point': f1_point(labels, np.concatenate([np.asarray(c.is_anomaly, bool)
                                                     for _, c in pairs])),
        'detection_delay_s': counts.detection_delay_s,
        'false_alarms_per_hour': counts.false_alarms_per_hour,
        'attribution_accuracy': counts.attribution_accuracy,
    }


def evaluate(series, scores, merge_gap_s: float = MERGE_GAP_S,
             tolerance_s: float = TOLERANCE_S) -> dict[str, float]:
    """All metrics of one labelled series and its scores (see :func:`evaluate_many`)."""
    return evaluate_many([(series, scores)], merge_gap_s, tolerance_s)
