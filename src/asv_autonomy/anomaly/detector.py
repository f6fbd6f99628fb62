"""The anomaly detector: fit on normal logs, score series offline or windows online.

``AnomalyDetector.fit`` normalises the channels (statistics of the training series only),
trains the sensor-graph network (:mod:`.training`) on sliding windows, fits the robust
score statistics and calibrates the alarm threshold on NORMAL validation series
(:mod:`.scoring`). ``score`` scores every grid step of a series; ``score_window`` scores
the newest step of a short history (the live node), with the same numbers as ``score``.

Grid step ``t`` is scored from the ``window - 1`` steps before it (the network's input)
and the value at ``t`` (its target); scores are averaged over ``smoothing`` consecutive
steps, so a score needs ``rows_needed = window + smoothing - 1`` rows and the first
``rows_needed - 1`` rows of a series score 0 (not anomalous). Each channel also scores
its mean over the last ``long_window`` steps (:mod:`.scoring`: persistent moderate faults;
online that mean comes from a :class:`~.scoring.ScoreMemory` of the windows scored before)
and its unsmoothed score (isolated one-step spikes). The attributed channel is the one
with the highest score; its group is the label channel reported (the fault-type head,
when trained, only names the fault).

Checkpoints are plain dicts loaded with ``torch.load(..., weights_only=True)``; anything
wrong with a file raises :class:`CheckpointError` naming the file and the problem.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..checkpoints import read_checkpoint

from .augment import AugmentConfig
from .channels import SHARED_CHANNELS, group_of
from .model import ModelConfig, SensorGraphNet
from .scoring import (ScoreMemory, ScoreStatistics, calibrate_threshold, channel_scores,
                      long_mean, raw_errors, smooth, window_gains)
from .series import AlignedSeries
from .training import TrainConfig, fit as train_model
from .windows import Normaliser, Windows, make_windows, normalise

__all__ = ['DetectorConfig', 'AnomalyDetector', 'FitReport', 'Scores', 'WindowScore',
           'CheckpointError', 'NORMAL', 'hold_out']

CHECKPOINT_FORMAT = 'asv_autonomy.anomaly'
CHECKPOINT_VERSION = 1
NORMAL = 'normal'


@dataclass(frozen=True)
class DetectorConfig:
    """Everything that defines a detector.

    Args:
        window: W [steps] per scored step: the W - 1 steps before it are the input.
        rate_hz: [Hz] grid rate of the series (the detector checks it).
        smoothing: [steps] causal moving average of the per-channel scores.
        level_weight: weight of the level term against the forecast error (0: forecast
            error only; see :mod:`.scoring`).
        score_quantile: quantile of normal errors that maps to channel score 1.
        long_window: [steps] window of each channel's long mean (0: no long-window term;
            100 = 10 s at the boat's 10 Hz).
        long_margin: a channel's long mean alarms above this factor (>= 1) times its
            highest long mean on the normal training and validation series.
        long_window_channels: the channels with a long-window term (None: every scored
            channel). Residuals that compare two sources of one quantity are near 0 in
            any normal operation, so their long mean is a fault signature; a state such
            as speed has a long mean that follows the mission (a faster survey than in
            training is a new operating point, not a fault).
        peak_margin: a channel's unsmoothed score alarms above this factor (>= 1) times
            its highest unsmoothed score on the normal training and validation series
            (0: no peak term). A spurious echo is one or two grid steps: the short
            average divides it by ``smoothing``.
        false_alarms_per_hour: target alarm-event rate on normal data [1/h].
        alarm_gap_s: [s] alarms closer than this are one event.
        threshold_margin: factor >= 1 on the calibrated threshold.
        threshold_on_training: calibrate the threshold on the training series as well as
            the validation ones. Half an hour of validation holds too few of the normal
            excursions of the boat's missions (its highest score alone set the
            threshold); off for logs whose "normal" stretches may hold unlabelled real
            anomalies, which would raise it (on plaka.log's depth spikes: event F1 0.91
            with it off, 0.09 on).
        validation_fraction: share of the training data held out for calibration when
            ``fit`` gets no validation series: the last ``round(n * validation_fraction)``
            whole series when that is at least one, so that the threshold sees runs the
            network never saw (another day, another current: the spread a new mission
            brings), else the end of each series.
        normaliser_clip: normalised values are clipped to +-this.
        unscored_channels: channels the network reads but that never raise an alarm:
            commands (e.g. ``thrust_left``), decided by the autopilot rather than
            measured; their sudden steps are not predictable from the past, and a fault
            shows in the measured response instead.
        model: network sizes.
        training: optimisation settings (its seed also seeds the weights).
    """

    window: int = 31
    rate_hz: float = 10.0
    smoothing: int = 5
    level_weight: float = 1.0
    score_quantile: float = 0.999
    long_window: int = 100
    long_margin: float = 1.25
    long_window_channels: tuple[str, ...] | None = None
    peak_margin: float = 2.0
    false_alarms_per_hour: float = 1.0
    alarm_gap_s: float = 2.0
    threshold_margin: float = 1.1
    threshold_on_training: bool = False
    validation_fraction: float = 0.25
    normaliser_clip: float = 20.0
    unscored_channels: tuple[str, ...] = ()
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if not isinstance(self.window, int) or self.window < 2:
            raise ValueError(f'window must be an int >= 2 steps, got {self.window!r}')
        if not (math.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f'rate_hz must be > 0, got {self.rate_hz}')
        if not isinstance(self.smoothing, int) or self.smoothing < 1:
            raise ValueError(f'smoothing must be an int >= 1 step, got {self.smoothing!r}')
        if not self.level_weight >= 0.0:
            raise ValueError(f'level_weight must be >= 0, got {self.level_weight}')
        if not 0.5 < self.score_quantile < 1.0:
            raise ValueError(f'score_quantile must be in (0.5, 1), got {self.score_quantile}')
        if not isinstance(self.long_window, int) or self.long_window < 0 or \
                self.long_window == 1:
            raise ValueError(f'long_window must be an int >= 2 steps, or 0 for none, got '
                             f'{self.long_window!r}')
        if not self.long_margin >= 1.0:
            raise ValueError(f'long_margin must be >= 1, got {self.long_margin}')
        if not (self.peak_margin == 0.0 or self.peak_margin >= 1.0) or \
                not math.isfinite(self.peak_margin):
            raise ValueError(f'peak_margin must be >= 1, or 0 for none, got '
                             f'{self.peak_margin}')
        if not self.false_alarms_per_hour > 0.0:
            raise ValueError(f'false_alarms_per_hour must be > 0, got '
                             f'{self.false_alarms_per_hour}')
        if not self.alarm_gap_s >= 0.0 or not self.threshold_margin >= 1.0:
            raise ValueError('need alarm_gap_s >= 0 s and threshold_margin >= 1')
        if not isinstance(self.threshold_on_training, bool):
            raise ValueError(f'threshold_on_training must be true or false, got '
                             f'{self.threshold_on_training!r}')
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f'validation_fraction must be in (0, 1), got '
                             f'{self.validation_fraction}')
        if not self.normaliser_clip > 0.0:
            raise ValueError(f'normaliser_clip must be > 0, got {self.normaliser_clip}')
        object.__setattr__(self, 'unscored_channels', tuple(self.unscored_channels))
        if not all(isinstance(c, str) for c in self.unscored_channels):
            raise ValueError(f'unscored_channels must be names, got {self.unscored_channels!r}')
        if self.long_window_channels is not None:
            object.__setattr__(self, 'long_window_channels', tuple(self.long_window_channels))
            if not all(isinstance(c, str) for c in self.long_window_channels):
                raise ValueError(f'long_window_channels must be names, got '
                                 f'{self.long_window_channels!r}')
        if isinstance(self.model, dict):
            object.__setattr__(self, 'model', ModelConfig(**self.model))
        if isinstance(self.training, dict):
            object.__setattr__(self, 'training', TrainConfig(**self.training))

    @property
    def rows_needed(self) -> int:
        """Rows of history one score needs: window + smoothing - 1."""
        return self.window + self.smoothing - 1

    def to_dict(self) -> dict:
        """Plain nested dict (for checkpoints and JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'DetectorConfig':
        """Inverse of :meth:`to_dict`; unknown keys raise TypeError, bad values ValueError."""
        values = dict(values)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f'unknown DetectorConfig keys {unknown}')
        if isinstance(values.get('training'), dict):
            training = dict(values['training'])
            if isinstance(training.get('augment'), dict):
                training['augment'] = AugmentConfig(**training['augment'])
            values['training'] = TrainConfig(**training)
        if isinstance(values.get('model'), dict):
            values['model'] = ModelConfig(**values['model'])
        return cls(**values)


def hold_out(series: Sequence[AlignedSeries], fraction: float
             ) -> tuple[list[AlignedSeries], list[AlignedSeries]]:
    """(training, validation) parts of normal series: the last ``round(n * fraction)``
    whole series when that is at least one, else the last ``fraction`` of each."""
    series = list(series)
    held_out = int(round(len(series) * fraction))
    if held_out >= 1 and held_out < len(series):
        return series[:-held_out], series[-held_out:]
    cuts = [int(len(s) * (1.0 - fraction)) for s in series]
    return ([s.slice(0, cut) for s, cut in zip(series, cuts)],
            [s.slice(cut, len(s)) for s, cut in zip(series, cuts)])


class CheckpointError(ValueError):
    """An anomaly-detector checkpoint that cannot be used (file and problem named)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f'anomaly checkpoint {self.path}: {reason}')


@dataclass
class FitReport:
    """epochs run; losses / validation_losses per epoch; best_epoch kept; train_s [s]
    training time; threshold calibrated; windows: training windows; calibration_hours [h]
    of normal data the threshold was calibrated on."""

    epochs: int
    losses: list[float]
    validation_losses: list[float]
    best_epoch: int
    train_s: float
    threshold: float
    windows: int
    calibration_hours: float


@dataclass
class Scores:
    """Scores of every grid step of a series.

    Shapes:
        times, score, is_anomaly, channel, group, fault ``(N,)``; channel_scores
        ``(N, C)``. channel / group / fault are '' where not anomalous (fault also when no
        classifier was trained or it says normal).
    """

    times: np.ndarray
    score: np.ndarray
    channel_scores: np.ndarray
    is_anomaly: np.ndarray
    channel: np.ndarray
    group: np.ndarray
    fault: np.ndarray


@dataclass
class WindowScore:
    """Score of the newest step of a window: channel_scores ``(C,)``; channel / group /
    fault '' when not anomalous."""

    score: float
    channel_scores: np.ndarray
    is_anomaly: bool
    channel: str
    group: str
    fault: str


class AnomalyDetector:
    """Graph-network anomaly detector over sensor channels (see the module docstring).

    Args:
        config: settings.
    """

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        self.config = config
        self.model: SensorGraphNet | None = None
        self.normaliser: Normaliser | None = None
        self.statistics: ScoreStatistics | None = None
        self._channels: tuple[str, ...] = ()
        self._threshold = math.nan
        # Per-channel gains on the long-window mean and on the unsmoothed score (zeros:
        # no such term).
        self.long_gain: np.ndarray | None = None
        self.peak_gain: np.ndarray | None = None
        # Classifier classes: (fault family, channel group); class 0 is (NORMAL, '').
        self.classes: tuple[tuple[str, str], ...] = ()

    # ------------------------------------------------------------------ properties
    @property
    def channels(self) -> tuple[str, ...]:
        return self._channels

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def fault_types(self) -> tuple[str, ...]:
        """Fault families the classifier names ('normal' excluded; () without one)."""
        return tuple(sorted({fault for fault, _ in self.classes[1:]}))

    def _require_fitted(self):
        if self.model is None:
            raise RuntimeError('the detector is not fitted: call fit() or load()')

    # ------------------------------------------------------------------ fitting
    def _check_rate(self, series: AlignedSeries, what: str):
        if len(series) > 1 and abs(series.dt * self.config.rate_hz - 1.0) > 1e-3:
            raise ValueError(f'{what}: grid step {series.dt:.4g} s does not match rate_hz '
                             f'{self.config.rate_hz} Hz')

    def _windows(self, series: AlignedSeries, stride: int = 1) -> Windows:
        values, mask = normalise(series.select(self._channels), self.normaliser)
        return make_windows(values, mask, self.config.window - 1, stride)

    def fit(self, train: Sequence[AlignedSeries], validation: Sequence[AlignedSeries] | None = None,
            labelled: Sequence[AlignedSeries] = (),
            progress: Callable[[int, int, float], None] | None = None) -> FitReport:
        """Learn normal behaviour from ``train`` and calibrate on ``validation``.

        Args:
            train: series of normal operation; the channels are those of the first one
                (the others are selected to them).
            validation: normal series for early stopping, score statistics and the
                threshold (None: held out from ``train``, see ``validation_fraction``).
            labelled: series with ``fault`` / ``fault_channel`` ground truth for the
                fault-type head (semi-supervision); none: no classifier.
            progress: ``progress(epoch, epochs, loss)`` after each epoch.
        """
        cfg = self.config
        if not train:
            raise ValueError('fit needs at least one training series')
        self._channels = tuple(train[0].channels)
        train = [s.select(self._channels) for s in train]
        for i, s in enumerate(train):
            self._check_rate(s, f'training series {i}')
        if validation is None or len(validation) == 0:
            train, validation = hold_out(train, cfg.validation_fraction)
        validation = [s.select(self._channels) for s in validation]
        self.normaliser = Normaliser.fit(train, clip=cfg.normaliser_clip)
        train_windows = Windows.concat([self._windows(s) for s in train])
        validation_windows = Windows.concat([self._windows(s) for s in validation])
        if len(train_windows) < 2 or len(validation_windows) < 1:
            raise ValueError(f'series too short for window {cfg.window}: '
                             f'{len(train_windows)} training / {len(validation_windows)} '
                             f'validation windows')
        labelled_windows, labelled_classes = self._labelled_windows(labelled)
        torch.manual_seed(cfg.training.seed)
        self.model = SensorGraphNet(len(self._channels), cfg.model,
                                    len(self.classes) if self.classes else 0)
        result = train_model(self.model, train_windows, validation_windows, cfg.training,
                             labelled_windows, labelled_classes, progress)
        hours = self._calibrate(validation, train)
        return FitReport(len(result.losses), result.losses, result.validation_losses,
                         result.best_epoch, result.train_s, self._threshold,
                         len(train_windows), hours)

    def _labelled_windows(self, labelled: Sequence[AlignedSeries]):
        """Windows of the labelled series and their class indices (sets ``classes``)."""
        self.classes = ()
        parts, names = [], []
        for s in labelled:
            if s.fault is None:
                raise ValueError('labelled series need fault ground truth (AlignedSeries.fault)')
            windows = self._windows(s.select(self._channels))
            ends = windows.end_index.numpy()
            groups = s.fault_channel if s.fault_channel is not None else np.full(len(s), '')
            names += [(str(f), str(g)) if f else (NORMAL, '')
                      for f, g in zip(s.fault[ends], groups[ends])]
            parts.append(windows)
        if not parts or not any(name != (NORMAL, '') for name in names):
            return None, None
        self.classes = ((NORMAL, ''),) + tuple(sorted(set(names) - {(NORMAL, '')}))
        index = {name: i for i, name in enumerate(self.classes)}
        return Windows.concat(parts), torch.tensor([index[n] for n in names], dtype=torch.long)

    def _calibrate(self, validation: Sequence[AlignedSeries],
                   train: Sequence[AlignedSeries]) -> float:
        """Score statistics from ``validation`` (errors the network was not fitted to);
        the threshold from it (and from ``train`` with ``threshold_on_training``: on the
        boat's missions the validation's highest score alone set it, from 1.7 to 3.1 with
        the same network depending on one start transient); the long-window and peak
        gains from both (normal series the threshold never saw widen the normal range:
        the network's fit to its training data hardly changes a 10 s mean, and the
        margins cover its smaller errors there). Returns the hours the threshold was
        calibrated on."""
        cfg = self.config
        raws, observed = [], []
        for s in validation:
            raw, seen, _ = self._raw(s)
            raws.append(raw)
            observed.append(seen)
        self.statistics = ScoreStatistics.fit(np.concatenate(raws, axis=1),
                                              np.concatenate(observed), cfg.score_quantile)
        self.long_gain = np.zeros(len(self._channels), np.float32)
        self.peak_gain = np.zeros(len(self._channels), np.float32)
        unsmoothed = [self._channel_scores(raw, seen) for raw, seen in zip(raws, observed)]
        if cfg.long_window or cfg.peak_margin or cfg.threshold_on_training:
            unsmoothed += [self._channel_scores(*self._raw(s)[:2]) for s in train]
        calibration = [*validation, *train] if cfg.threshold_on_training else [*validation]
        hours = sum(len(s) for s in calibration) / cfg.rate_hz / 3600.0
        self._threshold = calibrate_threshold(
            [self._short(u).max(axis=1, initial=0.0) for u in unsmoothed[:len(calibration)]],
            hours, cfg.false_alarms_per_hour, int(round(cfg.alarm_gap_s * cfg.rate_hz)),
            cfg.threshold_margin)
        if cfg.long_window:
            self.long_gain = window_gains(unsmoothed, cfg.long_window, self._threshold,
                                          cfg.long_margin)
            if cfg.long_window_channels is not None:
                self.long_gain[[c not in cfg.long_window_channels
                                for c in self._channels]] = 0.0
        if cfg.peak_margin:
            self.peak_gain = window_gains(unsmoothed, 1, self._threshold, cfg.peak_margin)
        return hours

    # ------------------------------------------------------------------ scoring
    def _forward(self, windows: Windows, batch_size: int = 2048):
        """Forecasts ``(B, C)`` and class probabilities ``(B, K)`` (or None)."""
        forecasts, probabilities = [], []
        with torch.inference_mode():
            for start in range(0, len(windows), batch_size):
                stop = min(start + batch_size, len(windows))
                out = self.model(windows.x[start:stop], windows.mask[start:stop])
                forecasts.append(out.forecast)
                if out.logits is not None:
                    probabilities.append(out.logits.softmax(dim=1))
        forecast = torch.cat(forecasts).numpy() if forecasts else \
            np.zeros((0, len(self._channels)), np.float32)
        return forecast, (torch.cat(probabilities).numpy() if probabilities else None)

    def _raw(self, series: AlignedSeries):
        """Raw terms ``(2, B, C)``, observed targets ``(B, C)`` and class probabilities of
        every window of ``series`` (targets at rows window-1, window, ...)."""
        windows = self._windows(series)
        forecast, probabilities = self._forward(windows)
        observed = windows.target_mask.numpy() > 0
        return raw_errors(forecast, windows.target.numpy(), observed), observed, probabilities

    def _channel_scores(self, raw: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """Unsmoothed channel scores of consecutive windows, 0 for unscored channels."""
        per_channel = channel_scores(raw, observed, self.statistics, self.config.level_weight)
        per_channel[:, [i for i, c in enumerate(self._channels)
                        if c in self.config.unscored_channels]] = 0.0
        return per_channel

    def _short(self, unsmoothed: np.ndarray) -> np.ndarray:
        """Short-window scores; the first ``smoothing - 1`` rows (incomplete average) 0."""
        short = smooth(unsmoothed, self.config.smoothing)
        short[:self.config.smoothing - 1] = 0.0
        return short

    @property
    def _long_on(self) -> bool:
        return bool(self.config.long_window) and self.long_gain is not None and \
            bool(self.long_gain.any())

    def _short_and_peak(self, unsmoothed: np.ndarray) -> np.ndarray:
        """Channel scores of the short window and the peak term. (Rows before a full
        short average are not zeroed for the peak: ``score`` zeroes its first
        ``rows_needed - 1`` rows and ``score_window`` reads only the last one.)"""
        short = self._short(unsmoothed)
        if self.peak_gain is None or not self.peak_gain.any():
            return short
        return np.maximum(short, unsmoothed * self.peak_gain)

    def _overall(self, raw: np.ndarray, observed: np.ndarray):
        """Channel scores (short window, peak and long window) and overall score of
        consecutive windows."""
        unsmoothed = self._channel_scores(raw, observed)
        per_channel = self._short_and_peak(unsmoothed)
        if self._long_on:
            per_channel = np.maximum(per_channel, long_mean(unsmoothed, self.config.long_window)
                                     * self.long_gain)
        return per_channel.max(axis=1, initial=0.0), per_channel

    def score_memory(self) -> ScoreMemory | None:
        """A fresh memory for :meth:`score_window` on one stream (None: the detector has
        no long-window term)."""
        return ScoreMemory(self.config.long_window, 1.0 / self.config.rate_hz) \
            if self._long_on else None

    def _labels(self, per_channel: np.ndarray, alarm: np.ndarray,
                probabilities: np.ndarray | None):
        """Attributed channel, group and fault type of each row of ``per_channel``
        ``(N, C)`` scores.

        The channel is the highest-scoring one, or a shared channel
        (:data:`.channels.SHARED_CHANNELS`) when all of its parts are above the
        threshold and one of them scores highest. The group is always the attributed
        channel's: the classifier, trained on a few labelled faults, names the fault type,
        but its class's group is a guess where the channel scores are a measurement (on
        the simulated test faults, with the shipped model, letting it override the
        channel's group turned 4 of 26 correct attributions wrong and none right).
        """
        best = per_channel.argmax(axis=1)
        for shared, parts in SHARED_CHANNELS.items():
            if shared in self._channels and all(p in self._channels for p in parts):
                columns = [self._channels.index(p) for p in parts]
                joint = (per_channel[:, columns] > self._threshold).all(axis=1)
                best = np.where(joint & np.isin(best, columns), self._channels.index(shared),
                                best)
        channel = np.where(alarm, np.asarray(self._channels, dtype=object)[best], '')
        group = np.array([group_of(c) if c else '' for c in channel], dtype=object)
        fault = np.full(len(best), '', dtype=object)
        if probabilities is not None:
            named = probabilities.argmax(axis=1)
            for i in np.flatnonzero(alarm & (named > 0)):
                fault[i] = self.classes[named[i]][0]
        return channel.astype(object), group, fault

    def score(self, series: AlignedSeries) -> Scores:
        """Scores of every grid step of ``series`` (its channels are selected to the
        detector's; missing ones are all missing)."""
        self._require_fitted()
        self._check_rate(series, 'scored series')
        series = series.select(self._channels)
        n, c = len(series), len(self._channels)
        score = np.zeros(n, np.float32)
        per_channel = np.zeros((n, c), np.float32)
        probabilities = None
        offset = self.config.window - 1
        if n > offset:
            raw, observed, window_probabilities = self._raw(series)
            score[offset:], per_channel[offset:] = self._overall(raw, observed)
            score[:self.config.rows_needed - 1] = 0.0
            per_channel[:self.config.rows_needed - 1] = 0.0
            if window_probabilities is not None:
                probabilities = np.zeros((n, window_probabilities.shape[1]), np.float32)
                probabilities[:, 0] = 1.0
                probabilities[offset:] = window_probabilities
        alarm = score > self._threshold
        channel, group, fault = self._labels(per_channel, alarm, probabilities)
        return Scores(series.times, score, per_channel, alarm, channel, group, fault)

    def score_window(self, values: np.ndarray, memory: ScoreMemory | None = None,
                     times: np.ndarray | None = None) -> WindowScore:
        """Score of the newest (last) row of ``values``.

        Args:
            values: the newest ``rows_needed`` (or more) grid rows in the detector's
                channel order, NaN where missing.
            memory: this stream's :meth:`score_memory`, carried from call to call: with
                it the score includes the long-window term (equal to :meth:`score`'s
                when every grid step is scored in order); without it, the short window
                only.
            times: [s] grid times of the rows of ``values`` (needed with ``memory``).

        Shapes:
            values ``(R, C)``, R >= rows_needed; times ``(R,)``.
        """
        self._require_fitted()
        values = np.asarray(values, dtype=np.float32)
        need = self.config.rows_needed
        if values.ndim != 2 or values.shape[1] != len(self._channels) or values.shape[0] < need:
            raise ValueError(f'score_window needs (>= {need}, {len(self._channels)}) values, '
                             f'got {values.shape}')
        normed, mask = self.normaliser.transform(values[-need:])
        windows = make_windows(torch.from_numpy(normed), torch.from_numpy(mask),
                               self.config.window - 1)
        forecast, probabilities = self._forward(windows)
        observed = windows.target_mask.numpy() > 0
        unsmoothed = self._channel_scores(raw_errors(forecast, windows.target.numpy(), observed),
                                          observed)
        per_channel = self._short_and_peak(unsmoothed)[-1]
        if memory is not None and self._long_on:
            if times is None or len(times) != len(values):
                raise ValueError('score_window with a memory needs the times of the rows')
            memory.add(np.asarray(times, np.float64)[-len(unsmoothed):], unsmoothed)
            mean = memory.mean()
            if mean is not None:
                per_channel = np.maximum(per_channel, mean * self.long_gain)
        score = float(per_channel.max(initial=0.0))
        alarm = np.array([score > self._threshold])
        channel, group, fault = self._labels(per_channel[None], alarm,
                                             None if probabilities is None else probabilities[-1:])
        return WindowScore(score, per_channel, bool(alarm[0]), str(channel[0]),
                           str(group[0]), str(fault[0]))

    # ------------------------------------------------------------------ checkpoints
    def save(self, path) -> None:
        """Write the checkpoint to ``path`` (a plain dict of tensors and plain types)."""
        self._require_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = {'format': CHECKPOINT_FORMAT, 'version': CHECKPOINT_VERSION,
                'config': self.config.to_dict(),
                'channels': list(self._channels),
                'classes': [list(c) for c in self.classes],
                'normaliser': {'centre': torch.from_numpy(self.normaliser.centre.copy()),
                               'scale': torch.from_numpy(self.normaliser.scale.copy()),
                               'clip': float(self.normaliser.clip)},
                'statistics': {'centre': torch.from_numpy(self.statistics.centre.copy()),
                               'scale': torch.from_numpy(self.statistics.scale.copy())},
                'threshold': float(self._threshold),
                'long_gain': torch.from_numpy(self.long_gain.copy()),
                'peak_gain': torch.from_numpy(self.peak_gain.copy()),
                'state_dict': {k: v.detach().cpu().clone()
                               for k, v in self.model.state_dict().items()}}
        torch.save(blob, path)

    @classmethod
    def load(cls, path, map_location: str = 'cpu') -> 'AnomalyDetector':
        """Detector of a checkpoint written by :meth:`save`.

        Raises:
            CheckpointError: missing, unreadable, unsafe, corrupt or mismatched file.
        """
        path = Path(path)
        blob = read_checkpoint(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
                               'an anomaly checkpoint', CheckpointError, map_location)
        try:
            config = DetectorConfig.from_dict(blob['config'])
            channels = tuple(blob['channels'])
            if not channels or not all(isinstance(c, str) for c in channels):
                raise ValueError('channels must be a non-empty list of names')
            classes = tuple((str(f), str(g)) for f, g in blob['classes'])
            normaliser = Normaliser(blob['normaliser']['centre'].numpy(),
                                    blob['normaliser']['scale'].numpy(),
                                    float(blob['normaliser']['clip']))
            statistics = ScoreStatistics(blob['statistics']['centre'].numpy(),
                                         blob['statistics']['scale'].numpy())
            threshold = float(blob['threshold'])
            # Checkpoints written before the long window have no gains: it stays off.
            long_gain = (blob['long_gain'].numpy().astype(np.float32) if 'long_gain' in blob
                         else np.zeros(len(channels), np.float32))
            # ... and none written before the peak term: it stays off.
            peak_gain = (blob['peak_gain'].numpy().astype(np.float32) if 'peak_gain' in blob
                         else np.zeros(len(channels), np.float32))
            state = blob['state_dict']
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CheckpointError(path, f'bad or missing entry: {type(error).__name__}: '
                                        f'{error}') from error
        if normaliser.centre.shape != (len(channels),) or \
                statistics.centre.shape != (2, len(channels)):
            raise CheckpointError(path, f'normaliser / score statistics do not match '
                                        f'{len(channels)} channels')
        if not math.isfinite(threshold):
            raise CheckpointError(path, f'non-finite threshold {threshold}')
        for name, gain in (('long_gain', long_gain), ('peak_gain', peak_gain)):
            if gain.shape != (len(channels),) or not np.all(np.isfinite(gain)) or \
                    np.any(gain < 0):
                raise CheckpointError(path, f'{name} must be {len(channels)} finite values '
                                            f'>= 0')
        if not isinstance(state, dict):
            raise CheckpointError(path, 'no state_dict')
        model = SensorGraphNet(len(channels), config.model, len(classes))
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, ValueError) as error:
            raise CheckpointError(path, f'weights do not match the config: '
                                        f'{str(error).splitlines()[0][:300]}') from error
        if not all(torch.isfinite(t).all() for t in model.state_dict().values()
                   if t.is_floating_point()):
            raise CheckpointError(path, 'non-finite weights')
        detector = cls(config)
        detector.model = model.eval()
        detector.normaliser, detector.statistics = normaliser, statistics
        detector._channels, detector.classes, detector._threshold = channels, classes, threshold
        detector.long_gain, detector.peak_gain = long_gain, peak_gain
        return detector
