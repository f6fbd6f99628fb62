"""Generic CSV time series in and detector scores out, so the detector works on any
robot's logs.

Input format:

* separator ``,`` or ``;`` (whichever the header line has more of);
* the time column is the one named ``time``, ``timestamp`` or ``datetime``
  (case-insensitive), else the first column; times are seconds (float) or ISO 8601
  (``2024-05-01T12:00:00.5``, optionally with a zone; a naive time is UTC), fixed by the
  first data row;
* an ``anomaly`` column (0/1, true/false) is the ground truth, not a channel;
* every other column whose non-empty cells are (mostly) numbers is a channel; empty and
  ``nan`` cells are missing; the few cells that are not numbers are counted and missing;
  columns of text are ignored with a warning;
* a row with the wrong number of fields or an unparsable time is skipped and counted;
  nothing usable left (or a bad header) raises :class:`CsvError` naming file and line.

Rows need not be regular or sorted: they are aligned with :func:`.series.align` at the
median sample rate (or a given one); a value stays valid for 1.5 median steps, so gaps in
the log become missing data.
"""
from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .series import AlignedSeries, ChannelStreams, align

__all__ = ['CsvError', 'CsvReport', 'read_csv', 'write_scores']

log = logging.getLogger(__name__)

TIME_NAMES = ('time', 'timestamp', 'datetime')
LABEL_NAME = 'anomaly'
# A column is numeric when at least this share of its non-empty cells are numbers.
NUMERIC_SHARE = 0.9
HOLD_STEPS = 1.5
_TRUE, _FALSE = ('1', '1.0', 'true', 'yes'), ('0', '0.0', 'false', 'no')


class CsvError(ValueError):
    """A CSV file that cannot be used; the message names the file (and line)."""


@dataclass
class CsvReport:
    """What reading a CSV file found.

    Args:
        path: the file. separator: ``,`` or ``;``. time_column, time_format
            ('seconds' or 'iso8601'). channels: numeric columns used.
        ignored_columns: non-numeric columns left out. rows: data rows used.
        skipped_rows: rows skipped; skipped_examples: (line, reason) of the first ones.
        bad_cells: column -> cells that were not numbers (read as missing).
        rate_hz: [Hz] grid rate. has_labels: an ``anomaly`` column was found.
    """

    path: str
    separator: str = ','
    time_column: str = ''
    time_format: str = ''
    channels: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    rows: int = 0
    skipped_rows: int = 0
    skipped_examples: list[tuple[int, str]] = field(default_factory=list)
    bad_cells: dict[str, int] = field(default_factory=dict)
    rate_hz: float = math.nan
    has_labels: bool = False

    def skip(self, line: int, reason: str) -> None:
        self.skipped_rows += 1
        if len(self.skipped_examples) < 10:
            self.skipped_examples.append((line, reason))


def _number(text: str) -> float | None:
    """The cell as a float (NaN when empty), None when it is not a number."""
    text = text.strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def _iso_seconds(text: str) -> float | None:
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def _time_parser(first_cell: str):
    value = _number(first_cell)
    if value is not None and math.isfinite(value):
        return 'seconds', _number
    if _iso_seconds(first_cell) is not None:
        return 'iso8601', _iso_seconds
    return None, None


def _label(text: str) -> float:
    text = text.strip().lower()
    return 1.0 if text in _TRUE else 0.0 if text in _FALSE else math.nan


def read_csv(path: str | Path, rate_hz: float | None = None
             ) -> tuple[AlignedSeries, CsvReport]:
    """A CSV log as an aligned series (module doc for the format).

    Args:
        path: the CSV file.
        rate_hz: [Hz] grid rate (default: 1 / the median time step).

    Returns:
        (series, report); the series has ``anomaly`` when the file has labels
        (``fault``/``fault_channel`` are not known from a CSV: None).

    Raises:
        CsvError: unreadable file, bad header, no usable rows or no numeric channel.
    """
    path = Path(path)
    report = CsvReport(str(path))
    try:
        lines = path.read_text(encoding='utf-8-sig').splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CsvError(f'{path}: cannot read: {error}') from error
    numbered = [(i + 1, line) for i, line in enumerate(lines)
                if line.strip() and not line.lstrip().startswith('#')]
    if not numbered:
        raise CsvError(f'{path}: empty file')
    header_line, header_text = numbered[0]
    report.separator = ';' if header_text.count(';') > header_text.count(',') else ','
    rows = list(csv.reader([text for _, text in numbered], delimiter=report.separator))
    header = [name.strip() for name in rows[0]]
    if len(header) < 2 or any(not name for name in header):
        raise CsvError(f'{path}: line {header_line}: bad header {rows[0]!r} (need a time '
                       f'column and at least one channel, every column named)')
    lowered = [name.lower() for name in header]
    if len(set(lowered)) != len(lowered):
        raise CsvError(f'{path}: line {header_line}: duplicate column names in {header}')
    time_index = next((lowered.index(n) for n in TIME_NAMES if n in lowered), 0)
    label_index = lowered.index(LABEL_NAME) if LABEL_NAME in lowered else None
    report.time_column, report.has_labels = header[time_index], label_index is not None
    value_columns = [j for j in range(len(header)) if j not in (time_index, label_index)]

    parse_time = None
    times, cells = [], []
    for (line, _), row in zip(numbered[1:], rows[1:]):
        if len(row) != len(header):
            report.skip(line, f'{len(row)} fields, the header has {len(header)}')
            continue
        if parse_time is None:
            report.time_format, parse_time = _time_parser(row[time_index])
            if parse_time is None:
                report.skip(line, f'time {row[time_index]!r} is neither seconds nor ISO 8601')
                continue
        t = parse_time(row[time_index])
        if t is None or not math.isfinite(t):
            report.skip(line, f'bad time {row[time_index]!r}')
            continue
        times.append(t)
        cells.append(row)
    if not times:
        raise CsvError(f'{path}: no usable data rows ({report.skipped_rows} skipped; first: '
                       f'{report.skipped_examples[:3]})')
    report.rows = len(times)
    times = np.asarray(times, dtype=np.float64)

    streams = ChannelStreams()
    channels, ignored = [], []
    for j in value_columns:
        values = [_number(row[j]) for row in cells]
        filled = [row[j] for row in cells if row[j].strip()]
        bad = sum(v is None for v in values)
        if not filled or bad > (1.0 - NUMERIC_SHARE) * len(filled):
            ignored.append(header[j])
            continue
        if bad:
            report.bad_cells[header[j]] = bad
        column = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        streams.add(header[j], times, column)
        channels.append(header[j])
    report.channels, report.ignored_columns = tuple(channels), tuple(ignored)
    if ignored:
        log.warning('%s: ignoring non-numeric columns %s', path, ', '.join(ignored))
    if not channels:
        raise CsvError(f'{path}: no numeric channel columns (ignored: {ignored})')

    ordered = np.unique(times)
    step = float(np.median(np.diff(ordered))) if ordered.size > 1 else 1.0
    report.rate_hz = float(rate_hz) if rate_hz is not None else 1.0 / step
    hold = HOLD_STEPS * max(step, 1.0 / report.rate_hz)
    for name in channels:
        streams.hold[name] = hold
    if label_index is not None:
        streams.add(LABEL_NAME, times, [_label(row[label_index]) for row in cells], hold=hold)
    series = align(streams, report.rate_hz, default_hold=hold,
                   channels=channels + ([LABEL_NAME] if label_index is not None else []))
    anomaly = None
    if label_index is not None:
        anomaly = series.values[:, -1] > 0.5          # missing label: normal
        series = series.select(channels)
    return AlignedSeries(series.times, series.values, series.channels, anomaly), report


def write_scores(path: str | Path, times, score, is_anomaly, channel) -> None:
    """Write ``time,score,is_anomaly,channel`` rows (is_anomaly as 0/1, channel '' when
    not anomalous).

    Shapes:
        times, score, is_anomaly, channel ``(N,)``.
    """
    times = np.asarray(times, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    is_anomaly = np.asarray(is_anomaly, dtype=bool)
    channel = np.asarray(channel, dtype=object)
    if not times.shape == score.shape == is_anomaly.shape == channel.shape:
        raise ValueError(f'times {times.shape}, score {score.shape}, is_anomaly '
                         f'{is_anomaly.shape} and channel {channel.shape} must match')
    with Path(path).open('w', newline='') as out:
        writer = csv.writer(out)
        writer.writerow(['time', 'score', 'is_anomaly', 'channel'])
        for t, s, a, c in zip(times, score, is_anomaly, channel):
            writer.writerow([f'{t:.6f}', f'{s:.6g}', int(a), c or ''])
