"""Time-stamped measurements of a recorded NMEA 0183 log (``asv bag from-nmea``).

A log has no receive times, so each measurement is stamped with the UTC time its sentences
carry: the sentence's own time (GGA/RMC/GLL/ZDA), or for untimed sentences (DBT, DPT, MTW)
the time of the newest timed sentence before it. Logs of time of day only (plaka.log: GLL
and ZDA without a date) are placed on ``date`` (default: the first date the log gives, else
1970-01-01), crossing midnight when the time of day wraps.
"""
from __future__ import annotations

import calendar
import dataclasses
import datetime
from collections import Counter
from typing import Iterable, Iterator

from asv_autonomy.drivers.nmea import NmeaConfig, NmeaParser, NmeaRecord
from asv_autonomy.measurements import InvalidInput

_DAY = 86400.0
NO_TIME = 'no_time'     # a measurement before any timed sentence: cannot be stamped


def first_date(lines: Iterable[str], config: NmeaConfig = NmeaConfig()) -> datetime.date | None:
    """The UTC date of the first dated sentence (RMC, ZDA) of a log, None if it has none."""
    parser = NmeaParser(config)
    for line in lines:
        try:
            parser.parse_line(line, 0.0)
        except InvalidInput:
            continue
        if parser.last_utc is not None:
            midnight = parser.last_utc - parser.last_time_of_day
            return datetime.datetime.fromtimestamp(midnight, datetime.timezone.utc).date()
    return None


def stamped_records(lines: Iterable[str], config: NmeaConfig = NmeaConfig(),
                    date: datetime.date | None = None,
                    counts: Counter | None = None) -> Iterator[NmeaRecord]:
    """The records of a log with each measurement's ``stamp`` set to its UTC time [s].

    Args:
        lines: the log's lines.
        config: parser settings.
        date: UTC date of the first time of day when the log's sentences have no date.
        counts: if given, receives the parser's counts (per sentence type and rejection
            reason) and ``no_time`` for measurements that came before any time.
    """
    parser = NmeaParser(config)
    counts = parser.counts if counts is None else counts
    midnight = float(calendar.timegm((date or datetime.date(1970, 1, 1)).timetuple()))
    last_tod: float | None = None

    def stamp(record: NmeaRecord) -> NmeaRecord | None:
        nonlocal midnight, last_tod
        if record.utc is not None:
            t = record.utc
            midnight = t - record.time_of_day if record.time_of_day is not None else midnight
        else:
            tod = record.time_of_day if record.time_of_day is not None else \
                parser.last_time_of_day
            if tod is None:
                counts[NO_TIME] += 1
                return None
            if last_tod is not None and tod < last_tod - _DAY / 2.0:
                midnight += _DAY      # crossed midnight
            last_tod = tod
            t = midnight + tod
        return record._replace(measurement=dataclasses.replace(record.measurement, stamp=t))

    for line in lines:
        try:
            records = parser.parse_line(line, 0.0)
        except InvalidInput:
            continue
        for record in records:
            stamped = stamp(record)
            if stamped is not None:
                yield stamped
    for record in parser.flush():
        stamped = stamp(record)
        if stamped is not None:
            yield stamped
    if counts is not parser.counts:
        counts.update(parser.counts)
