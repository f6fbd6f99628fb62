"""Faults injected into a real, normal series, for benchmarks on real logs (plaka.log).

Injections edit the aligned channels directly, with the effect each fault has on them:

* ``gps_dropout``: ``gps_fix`` 0 and every channel derived from GPS positions or course
  (group ``gps`` and the heading-vs-course comparisons) missing.
* ``gps_jump``: the position jumps by ``severity`` [m] in a random direction and jumps back
  at the end: ``gps_residual_*`` (boat) move by the offset throughout; ``gps_step_*``
  (NMEA) see +offset at the first sample of the jump and -offset at the next one (and the
  reverse at the end: the two samples after the interval are labelled too, the jump back
  is part of the fault), ``gps_speed`` the step's speed on those samples (assuming the
  offset is across the track). This assumes one grid step per fix, as
  :func:`.nmea_channels.series_from_nmea` makes by default.
* ``depth_spike``: each depth sample in the interval is, with probability ``severity``,
  a spurious echo uniform in 0.5-3 m (as the simulator's ``sonar_spurious``).
* ``heading_drift``: the heading drifts at ``severity`` [rad/s]: channels comparing
  heading and course (``imu_heading_vs_course``, ``cog_vs_heading``) rotate by the
  accumulated angle and ``heading_rate`` is offset by the rate (label channel ``imu``).
  A log without heading (plaka.log has none) gets the drift on its course over ground
  instead (``cog_vs_track``, label channel ``gps``).

Times are seconds since the series' first sample. Injected faults are labelled
(``anomaly``, ``fault`` = the kind, ``fault_channel`` = the group).
"""
from __future__ import annotations

import math

import numpy as np

from .channels import group_of
from .series import AlignedSeries

__all__ = ['KINDS', 'inject', 'random_injections', 'applicable_kinds']

KINDS = ('gps_dropout', 'gps_jump', 'depth_spike', 'heading_drift')
SPURIOUS_DEPTH_M = (0.5, 3.0)
# Default severities, drawn like the simulator's random_fault.
JUMP_M = (6.0, 25.0)
SPIKE_PROBABILITY = (0.2, 0.7)
DRIFT_RATE = (1e-3, 4e-3)     # [rad/s], either sign
_HEADING = ('imu_heading_vs_course', 'cog_vs_heading')
_DEPTH = ('sonar_depth', 'depth')


def _drift_targets(channels) -> tuple[str, ...]:
    heading = [c for c in _HEADING + ('heading_rate',) if c in channels]
    return tuple(heading) if heading else tuple(c for c in ('cog_vs_track',) if c in channels)


def applicable_kinds(series: AlignedSeries) -> tuple[str, ...]:
    """The kinds that change at least one channel of ``series``."""
    channels = set(series.channels)
    gps = any(group_of(c) == 'gps' for c in channels)
    jump = any(c.startswith(('gps_residual_', 'gps_step_')) for c in channels)
    return tuple(k for k, ok in (('gps_dropout', gps), ('gps_jump', jump),
                                 ('depth_spike', bool(channels & set(_DEPTH))),
                                 ('heading_drift', bool(_drift_targets(channels)))) if ok)


def _default_severity(kind: str, rng: np.random.Generator) -> float:
    if kind == 'gps_jump':
        return float(rng.uniform(*JUMP_M))
    if kind == 'depth_spike':
        return float(rng.uniform(*SPIKE_PROBABILITY))
    if kind == 'heading_drift':
        return float(rng.choice([-1.0, 1.0]) * rng.uniform(*DRIFT_RATE))
    return 0.0


def inject(series: AlignedSeries, kind: str, onset_s: float, duration_s: float,
           rng: np.random.Generator, severity: float | None = None) -> AlignedSeries:
    """A copy of ``series`` with one fault injected and labelled.

    Args:
        series: a normal series (its labels, if any, are kept outside the fault).
        kind: one of :data:`KINDS`.
        onset_s, duration_s: [s] since the first sample.
        rng: randomness (jump direction, spurious depths, default severity).
        severity: jump size [m], spike probability, or drift rate [rad/s] (signed);
            default drawn as the simulator draws its faults.

    Raises:
        ValueError: unknown kind, a kind the series has no channel for, or an interval
            outside the series.
    """
    if kind not in KINDS:
        raise ValueError(f'unknown injection {kind!r} (known: {", ".join(KINDS)})')
    if kind not in applicable_kinds(series):
        raise ValueError(f'{kind} changes none of the channels {series.channels}')
    if not (duration_s > 0.0 and 0.0 <= onset_s and math.isfinite(onset_s + duration_s)):
        raise ValueError(f'need onset_s >= 0 and duration_s > 0, got {onset_s}, {duration_s}')
    severity = _default_severity(kind, rng) if severity is None else float(severity)
    elapsed = series.times - series.times[0]
    inside = (elapsed >= onset_s) & (elapsed < onset_s + duration_s)
    if not inside.any():
        raise ValueError(f'{onset_s} s + {duration_s} s is outside the series '
                         f'({elapsed[-1]:.1f} s)')
    values = series.values.copy()
    col = {name: j for j, name in enumerate(series.channels)}
    rows = np.flatnonzero(inside)
    if kind == 'gps_dropout':
        for name, j in col.items():
            if name == 'gps_fix':
                values[rows, j] = 0.0
            elif group_of(name) == 'gps' or name in _HEADING:
                values[rows, j] = np.nan
        group = 'gps'
    elif kind == 'gps_jump':
        angle = rng.uniform(0.0, 2.0 * math.pi)
        offset = {'east': severity * math.cos(angle), 'north': severity * math.sin(angle)}
        first, after = rows[0], rows[-1] + 1
        for axis, size in offset.items():
            if f'gps_residual_{axis}' in col:
                values[rows, col[f'gps_residual_{axis}']] += size
            if f'gps_step_{axis}' in col:
                # Position jumps by +offset at the onset and by -offset at the end.
                for row, sign in ((first, 1.0), (first + 1, -1.0), (after, -1.0),
                                  (after + 1, 1.0)):
                    if row < len(series):
                        values[row, col[f'gps_step_{axis}']] += sign * size
                rows = np.arange(first, min(after + 2, len(series)))
        if 'gps_speed' in col and series.dt > 0.0:
            j = col['gps_speed']
            for row in (first, after):
                if row < len(series):
                    values[row, j] = math.hypot(values[row, j], severity / series.dt)
        group = 'gps'
    elif kind == 'depth_spike':
        for name in _DEPTH:
            if name in col:
                spurious = rows[(rng.random(rows.size) < severity)
                                & np.isfinite(values[rows, col[name]])]
                values[spurious, col[name]] = rng.uniform(*SPURIOUS_DEPTH_M, spurious.size)
        group = 'sonar'
    else:
        angle = severity * (elapsed[rows] - onset_s)
        targets = _drift_targets(col)
        for name in targets:
            j = col[name]
            if name == 'heading_rate':
                values[rows, j] += severity
                continue
            # sin(yaw - course) for the IMU, sin(course - heading) for NMEA logs.
            turn = -angle if name == 'cog_vs_heading' else angle
            values[rows, j] = np.sin(np.arcsin(np.clip(values[rows, j], -1.0, 1.0)) + turn)
        group = group_of(targets[0])
    n = len(series)
    anomaly = np.zeros(n, bool) if series.anomaly is None else series.anomaly.copy()
    fault = np.full(n, '', object) if series.fault is None else series.fault.copy()
    channel = (np.full(n, '', object) if series.fault_channel is None
               else series.fault_channel.copy())
    anomaly[rows], fault[rows], channel[rows] = True, kind, group
    return AlignedSeries(series.times, values, series.channels, anomaly, fault, channel)


def random_injections(series: AlignedSeries, count: int, rng: np.random.Generator,
                      kinds=KINDS, warmup_s: float = 120.0, duration_s=(20.0, 90.0),
                      gap_s: float = 40.0) -> AlignedSeries:
    """``count`` non-overlapping injections of random applicable kinds, after a
    fault-free warm-up, each in its own slot of the series with ``gap_s`` [s] of normal
    data before the next (as ``sim.faults.random_schedule`` places faults).

    Raises:
        ValueError: none of ``kinds`` applies, or the injections do not fit.
    """
    usable = [k for k in kinds if k in applicable_kinds(series)]
    if not usable:
        raise ValueError(f'none of {tuple(kinds)} applies to channels {series.channels}')
    shortest, longest = duration_s
    span = float(series.times[-1] - series.times[0])
    slot = (span - warmup_s) / max(count, 1)
    if count and slot < longest + gap_s:
        raise ValueError(f'{count} injections of up to {longest} s need more than the '
                         f'{span:.0f} s of the series ({warmup_s} s warm-up, {gap_s} s gaps)')
    for index in range(count):
        length = float(rng.uniform(shortest, longest))
        onset = warmup_s + index * slot + float(rng.uniform(0.0, slot - length - gap_s))
        series = inject(series, str(rng.choice(usable)), onset, length, rng)
    return series
