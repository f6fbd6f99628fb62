"""Detector channels from a recorded NMEA 0183 log (real boats: ``plaka.log``, gpsd logs).

Fixes, depth and water temperature are decoded by the driver's parser
(``drivers.nmea.NmeaParser``: checksums, fix status/mode, one fix per epoch); the other
sentences are simple and parsed here: VTG (course and speed over ground), HDT/HDG
(heading), VHW (speed through water), MWV (wind, relative R or true T). Each sentence is
stamped like ``drivers.nmea_log.stamped_records`` does: its own time of day, or that of
the newest timed sentence before it, on the first date the log gives (or 1970-01-01 for
logs of time of day only, such as plaka.log), crossing midnight when the time of day
wraps.

Channels (those a log provides; groups in :data:`.channels.CHANNEL_GROUPS` and
:data:`.channels.NMEA_CHANNEL_GROUPS`):
``gps_fix`` (1 fix, 0 no fix), ``gps_speed`` [m/s] (between consecutive fixes),
``gps_step_east/north`` [m] (displacement since the previous fix minus the previous
displacement scaled to this interval: a constant-velocity prediction, no odometry
needed), ``sog`` [m/s], ``cog_vs_track`` (sin of VTG course minus the course of the fixes'
displacement), ``cog_vs_heading`` (sin of VTG course minus heading), ``heading_rate``
[rad/s], ``water_speed`` [m/s], ``depth`` [m], ``water_temperature`` [degC],
``wind_speed_relative`` [m/s], ``wind_angle_relative`` (sin), ``wind_speed_true`` [m/s].

Ground truth: fix loss (``gps_fix`` 0, e.g. the gpsd logs' ``RMC,V`` periods) is the
anomaly, fault ``gps_dropout``, channel ``gps``; logs with a fix throughout (plaka.log)
are all normal.
"""
from __future__ import annotations

import calendar
import datetime
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..drivers.nmea import NmeaParser
from ..drivers.nmea_log import first_date
from ..geodesy import Datum, LocalENU
from ..measurements import FIX_NONE, InvalidInput
from .series import AlignedSeries, ChannelStreams, align

__all__ = ['NmeaReport', 'nmea_streams', 'series_from_nmea']

_DAY = 86400.0
_KNOT = 1852.0 / 3600.0   # [m/s]
_SPEED_UNITS = {'N': _KNOT, 'K': 1.0 / 3.6, 'M': 1.0}
# Below this speed over ground [m/s] the course is noise (channels comparing it: missing).
MIN_COURSE_SPEED = 0.3
HOLD_PERIODS = 1.5


@dataclass
class NmeaReport:
    """What a log gave: sentences per type, rejected lines per reason, samples per
    channel, the fix rate [Hz] and the span [s]."""

    path: str
    sentences: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    samples: dict[str, int] = field(default_factory=dict)
    fix_rate_hz: float = math.nan
    span_s: float = 0.0


class _Clock:
    """UTC stamps of sentences, as ``drivers.nmea_log.stamped_records`` computes them."""

    def __init__(self, parser: NmeaParser, date: datetime.date | None):
        self.parser = parser
        self.midnight = float(calendar.timegm((date or datetime.date(1970, 1, 1)).timetuple()))
        self.last_tod: float | None = None

    def stamp(self, utc: float | None = None, tod: float | None = None) -> float | None:
        if utc is not None:
            if tod is not None:
                self.midnight = utc - tod
            return utc
        tod = tod if tod is not None else self.parser.last_time_of_day
        if tod is None:
            return None
        if self.last_tod is not None and tod < self.last_tod - _DAY / 2.0:
            self.midnight += _DAY
        self.last_tod = tod
        return self.midnight + tod

    def now(self) -> float | None:
        return self.stamp(self.parser.last_utc, self.parser.last_time_of_day
                          if self.parser.last_utc is not None else None)


def _number(text: str) -> float:
    return float(text) if text.strip() else math.nan


def _extra(kind: str, fields: list[str]) -> list[tuple[str, float]]:
    """(raw quantity, value) pairs of the sentences the driver does not decode."""
    if kind == 'VTG' and len(fields) >= 8:       # VTG,cog,T,cog_m,M,sog,N,sog,K
        sog = _number(fields[5]) * _KNOT if fields[5] else _number(fields[7]) / 3.6
        return [('cog', math.radians(_number(fields[1]))), ('sog', sog)]
    if kind in ('HDT', 'HDG') and len(fields) >= 2:
        return [('heading', math.radians(_number(fields[1])))]
    if kind == 'VHW' and len(fields) >= 8:       # VHW,hdg,T,hdg_m,M,kn,N,kmh,K
        speed = _number(fields[5]) * _KNOT if fields[5] else _number(fields[7]) / 3.6
        out = [('water_speed', speed)]
        if fields[1]:
            out.append(('heading', math.radians(_number(fields[1]))))
        return out
    if kind == 'MWV' and len(fields) >= 6 and fields[5][:1] == 'A':
        reference = 'relative' if fields[2] == 'R' else 'true'
        speed = _number(fields[3]) * _SPEED_UNITS.get(fields[4], math.nan)
        return [(f'wind_speed_{reference}', speed),
                (f'wind_angle_{reference}', math.radians(_number(fields[1])))]
    return []


def _read(lines, date, report: NmeaReport) -> dict[str, tuple[list, list]]:
    """Raw stamped quantities of a log: name -> (times, values)."""
    parser = NmeaParser()
    clock = _Clock(parser, date)
    raw: dict[str, tuple[list, list]] = {}
    untimed_fixes: list[float] = []

    def put(name, t, value):
        if name == 'fix' and t is None and 'fix' not in raw:
            untimed_fixes.append(value)
            return
        if t is None or not math.isfinite(value):
            report.rejected[f'{name}_unusable'] += 1
            return
        times, values = raw.setdefault(name, ([], []))
        times.append(t)
        values.append(value)

    for line in lines:
        try:
            records = parser.parse_line(line, 0.0)
        except InvalidInput as error:
            if error.reason != 'unsupported':
                continue
            body = line.strip().lstrip('$').split('*')[0].split(',')
            kind = body[0][2:]
            try:
                quantities = _extra(kind, body)
            except ValueError:
                report.rejected['malformed'] += 1
                continue
            if quantities:
                report.sentences[kind] += 1
            now = clock.now()
            for name, value in quantities:
                put(name, now, value)
            continue
        for record in records:
            m = record.measurement
            t = clock.stamp(record.utc, record.time_of_day)
            if record.kind == 'fix':
                fixed = m.status != FIX_NONE
                put('fix', t, 1.0 if fixed else 0.0)
                if fixed:
                    put('latitude', t, m.latitude)
                    put('longitude', t, m.longitude)
            elif record.kind == 'depth':
                put('depth', t, m.value)
            elif record.kind == 'temperature':
                put('water_temperature', t, m.value)
    for record in parser.flush():
        if record.kind == 'fix' and record.measurement.status != FIX_NONE:
            t = clock.stamp(record.utc, record.time_of_day)
            put('fix', t, 1.0)
            put('latitude', t, record.measurement.latitude)
            put('longitude', t, record.measurement.longitude)
    if untimed_fixes and 'fix' in raw:
        # Fix status before the log's first time (telit-he910.log starts with 37 no-fix
        # epochs without a time): one fix period apart before the first timed fix.
        times, values = raw['fix']
        period = _period(np.asarray(times))
        earlier = times[0] - period * np.arange(len(untimed_fixes), 0, -1)
        raw['fix'] = (list(earlier) + times, untimed_fixes + values)
    elif untimed_fixes:
        report.rejected['fix_unusable'] += len(untimed_fixes)
    report.sentences.update({k: v for k, v in parser.counts.items()
                             if k.isupper() and len(k) == 3})
    report.rejected.update({k: v for k, v in parser.counts.items()
                            if not (k.isupper() and len(k) == 3) and k != 'unsupported'})
    return raw


def _period(times: np.ndarray) -> float:
    steps = np.diff(np.unique(times))
    return float(np.median(steps)) if steps.size else 1.0


def _newest_before(times, values, at):
    """Values of the newest sample at or before each of ``at`` (NaN before the first)."""
    index = np.searchsorted(times, at, side='right') - 1
    return np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)


def nmea_streams(raw: dict[str, tuple[list, list]]) -> ChannelStreams:
    """The channels (module doc) from raw stamped quantities."""
    arrays = {}
    for name, (t, v) in raw.items():
        t, v = np.asarray(t, np.float64), np.asarray(v, np.float64)
        order = np.argsort(t, kind='stable')
        t, v = t[order], v[order]
        # One sample per time (the last: HDT and VHW may both carry the heading).
        last = np.append(t[1:] != t[:-1], True)
        arrays[name] = (t[last], v[last])
    streams = ChannelStreams()

    def add(name, t, v, source):
        streams.add(name, t, v, hold=HOLD_PERIODS * _period(arrays[source][0]))

    if 'fix' in arrays:
        add('gps_fix', *arrays['fix'], 'fix')
        streams.fill['gps_fix'] = 0.0
    if 'latitude' in arrays:
        t, lat = arrays['latitude']
        _, lon = arrays['longitude']
        first = Datum(latitude=float(lat[0]), longitude=float(lon[0]))
        east, north, _ = LocalENU(first).to_enu(lat, lon)
        dt = np.diff(t)
        d_e, d_n = np.diff(east), np.diff(north)
        with np.errstate(invalid='ignore', divide='ignore'):
            add('gps_speed', t[1:], np.hypot(d_e, d_n) / dt, 'latitude')
            # Constant velocity: the previous displacement scaled to this interval.
            scale = dt[1:] / dt[:-1]
            add('gps_step_east', t[2:], d_e[1:] - scale * d_e[:-1], 'latitude')
            add('gps_step_north', t[2:], d_n[1:] - scale * d_n[:-1], 'latitude')
        if 'cog' in arrays:
            track = np.arctan2(d_e, d_n)                 # course: from north, clockwise
            moving = np.hypot(d_e, d_n) / dt >= MIN_COURSE_SPEED
            cog = _newest_before(*arrays['cog'], t[1:])
            add('cog_vs_track', t[1:][moving], np.sin(cog - track)[moving], 'latitude')
    if 'sog' in arrays:
        add('sog', *arrays['sog'], 'sog')
    if 'heading' in arrays:
        t, heading = arrays['heading']
        if 'cog' in arrays:
            tc, cog = arrays['cog']
            sog = (_newest_before(*arrays['sog'], tc) if 'sog' in arrays
                   else np.full(tc.shape, np.inf))
            moving = sog >= MIN_COURSE_SPEED
            hdg = _newest_before(t, heading, tc)
            keep = moving & np.isfinite(hdg)
            add('cog_vs_heading', tc[keep], np.sin(cog - hdg)[keep], 'cog')
        if t.size > 1:
            rate = np.angle(np.exp(1j * np.diff(heading))) / np.diff(t)
            add('heading_rate', t[1:], rate, 'heading')
    for name in ('water_speed', 'depth', 'water_temperature', 'wind_speed_relative',
                 'wind_speed_true'):
        if name in arrays:
            add(name, *arrays[name], name)
    if 'wind_angle_relative' in arrays:
        t, angle = arrays['wind_angle_relative']
        add('wind_angle_relative', t, np.sin(angle), 'wind_angle_relative')
    return streams


def series_from_nmea(path: str | Path, rate_hz: float | None = None,
                     date: datetime.date | None = None, max_rows: int = 10_000_000,
                     ) -> tuple[AlignedSeries, NmeaReport]:
    """The channels of an NMEA log on a regular grid, with fix loss as ground truth.

    Args:
        path: the log (one sentence per line; '#' comments allowed).
        rate_hz: [Hz] grid rate; default the log's fix rate (plaka.log: 0.5 Hz).
        date: UTC date of the first sentences (default: the first date the log gives,
            else 1970-01-01).
        max_rows: a grid longer than this is refused (a log whose clock jumps by years
            would otherwise take all memory).

    Returns:
        (series, report). ``anomaly`` is True where ``gps_fix`` is 0.

    Raises:
        ValueError: unreadable file, a log without fixes, or a grid over ``max_rows``.
    """
    path = Path(path)
    report = NmeaReport(str(path))
    try:
        lines = path.read_text(encoding='latin-1').splitlines()
    except OSError as error:
        raise ValueError(f'{path}: cannot read: {error}') from error
    raw = _read(lines, date or first_date(lines), report)
    if 'fix' not in raw:
        raise ValueError(f'{path}: no position fixes (sentences: {dict(report.sentences)})')
    streams = nmea_streams(raw)
    report.samples = {name: int(t.size) for name, (t, _) in streams.samples.items()}
    fix_times = np.unique(np.asarray(raw['fix'][0]))
    report.fix_rate_hz = 1.0 / _period(fix_times)
    start, stop = float(fix_times[0]), float(fix_times[-1])
    report.span_s = stop - start
    rate_hz = rate_hz or report.fix_rate_hz
    if report.span_s * rate_hz > max_rows:
        raise ValueError(f'{path}: {report.span_s:.0f} s at {rate_hz:g} Hz is over '
                         f'{max_rows} rows (does the log clock jump?)')
    series = align(streams, rate_hz, start=start, stop=stop)
    fix = series.values[:, series.channels.index('gps_fix')]
    lost = fix == 0.0
    return AlignedSeries(series.times, series.values, series.channels, lost,
                         np.where(lost, 'gps_dropout', ''), np.where(lost, 'gps', '')), report
