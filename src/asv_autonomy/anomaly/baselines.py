"""Classical baselines of the anomaly benchmark: PCA reconstruction and Isolation Forest.

Both see what the graph network sees: the series normalised with the same robust
:class:`~.windows.Normaliser` (fitted on training data only), missing values as 0 with the
missing-data mask as extra features, the last ``length`` steps of every channel as one
feature vector, and a threshold calibrated on normal validation data to the same
false-alarm rate (:func:`~.scoring.calibrate_threshold`). They differ in the score:

* ``pca``: the window's squared Mahalanobis distance from the training windows in the
  principal basis: Hotelling's T^2 in the subspace that keeps ``variance`` of the training
  variance plus the squared reconstruction error (SPE, Q statistic) over the mean residual
  eigenvalue. SPE alone misses a shift along a kept direction (a noisy channel that jumps
  is inside the subspace).
* ``isolation-forest``: scikit-learn's Isolation Forest anomaly score (``-score_samples``).

Neither has a reliable notion of channels (a Mahalanobis distance smears a shift over
correlated features), so both attribute an alarm to the channel whose newest value is
furthest from its training median, in normalised units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .channels import group_of
from .detector import Scores, hold_out
from .scoring import calibrate_threshold, smooth
from .series import AlignedSeries
from .windows import Normaliser

__all__ = ['BaselineConfig', 'WindowBaseline', 'PCADetector', 'IsolationForestDetector',
           'BASELINES']


@dataclass(frozen=True)
class BaselineConfig:
    """Args:
        length: [steps] window length.
        variance: share of the training variance the PCA subspace keeps.
        trees: Isolation Forest trees.
        max_windows: training windows used at most (a random subset).
        smoothing: [steps] causal moving average of the score (as the detector's).
        false_alarms_per_hour: target alarm-event rate on normal data [1/h].
        alarm_gap_s: [s] alarms closer than this are one event.
        threshold_margin: factor >= 1 on the calibrated threshold (1: the highest normal
            validation score when the target allows no alarm there; the scores' scales
            differ, so the detector's margin would not mean the same here).
        validation_fraction: share of the training data used for calibration (as the
            detector's: whole series when there are enough, see ``detector.hold_out``).
        seed: seed of the subset and the forest.
    """

    length: int = 10
    variance: float = 0.95
    trees: int = 200
    max_windows: int = 20000
    smoothing: int = 3
    false_alarms_per_hour: float = 1.0
    alarm_gap_s: float = 2.0
    threshold_margin: float = 1.0
    validation_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self):
        if self.length < 1 or self.trees < 1 or self.max_windows < 10 or self.smoothing < 1:
            raise ValueError('need length, trees, smoothing >= 1 and max_windows >= 10')
        if not 0.0 < self.variance < 1.0 or not 0.0 < self.validation_fraction < 1.0:
            raise ValueError('variance and validation_fraction must be in (0, 1)')
        if not (self.false_alarms_per_hour > 0 and self.alarm_gap_s >= 0
                and self.threshold_margin >= 1.0):
            raise ValueError('need false_alarms_per_hour > 0, alarm_gap_s >= 0, margin >= 1')


def window_features(values: np.ndarray, mask: np.ndarray, length: int) -> np.ndarray:
    """The last ``length`` steps of every channel (values, then masks) per grid step;
    steps before the series starts repeat its first row.

    Shapes:
        values, mask ``(N, C)`` -> ``(N, 2 * C * length)``, ordered channel-major within
        values and within masks (channel c's steps are contiguous).
    """
    pad = lambda a: np.concatenate([np.repeat(a[:1], length - 1, axis=0), a])  # noqa: E731
    stacked = np.concatenate([pad(values), pad(mask.astype(np.float32))], axis=1)
    n = values.shape[0]
    lagged = np.stack([stacked[i:i + n] for i in range(length)], axis=2)   # (N, 2C, L)
    return lagged.reshape(n, -1)


class WindowBaseline:
    """Shared fitting, calibration and scoring; subclasses implement ``_fit_model`` and
    ``_raw(features, values) -> (score (N,), channel_scores (N, C))`` (``values``: the
    normalised series, missing as 0)."""

    name = ''

    def __init__(self, config: BaselineConfig = BaselineConfig()):
        self.config = config
        self.channels: tuple[str, ...] = ()
        self.normaliser: Normaliser | None = None
        self.threshold = math.nan

    def _features(self, series: AlignedSeries):
        values, mask = self.normaliser.transform(series.select(self.channels).values)
        return window_features(values, mask, self.config.length), values

    def fit(self, train: list[AlignedSeries]) -> 'WindowBaseline':
        """Fit on normal series (a held-out part calibrates, see ``detector.hold_out``)."""
        cfg = self.config
        self.channels = tuple(train[0].channels)
        fitting, validation = hold_out([s.select(self.channels) for s in train],
                                       cfg.validation_fraction)
        self.normaliser = Normaliser.fit(fitting)
        features = np.concatenate([self._features(s)[0] for s in fitting])
        rng = np.random.default_rng(cfg.seed)
        if len(features) > cfg.max_windows:
            features = features[rng.choice(len(features), cfg.max_windows, replace=False)]
        self._fit_model(features)
        scores = [self._overall(s) for s in validation]
        rate = 1.0 / validation[0].dt
        hours = sum(len(s) for s in validation) / rate / 3600.0
        self.threshold = calibrate_threshold(scores, hours, cfg.false_alarms_per_hour,
                                             int(round(cfg.alarm_gap_s * rate)),
                                             cfg.threshold_margin)
        return self

    def _overall(self, series: AlignedSeries) -> np.ndarray:
        features, values = self._features(series)
        return smooth(self._raw(features, values)[0], self.config.smoothing)

    def score(self, series: AlignedSeries) -> Scores:
        """Score every grid step of ``series`` (same contract as the detector's)."""
        features, values = self._features(series)
        overall, per_channel = self._raw(features, values)
        overall = smooth(overall, self.config.smoothing)
        per_channel = smooth(per_channel, self.config.smoothing)
        is_anomaly = overall > self.threshold
        best = np.asarray(self.channels, dtype=object)[per_channel.argmax(axis=1)]
        channel = np.where(is_anomaly, best, '').astype(object)
        group = np.array([group_of(c) if c else '' for c in channel], dtype=object)
        return Scores(series.times, overall, per_channel, is_anomaly, channel, group,
                      np.full(len(series), '', dtype=object))

    def _fit_model(self, features: np.ndarray):
        raise NotImplementedError

    def _raw(self, features: np.ndarray, values: np.ndarray):
        raise NotImplementedError


class PCADetector(WindowBaseline):
    """PCA reconstruction error of the window (see the module doc)."""

    name = 'pca'

    def _fit_model(self, features):
        self._mean = features.mean(axis=0)
        _, singular, vt = np.linalg.svd(features - self._mean, full_matrices=False)
        eigenvalues = singular ** 2 / max(len(features) - 1, 1)
        explained = np.cumsum(eigenvalues) / max(float(eigenvalues.sum()), 1e-12)
        keep = min(int(np.searchsorted(explained, self.config.variance) + 1), len(eigenvalues))
        floor = 1e-6 * max(float(eigenvalues[0]), 1e-12)
        self._components = vt[:keep]
        self._eigenvalues = np.maximum(eigenvalues[:keep], floor)
        rest = eigenvalues[keep:]
        self._residual_variance = max(float(rest.mean()) if rest.size else floor, floor)

    def _raw(self, features, values):
        centred = features - self._mean
        coordinates = centred @ self._components.T
        residual = centred - coordinates @ self._components
        distance = (np.sum(coordinates ** 2 / self._eigenvalues, axis=1)
                    + np.sum(residual ** 2, axis=1) / self._residual_variance)
        return distance, np.abs(values)


class IsolationForestDetector(WindowBaseline):
    """scikit-learn Isolation Forest on the window features (see the module doc)."""

    name = 'isolation-forest'

    def _fit_model(self, features):
        from sklearn.ensemble import IsolationForest
        self._forest = IsolationForest(n_estimators=self.config.trees,
                                       random_state=self.config.seed).fit(features)

    def _raw(self, features, values):
        return -self._forest.score_samples(features), np.abs(values)


BASELINES = {PCADetector.name: PCADetector, IsolationForestDetector.name: IsolationForestDetector}
