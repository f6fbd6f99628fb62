"""Multi-rate channel streams and their alignment onto one regular time grid.

Every source of data for the anomaly detector (a bag, a CSV file, an NMEA log, the live
node) produces :class:`ChannelStreams`: per channel, the times and values it was sampled
at, at its own rate. :func:`align` resamples them onto a regular grid: a channel's value
at a grid time is its newest sample at or before that time (sample-and-hold, causal, so
the node and offline scoring see the same values), unless that sample is older than the
channel's hold limit, in which case the value is missing (NaN). Missing is not an error:
a GPS outage is missing GPS position, and the detector reads the missing-data mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ['ChannelStreams', 'AlignedSeries', 'align']


@dataclass
class ChannelStreams:
    """Samples of each channel at its own times.

    Args:
        samples: channel name -> (times [s] ``(n,)``, values ``(n,)``); times need not be
            sorted or unique (:func:`align` sorts them; the last of equal times wins).
        hold: channel name -> [s] how long a sample stays valid (default: the
            ``default_hold`` of :func:`align`); e.g. a 1 Hz GPS holds ~1.5 s.
        fill: channel name -> value when no valid sample is held, after the channel's
            first sample (e.g. GPS fix status: silence means no fix, 0); default missing.
    """

    samples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    hold: dict[str, float] = field(default_factory=dict)
    fill: dict[str, float] = field(default_factory=dict)

    def add(self, channel: str, times, values, hold: float | None = None,
            fill: float | None = None):
        """Append samples of ``channel`` (arrays or scalars)."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        values = np.atleast_1d(np.asarray(values, dtype=np.float64))
        if times.shape != values.shape or times.ndim != 1:
            raise ValueError(f'channel {channel!r}: times {times.shape} and values '
                             f'{values.shape} must be equal 1-D shapes')
        if channel in self.samples:
            old_t, old_v = self.samples[channel]
            times, values = np.concatenate([old_t, times]), np.concatenate([old_v, values])
        self.samples[channel] = (times, values)
        if hold is not None:
            self.hold[channel] = float(hold)
        if fill is not None:
            self.fill[channel] = float(fill)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self.samples)

    def span(self) -> tuple[float, float]:
        """[s] first and last sample time over all channels."""
        finite = [t[np.isfinite(t)] for t, _ in self.samples.values()]
        finite = [t for t in finite if t.size]
        if not finite:
            raise ValueError('no samples with finite times')
        return min(float(t.min()) for t in finite), max(float(t.max()) for t in finite)


@dataclass
class AlignedSeries:
    """Channels on one regular time grid, with optional ground truth.

    Args:
        times: [s] grid times, strictly increasing with a constant step.
        values: channel values; NaN where missing (no valid sample, or a non-finite one).
        channels: channel names, one per column.
        anomaly: ground truth per time (True inside a fault), when known.
        fault: fault family per time ('' outside faults), when known.
        fault_channel: channel group at fault per time ('' outside faults), when known
            (the names the detector's attribution is compared with, e.g. ``gps``).

    Shapes:
        times ``(N,)``, values ``(N, C)``, anomaly/fault/fault_channel ``(N,)``.
    """

    times: np.ndarray
    values: np.ndarray
    channels: tuple[str, ...]
    anomaly: np.ndarray | None = None
    fault: np.ndarray | None = None
    fault_channel: np.ndarray | None = None

    def __post_init__(self):
        self.times = np.asarray(self.times, dtype=np.float64)
        self.values = np.asarray(self.values, dtype=np.float32)
        self.channels = tuple(self.channels)
        n = self.times.shape[0]
        if self.times.ndim != 1 or self.values.shape != (n, len(self.channels)):
            raise ValueError(f'AlignedSeries needs times (N,) and values (N, C={len(self.channels)}),'
                             f' got {self.times.shape} and {self.values.shape}')
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f'duplicate channel names in {self.channels}')
        for name in ('anomaly', 'fault', 'fault_channel'):
            labels = getattr(self, name)
            if labels is not None:
                labels = np.asarray(labels, dtype=bool if name == 'anomaly' else object)
                if labels.shape != (n,):
                    raise ValueError(f'AlignedSeries.{name} must have shape ({n},), '
                                     f'got {labels.shape}')
                setattr(self, name, labels)

    def __len__(self) -> int:
        return self.times.shape[0]

    @property
    def dt(self) -> float:
        """[s] grid step (NaN for fewer than two times)."""
        return float(self.times[1] - self.times[0]) if len(self) > 1 else math.nan

    @property
    def mask(self) -> np.ndarray:
        """(N, C) True where a value is present."""
        return np.isfinite(self.values)

    def select(self, channels) -> 'AlignedSeries':
        """The same series with ``channels`` in that order; a channel this series does
        not have is all missing (a model trained on more channels still scores it)."""
        index = {name: i for i, name in enumerate(self.channels)}
        values = np.full((len(self), len(channels)), np.nan, dtype=np.float32)
        for j, name in enumerate(channels):
            if name in index:
                values[:, j] = self.values[:, index[name]]
        return AlignedSeries(self.times, values, tuple(channels), self.anomaly, self.fault,
                             self.fault_channel)

    def slice(self, start: int, stop: int) -> 'AlignedSeries':
        """Rows ``start:stop``."""
        cut = (lambda a: None if a is None else a[start:stop])
        return AlignedSeries(self.times[start:stop], self.values[start:stop], self.channels,
                             cut(self.anomaly), cut(self.fault), cut(self.fault_channel))


def align(streams: ChannelStreams, rate_hz: float, default_hold: float = 1.0,
          start: float | None = None, stop: float | None = None,
          channels=None) -> AlignedSeries:
    """Resample ``streams`` onto a regular grid by causal sample-and-hold.

    Args:
        streams: the channels' samples.
        rate_hz: [Hz] grid rate.
        default_hold: [s] validity of a sample for channels without their own hold.
        start, stop: [s] grid span (default: the streams' span).
        channels: column order (default: the streams' order); a channel without samples
            is all missing.

    Returns:
        the aligned series (no ground truth).
    """
    if not (math.isfinite(rate_hz) and rate_hz > 0.0):
        raise ValueError(f'rate_hz must be > 0, got {rate_hz}')
    if not (math.isfinite(default_hold) and default_hold > 0.0):
        raise ValueError(f'default_hold must be > 0 s, got {default_hold}')
    first, last = streams.span() if start is None or stop is None else (start, stop)
    start = first if start is None else start
    stop = last if stop is None else stop
    step = 1.0 / rate_hz
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count < 1:
        raise ValueError(f'empty grid: start {start} s is after stop {stop} s')
    times = start + step * np.arange(count)
    channels = tuple(channels) if channels is not None else streams.channels
    values = np.full((count, len(channels)), np.nan, dtype=np.float32)
    for j, name in enumerate(channels):
        if name not in streams.samples:
            continue
        t, v = streams.samples[name]
        keep = np.isfinite(t)
        t, v = t[keep], v[keep]
        if not t.size:
            continue
        order = np.argsort(t, kind='stable')
        t, v = t[order], v[order]
        # Last of equal times wins: searchsorted(side='right') - 1 picks it.
        newest = np.searchsorted(t, times, side='right') - 1
        valid = newest >= 0
        age = np.where(valid, times - t[np.clip(newest, 0, None)], np.inf)
        valid &= age <= streams.hold.get(name, default_hold) + 1e-9
        column = np.where(valid, v[np.clip(newest, 0, None)], np.nan)
        column[~np.isfinite(column)] = np.nan
        if name in streams.fill and t.size:
            column[~np.isfinite(column) & (times >= t[0])] = streams.fill[name]
        values[:, j] = column
    return AlignedSeries(times, values, channels)
