"""The anomaly section of a mission report: the detector's alarms against the faults the
simulator injected (``summary.json`` ``anomalies``).

Inputs are plain arrays read from a mission bag (cli/report.py reads them): the times,
alarm flags and attributed groups of the anomaly node's ``anomaly: overall`` statuses,
and the simulator's ``sim/faults`` reports. Matching follows :mod:`.metrics` (alarm runs
closer than ``MERGE_GAP_S`` are one alarm; a fault is detected by an alarm inside it or
up to ``TOLERANCE_S`` after its end; an alarm event overlapping no such span is a false
alarm), evaluated on the detector's own output times (one sample per scored window).
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np

from .bag_channels import FaultInterval
from .metrics import MERGE_GAP_S, TOLERANCE_S, event_counts

__all__ = ['FaultReport', 'faults_from_reports', 'mission_anomalies']

# One ``sim/faults`` message: (stamp [s], active faults as (type, channel, onset [s] or
# None, duration [s] or None; a negative duration: until the end)).
FaultReport = tuple[float, Sequence[tuple[str, str, Optional[float], Optional[float]]]]


def faults_from_reports(reports: Iterable[FaultReport],
                        time_offset_s: float | None = None) -> list[FaultInterval]:
    """Fault intervals [s, bag time] from the simulator's ``sim/faults`` messages.

    A fault (type, channel, onset) is active from its ``onset`` value (else the first
    message naming it) to ``onset + duration`` (else the first later message that no
    longer names it: the simulator sends an empty array when the last fault ends, at its
    next report tick); ``end`` is inf when it was still active in the last message and
    has no duration. Sorted by onset.

    The simulator's ``onset`` values are seconds since the start of the simulation while
    the stamps are ``start_time + elapsed``: ``time_offset_s`` is that start [s, bag
    time]; None estimates it as the smallest (first message naming a fault - its onset),
    since the simulator reports a fault at the first step it is active (the estimate is
    late by about one physics step; 0 for a source whose onsets are bag times already).
    """
    first_seen: dict[tuple, float] = {}
    last: dict[tuple, tuple] = {}
    ended: dict[tuple, float] = {}
    for stamp, active in sorted(reports, key=lambda report: report[0]):
        keys = set()
        for kind, channel, onset, duration in active:
            key = (str(kind), str(channel), _finite(onset))
            keys.add(key)
            first_seen.setdefault(key, float(stamp))
            last[key] = (str(kind), str(channel), _finite(onset), _finite(duration))
            ended.pop(key, None)            # named again: it had not ended
        for key in set(first_seen) - keys:
            ended.setdefault(key, float(stamp))
    if time_offset_s is None:
        lags = [since - key[2] for key, since in first_seen.items() if key[2] is not None]
        time_offset_s = min(lags) if lags else 0.0
    out = []
    for key, since in first_seen.items():
        kind, channel, onset, duration = last[key]
        start = onset + time_offset_s if onset is not None else since
        if duration is not None and duration >= 0.0:
            end = start + duration
        else:
            end = ended.get(key, math.inf)
        out.append(FaultInterval(kind, channel, start, end))
    return sorted(out, key=lambda f: (f.onset, f.channel))


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def mission_anomalies(times, alarm, group, faults: Sequence[FaultInterval],
                      origin_s: float = 0.0, merge_gap_s: float = MERGE_GAP_S,
                      tolerance_s: float = TOLERANCE_S) -> dict:
    """The ``anomalies`` section of summary.json.

    Args:
        times: [s] bag time of each scored window (``anomaly: overall`` status).
        alarm: True where that status was an alarm (level WARN or above).
        group: channel group the alarm names ('' when none).
        faults: injected faults [s, bag time] (:func:`faults_from_reports`).
        origin_s: [s] bag time of the mission start; reported times are relative to it.

    Returns:
        ``faults``: per fault ``type``, ``channel``, ``onset_s``, ``end_s`` (mission
        seconds; ``end_s`` null when it lasted to the end of the recording), ``detected``,
        ``detection_delay_s`` (first alarm in the fault or its tolerance after the end,
        minus the onset; null when missed), ``attributed_channel`` (the group most often
        named by the alarm samples that detected it; ties: alphabetical first) and
        ``attribution_correct`` (null when missed or unattributed);
        ``false_alarms``: alarm events overlapping no fault; ``false_alarms_per_hour``:
        per hour of scored time outside faults (null when there is none);
        ``detector_running``: whether any window was scored.

    Shapes:
        times, alarm, group ``(N,)`` (any order; sorted by time here).
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    alarm = np.asarray(alarm, dtype=bool).reshape(-1)
    group = np.asarray(['' if g is None else str(g) for g in group], dtype=object).reshape(-1)
    if not times.shape == alarm.shape == group.shape:
        raise ValueError(f'times {times.shape}, alarm {alarm.shape} and group {group.shape} '
                         'must have one shape')
    order = np.argsort(times, kind='stable')
    times, alarm, group = times[order], alarm[order], group[order]
    channel_of = np.full(times.shape, '', dtype=object)
    in_fault = np.zeros(times.shape, dtype=bool)
    report = []
    for fault in faults:
        inside = (times >= fault.onset) & (times < fault.end)
        in_fault |= inside
        channel_of[inside] = fault.channel
        entry = {'type': fault.kind, 'channel': fault.channel,
                 'onset_s': _round(fault.onset - origin_s),
                 'end_s': _round(fault.end - origin_s), 'detected': False,
                 'detection_delay_s': None, 'attributed_channel': None,
                 'attribution_correct': None}
        report.append(entry)
        if not inside.any():
            continue              # the detector scored nothing while it was active
        counts = event_counts(inside, alarm, times, np.where(inside, fault.channel, ''),
                              group, merge_gap_s, tolerance_s)
        if not counts.detected:
            continue
        first = int(np.argmax(inside))           # first scored window in the fault
        entry['detected'] = True
        # metrics measure from the first scored window; the report from the true onset.
        entry['detection_delay_s'] = _round(times[first] + counts.delays_s[0] - fault.onset)
        last = first + int(inside[first:].sum()) - 1
        span = (times >= times[first]) & (times <= times[last] + tolerance_s)
        named = [g for g in group[span & alarm] if g]
        if named:
            values, n = np.unique(np.asarray(named, dtype=str), return_counts=True)
            entry['attributed_channel'] = str(values[np.argmax(n)])
            entry['attribution_correct'] = entry['attributed_channel'] == fault.channel
    overall = event_counts(in_fault, alarm, times, merge_gap_s=merge_gap_s,
                           tolerance_s=tolerance_s) if times.size else None
    return {
        'faults': report,
        'false_alarms': overall.false_alarms if overall else 0,
        'false_alarms_per_hour': _round(overall.false_alarms_per_hour if overall else None),
        'detector_running': bool(times.size),
    }
