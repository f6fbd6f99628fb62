"""Per-channel anomaly scores, the overall score, threshold calibration and alarm events.

Two raw terms per channel and grid step, both in normalised units and 0 where the
channel's value is missing:

* forecast error ``|forecast - value|``: what the graph network did not expect given the
  recent past of the channel and its neighbours (sudden changes, broken couplings);
* level ``|value|`` (distance from the training median): a persistent state never seen in
  training (GPS fix 0 during an outage, a drifting heading) stops being a forecast error
  once the window has filled with it, but stays a level deviation.

Each term is robust-normalised per channel with statistics of NORMAL validation data
(``z = (e - median) / (quantile_q - median)``: 1 is an error as large as the q-quantile of
normal operation, so heavy-tailed channels do not dominate the max), the channel score is
``max(z_forecast, level_weight * z_level)``, smoothed by a causal moving average of a few
steps; the overall score is the max over channels, and the attributed channel its argmax.

Three time scales: the short average reacts to sharp faults (a GPS jump); a persistent
moderate deviation (a thruster delivering 30 % less, each step well inside the normal
spread of its residual) only stands out in a long average, whose normal level is much
lower and differs from channel to channel; and an isolated one-step spike (a spurious
sonar echo among good ones) is spread below the threshold by the short average. So each
channel also has its long-window mean and its unsmoothed score, each scaled by a
per-channel gain (:func:`window_gains`, from its highest value on normal data), and
scores ``max(short, long_gain * long, peak_gain * unsmoothed)``. Online, the long mean
needs the scores of past windows: :class:`ScoreMemory`.

Missing data: a channel that goes missing (GPS position in an outage) scores 0 while
missing (nothing to compare); the outage itself is carried by the ``gps_fix`` channel
(0, far from its training level 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ['ScoreStatistics', 'raw_errors', 'channel_scores', 'smooth', 'long_mean',
           'window_gains', 'ScoreMemory', 'alarm_events', 'count_alarm_events',
           'calibrate_threshold']


@dataclass(frozen=True, eq=False)    # arrays: no element-wise ==
class ScoreStatistics:
    """Robust normalisation of the raw per-channel terms.

    Args:
        centre: median of each term over normal validation data.
        scale: quantile_q minus median, floored.

    Shapes:
        centre, scale ``(2, C)``: row 0 forecast error, row 1 level.
    """

    centre: np.ndarray
    scale: np.ndarray

    def __post_init__(self):
        centre = np.asarray(self.centre, dtype=np.float32)
        scale = np.asarray(self.scale, dtype=np.float32)
        if centre.ndim != 2 or centre.shape[0] != 2 or centre.shape != scale.shape:
            raise ValueError(f'centre and scale must be (2, C), got {centre.shape}, {scale.shape}')
        if not (np.all(np.isfinite(centre)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError('score statistics must be finite with scale > 0')
        object.__setattr__(self, 'centre', centre)
        object.__setattr__(self, 'scale', scale)

    @classmethod
    def fit(cls, raw: np.ndarray, observed: np.ndarray, quantile: float = 0.99,
            min_scale: float = 0.05) -> 'ScoreStatistics':
        """Statistics of raw terms ``(2, N, C)`` over the observed steps ``(N, C)``."""
        if not 0.5 < quantile < 1.0:
            raise ValueError(f'quantile must be in (0.5, 1), got {quantile}')
        _, _, c = raw.shape
        centre = np.zeros((2, c), np.float32)
        scale = np.full((2, c), min_scale, np.float32)
        for term in range(2):
            for j in range(c):
                values = raw[term, observed[:, j], j]
                if values.size:
                    centre[term, j] = np.median(values)
                    scale[term, j] = max(float(np.quantile(values, quantile) - centre[term, j]),
                                         min_scale)
        return cls(centre, scale)


def raw_errors(forecast: np.ndarray, target: np.ndarray, target_mask: np.ndarray) -> np.ndarray:
    """Forecast error and level of each channel, 0 where the target is missing.

    Shapes:
        forecast, target, target_mask ``(N, C)`` -> ``(2, N, C)``.
    """
    observed = target_mask > 0
    error = np.where(observed, np.abs(forecast - target), 0.0)
    level = np.where(observed, np.abs(target), 0.0)
    return np.stack([error, level]).astype(np.float32)


def channel_scores(raw: np.ndarray, observed: np.ndarray, statistics: ScoreStatistics,
                   level_weight: float) -> np.ndarray:
    """Per-channel score ``max(z_forecast, level_weight * z_level)``, 0 where missing.

    Shapes:
        raw ``(2, N, C)``, observed ``(N, C)`` bool -> ``(N, C)``.
    """
    z = (raw - statistics.centre[:, None, :]) / statistics.scale[:, None, :]
    score = np.maximum(z[0], level_weight * z[1]) if level_weight > 0 else z[0]
    return np.where(observed, np.maximum(score, 0.0), 0.0).astype(np.float32)


def smooth(scores: np.ndarray, steps: int) -> np.ndarray:
    """Causal moving average over ``steps`` rows (the first rows average what exists).

    Shapes:
        ``(N, ...)`` -> ``(N, ...)``.
    """
    if steps <= 1:
        return scores
    cumulative = np.cumsum(np.concatenate([np.zeros_like(scores[:1]), scores]), axis=0,
                           dtype=np.float64)
    n = scores.shape[0]
    upper = np.arange(1, n + 1)
    lower = np.maximum(upper - steps, 0)
    shape = (n,) + (1,) * (scores.ndim - 1)
    counts = (upper - lower).reshape(shape)
    return ((cumulative[upper] - cumulative[lower]) / counts).astype(scores.dtype)


def long_mean(scores: np.ndarray, steps: int) -> np.ndarray:
    """Causal mean over ``steps`` rows, 0 until ``steps`` rows exist (a mean of the first
    few rows is as noisy as the short average: it would only add false alarms).

    Shapes:
        ``(N, C)`` -> ``(N, C)``.
    """
    mean = smooth(scores, steps)
    mean[:steps - 1] = 0.0
    return mean


def window_gains(scores: list[np.ndarray], steps: int, threshold: float,
                 margin: float) -> np.ndarray:
    """Per-channel gain on a channel's ``steps``-row mean (1: its unsmoothed score): the
    mean of channel j alarms (its gain times it exceeds ``threshold``) when it exceeds
    ``margin`` times its highest value on the normal ``scores``; 0 for a channel whose
    mean never left 0 there (unscored or never observed), and 0 for all when no normal
    series is ``steps`` long: no normal level to compare with, so no alarm on that scale.

    Args:
        scores: unsmoothed channel scores of normal series (training and validation:
            the slow variation of a channel differs from mission to mission, and a few
            validation runs under-estimate it).
        steps: window [grid steps] (>= 1).
        threshold: the alarm threshold of the short-window scores.
        margin: factor >= 1 above the highest normal value.

    Shapes:
        scores ``[(N_i, C)]`` -> ``(C,)``.
    """
    if not (steps >= 1 and threshold > 0 and margin >= 1.0):
        raise ValueError(f'need steps >= 1, threshold > 0 and margin >= 1, got {steps}, '
                         f'{threshold}, {margin}')
    gains = np.zeros(scores[0].shape[1] if scores else 0, np.float32)
    means = [long_mean(s, steps) for s in scores if len(s) >= steps]
    if not means:
        return gains
    highest = np.max([m.max(axis=0) for m in means], axis=0)
    seen = highest > 1e-6
    gains[seen] = threshold / (margin * highest[seen])
    return gains


class ScoreMemory:
    """Unsmoothed channel scores of an online stream's newest grid steps, for the long
    window: what :func:`long_mean` computes offline, from rows scored one window at a time.

    Rows are kept by grid time; a row at or before the newest kept one is ignored (the
    same step scored again), rows older than the window are dropped. Steps the stream
    skipped (a lagging node) are simply absent from the mean.

    Args:
        steps: long window [grid steps].
        dt: [s] grid step.
    """

    def __init__(self, steps: int, dt: float):
        if steps < 2 or not dt > 0:
            raise ValueError(f'need steps >= 2 and dt > 0, got {steps}, {dt}')
        self.steps, self.dt = int(steps), float(dt)
        self._times: list[float] = []
        self._rows: list[np.ndarray] = []

    def add(self, times: np.ndarray, rows: np.ndarray) -> None:
        """Remember ``rows`` ``(K, C)`` scored at grid ``times`` ``(K,)`` (increasing)."""
        for t, row in zip(np.asarray(times, np.float64), np.asarray(rows, np.float32)):
            if self._times and t <= self._times[-1] + 0.5 * self.dt:
                continue
            self._times.append(float(t))
            self._rows.append(row)
        oldest = self._times[-1] - (self.steps - 0.5) * self.dt if self._times else 0.0
        while self._times and self._times[0] < oldest:
            del self._times[0], self._rows[0]

    def mean(self) -> np.ndarray | None:
        """Mean of the rows of the last ``steps`` grid steps; None until the memory spans
        that many steps (as :func:`long_mean` is 0 for the first rows)."""
        if not self._times or \
                self._times[-1] - self._times[0] < (self.steps - 1.5) * self.dt:
            return None
        return np.mean(self._rows, axis=0)


def alarm_events(is_anomaly: np.ndarray, gap_steps: int = 0) -> list[tuple[int, int]]:
    """Contiguous runs of alarms as ``(start, stop)`` index pairs (stop exclusive); runs
    separated by at most ``gap_steps`` quiet steps are one event."""
    flags = np.asarray(is_anomaly, dtype=bool)
    if not flags.any():
        return []
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    runs = list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
    merged = [runs[0]]
    for start, stop in runs[1:]:
        if start - merged[-1][1] <= gap_steps:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def count_alarm_events(score: np.ndarray, threshold: float, gap_steps: int) -> int:
    return len(alarm_events(score > threshold, gap_steps))


def calibrate_threshold(scores: list[np.ndarray], hours: float, alarms_per_hour: float,
                        gap_steps: int, margin: float = 1.1) -> float:
    """Smallest threshold at which the normal ``scores`` raise at most
    ``floor(alarms_per_hour * hours)`` alarm events, times ``margin``.

    With less than ``1 / alarms_per_hour`` hours of validation data that allows no event:
    the threshold is then just above the highest normal score, times the margin (a
    conservative extrapolation: the rate of unseen excursions is unknown, the margin
    keeps the alarm rate at or below the target when the next hour is like the last).

    Args:
        scores: overall scores of normal validation series.
        hours: [h] total duration of ``scores``.
        alarms_per_hour: target false-alarm event rate [1/h].
        gap_steps: alarm runs this close are one event.
        margin: factor >= 1 on the threshold.
    """
    if not (alarms_per_hour > 0 and hours > 0 and margin >= 1.0):
        raise ValueError(f'need alarms_per_hour > 0, hours > 0 and margin >= 1, got '
                         f'{alarms_per_hour}, {hours}, {margin}')
    allowed = int(math.floor(alarms_per_hour * hours))
    everything = np.concatenate([np.asarray(s, np.float64).ravel() for s in scores])
    if everything.size == 0:
        raise ValueError('no validation scores to calibrate on')
    highest = float(everything.max())
    if allowed == 0:
        return max(highest, 1e-6) * margin

    def events(threshold: float) -> int:
        return sum(count_alarm_events(s, threshold, gap_steps) for s in scores)

    # Event counts are not monotonic in the threshold, so bisect on a sorted grid of
    # candidates and then step up until the count fits.
    candidates = np.unique(np.quantile(everything, np.linspace(0.9, 1.0, 400)))
    lo, hi = 0, len(candidates) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if events(candidates[mid]) <= allowed:
            hi = mid
        else:
            lo = mid + 1
    while lo < len(candidates) - 1 and events(candidates[lo]) > allowed:
        lo += 1
    return max(float(candidates[lo]), 1e-6) * margin
