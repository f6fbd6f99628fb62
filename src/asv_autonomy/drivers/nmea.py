"""NMEA 0183 parser: GGA/RMC/GLL fixes, DBT/DPT depth and MTW water temperature.

No rclpy here (DESIGN.md §4): the parser turns bytes or lines into `NmeaRecord`s carrying
`GnssFix` / `ScalarReading` measurements stamped with the receive time the caller passes in;
``ros/nmea_node.py`` and ``asv bag from-nmea`` publish or record them.

Robustness (every case counted in `NmeaParser.counts`, none raises out of `feed`):

* stream framing: partial lines are buffered across `feed` calls, CR, LF and CRLF all end a
  line, bytes before the last ``$``/``!`` of a line are dropped ('garbage'), lines longer
  than ``max_line`` are dropped ('too_long');
* per sentence: a wrong checksum ('bad_checksum'), broken fields ('malformed'), a valid
  sentence we do not use ('unsupported', not an error), a time of day earlier than the
  previous sentence's that is not a midnight wrap ('time_backwards');
* no-fix periods (GGA quality 0, RMC/GLL status V) become ``FIX_NONE`` fixes with NaN
  position, counted 'no_fix', so the consumers see the outage instead of silence.

Talker ids are ignored (GP, GN, GL, II, IN, SD, ... are all accepted).
"""
from __future__ import annotations

import calendar
import functools
import math
import operator
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from asv_autonomy.measurements import (FIX, FIX_GBAS, FIX_NONE, FIX_SBAS, GnssFix,
                                       InvalidInput, ScalarReading)

# Rejection reasons (keys of `NmeaParser.counts`).
BAD_CHECKSUM = 'bad_checksum'
MALFORMED = 'malformed'
UNSUPPORTED = 'unsupported'
TIME_BACKWARDS = 'time_backwards'
TOO_LONG = 'too_long'
GARBAGE = 'garbage'
# Rejected lines: everything the parser refuses except 'unsupported' (valid, just unused).
REJECT_REASONS = (BAD_CHECKSUM, MALFORMED, TIME_BACKWARDS, TOO_LONG)
# Other (non-error) counters.
NO_FIX = 'no_fix'
NO_DEPTH = 'no_depth'
COMMENT = 'comment'
DUPLICATE_FIX = 'duplicate_fix'

FIX_SENTENCES = ('GGA', 'RMC', 'GLL')
_DAY = 86400.0
# A time of day that drops by at least this much is a midnight wrap, not time going back [s].
_WRAP = _DAY / 2.0
_FEET = 0.3048     # [m]
_FATHOM = 1.8288   # [m]
_DEPTH_REFERENCES = ('transducer', 'offset')


@dataclass(frozen=True)
class NmeaConfig:
    """Args:
        max_line: [characters] longest line kept (NMEA allows 82; some receivers send
            longer proprietary lines); longer ones are dropped and counted 'too_long'.
        require_checksum: reject sentences without a ``*hh`` checksum ('bad_checksum');
            when False they are accepted (old sounders omit it).
        fix_sentences: fix sentence types used, most preferred first; one fix per epoch
            is published, from the most preferred type the stream provides (GGA has HDOP).
        uere: [m] user equivalent range error of an autonomous fix: horizontal sigma =
            HDOP * uere (GGA quality 1, 3).
        uere_dgps: [m] the same for differential/SBAS fixes (GGA quality 2).
        uere_rtk_float: [m] the same for RTK float fixes (GGA quality 5).
        uere_rtk_fixed: [m] the same for RTK fixed fixes (GGA quality 4).
        vertical_factor: vertical sigma = vertical_factor * horizontal sigma (VDOP is
            typically 1.5-2 x HDOP).
        depth_reference: 'transducer': depth below the transducer (DPT offset ignored,
            the topic contract); 'offset': DPT depth + offset (below the surface for a
            positive offset, below the keel for a negative one). DBT is always below the
            transducer.
    """

    max_line: int = 256
    require_checksum: bool = False
    fix_sentences: tuple[str, ...] = FIX_SENTENCES
    uere: float = 3.0
    uere_dgps: float = 1.0
    uere_rtk_float: float = 0.5
    uere_rtk_fixed: float = 0.05
    vertical_factor: float = 2.0
    depth_reference: str = 'transducer'

    def __post_init__(self):
        if self.max_line < 11:  # '$GPXXX*hh' plus a field
            raise ValueError(f'max_line must be >= 11 characters, got {self.max_line}')
        if not self.fix_sentences:
            raise ValueError('fix_sentences must name at least one of GGA, RMC, GLL')
        unknown = [s for s in self.fix_sentences if s not in FIX_SENTENCES]
        if unknown or len(set(self.fix_sentences)) != len(self.fix_sentences):
            raise ValueError(f'fix_sentences must be distinct items of {FIX_SENTENCES}, '
                             f'got {self.fix_sentences}')
        for name in ('uere', 'uere_dgps', 'uere_rtk_float', 'uere_rtk_fixed',
                     'vertical_factor'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        if self.depth_reference not in _DEPTH_REFERENCES:
            raise ValueError(f'depth_reference must be one of {_DEPTH_REFERENCES}, '
                             f'got {self.depth_reference!r}')


class NmeaRecord(NamedTuple):
    """One measurement decoded from a sentence.

    Args:
        kind: 'fix' (GnssFix), 'depth' (ScalarReading [m]) or 'temperature'
            (ScalarReading [degC]).
        measurement: stamped with the ``receive_time`` given to the parser.
        utc: [s] POSIX time of the sentence's time of day on the date of the sentence
            (RMC, ZDA) or of the last dated sentence (one day later after a midnight wrap);
            None when the sentence has no time or no date is known yet.
        time_of_day: [s] since UTC midnight from the sentence, None when it has none.
        sentence: sentence type without talker ('GGA', 'RMC', ...).
    """

    kind: str
    measurement: GnssFix | ScalarReading
    utc: float | None
    time_of_day: float | None
    sentence: str


class _Epoch:
    """Fix sentences of one receiver epoch (same time of day), for de-duplication."""

    def __init__(self, time_of_day: float | None, previous_types: frozenset):
        self.time_of_day = time_of_day
        self.types: set[str] = set()
        self.previous_types = previous_types  # what the stream sent in the epoch before
        self.published = False
        self.held: NmeaRecord | None = None


class NmeaParser:
    """Stream or line parser; keeps counts and the date/time state between sentences.

    Not thread-safe: use it from one thread (the node guards it with a lock).

    Args:
        config: parser settings.
    """

    def __init__(self, config: NmeaConfig = NmeaConfig()):
        self.config = config
        self.counts: Counter[str] = Counter()
        self.last_error = ''  # why the newest rejected line was rejected, for logs
        self._buffer = bytearray()
        self._discarding = False  # inside an over-long line: drop bytes until its end
        self._rank = {s: i for i, s in enumerate(config.fix_sentences)}
        self._last_tod: float | None = None
        self._day: float | None = None  # [s] POSIX time of the current UTC midnight
        self._epoch = _Epoch(None, frozenset())
        self._handlers = {
            'GGA': self._gga, 'RMC': self._rmc, 'GLL': self._gll, 'ZDA': self._zda,
            'DBT': self._dbt, 'DPT': self._dpt, 'MTW': self._mtw,
        }

    # --- public API ----------------------------------------------------------------------

    @property
    def last_time_of_day(self) -> float | None:
        """[s] since UTC midnight of the newest accepted timed sentence, None before one."""
        return self._last_tod

    @property
    def last_utc(self) -> float | None:
        """[s] POSIX time of the newest accepted timed sentence, None without a date."""
        return self._utc(self._last_tod)

    def feed(self, data: bytes, receive_time: float) -> list[NmeaRecord]:
        """Records of the complete lines in ``data`` (and what earlier calls left over).

        Never raises on bad input: rejected lines are counted per reason in ``counts``.

        Args:
            data: bytes as read from the port (any split, any line ending).
            receive_time: [s] stamp given to the records of the lines completed now.
        """
        records: list[NmeaRecord] = []
        max_line = self.config.max_line
        buffer = self._buffer
        # CR and LF both end a line (CRLF gives an empty line, skipped): split in C.
        lines = data.replace(b'\r', b'\n').split(b'\n')
        rest = lines.pop()  # after the last line end: the start of a line to come
        for chunk in lines:
            if self._discarding:
                self._discarding = False  # the over-long line ends here
                continue
            if buffer:
                buffer += chunk
                chunk = bytes(buffer)
                buffer.clear()
            if len(chunk) > max_line:
                self.counts[TOO_LONG] += 1
                self.last_error = f'{TOO_LONG}: line of {len(chunk)} > {max_line} characters'
            elif chunk:
                records.extend(self._parse_counted(chunk.decode('latin-1'), receive_time))
        if rest and not self._discarding:
            if len(buffer) + len(rest) > max_line:
                # Never buffer without bound (a port spewing binary): drop to the next EOL.
                buffer.clear()
                self.counts[TOO_LONG] += 1
                self._discarding = True
            else:
                buffer += rest
        return records

    def parse_line(self, line: str, receive_time: float) -> list[NmeaRecord]:
        """Records of one sentence (no line ending needed; surrounding whitespace ignored).

        Lines starting with '#' (log comments) are counted 'comment' and give no record.
        The list may also hold a fix held back from the previous epoch (see `flush`).

        Raises:
            InvalidInput: 'bad_checksum', 'malformed', 'unsupported' (a valid sentence this
                parser does not use) or 'time_backwards'; counted in ``counts`` first.
        """
        line = line.strip()
        if not line:
            return []
        if line.startswith('#'):
            self.counts[COMMENT] += 1
            return []
        try:
            return self._parse(line, receive_time)
        except InvalidInput as err:
            self.counts[err.reason] += 1
            if err.reason != UNSUPPORTED:
                self.last_error = str(err)
            raise

    def flush(self) -> list[NmeaRecord]:
        """Release a fix held back waiting for a more preferred sentence of its epoch.

        A fix from a less preferred sentence (RMC when GGA came in the previous epoch) is
        held until its epoch ends; the node calls this when the port goes quiet between
        bursts, a log reader at the end of the file.
        """
        held, self._epoch.held = self._epoch.held, None
        if held is None:
            return []
        self._epoch.published = True
        return [held]

    def finish(self, receive_time: float) -> list[NmeaRecord]:
        """End of the stream (end of a log file): parse a last line that has no line end,
        then `flush`. Not for live ports, where the rest of that line is still to come."""
        line, self._discarding = bytes(self._buffer), False
        self._buffer.clear()
        records = self._parse_counted(line.decode('latin-1'), receive_time) if line else []
        return records + self.flush()

    # --- framing and checks ----------------------------------------------------------------

    def _parse_counted(self, line: str, receive_time: float) -> list[NmeaRecord]:
        try:
            return self.parse_line(line, receive_time)
        except InvalidInput:
            return []  # already counted

    def _parse(self, line: str, receive_time: float) -> list[NmeaRecord]:
        # '$' and '!' cannot occur inside a sentence: anything before the last one is noise
        # (line noise, a sentence cut by a lost line end, or an NMEA 4 tag block '\...\').
        start = max(line.rfind('$'), line.rfind('!'))
        if start < 0:
            raise InvalidInput(MALFORMED, f'no $ or ! in {line[:40]!r}')
        if start > 0:
            if not line.startswith('\\'):
                self.counts[GARBAGE] += 1
            line = line[start:]
        if not (line.isascii() and line.isprintable()):
            raise InvalidInput(MALFORMED, f'non-printable character in {line[:40]!r}')
        star = line.rfind('*')
        if star >= 0:
            given = line[star + 1:]
            body = line[1:star]
            try:
                expected = int(given, 16)
                if len(given) != 2:
                    raise ValueError
            except ValueError:
                raise InvalidInput(MALFORMED, f'checksum field {given!r}') from None
            if _checksum(body) != expected:
                raise InvalidInput(BAD_CHECKSUM,
                                   f'{line[:40]!r}: *{given} != {_checksum(body):02X}')
        elif self.config.require_checksum:
            raise InvalidInput(BAD_CHECKSUM, f'no checksum in {line[:40]!r}')
        else:
            body = line[1:]
        fields = body.split(',')
        address = fields[0]
        if len(address) < 2 or not address.isalnum() or not address.isupper():
            raise InvalidInput(MALFORMED, f'address {address!r}')
        kind = address[2:]
        # '!' starts encapsulated (AIS) sentences, 'P' proprietary ones: none is ours.
        standard = line[0] == '$' and len(address) == 5 and address[0] != 'P'
        handler = self._handlers.get(kind) if standard else None
        if handler is None:
            raise InvalidInput(UNSUPPORTED, address)
        try:
            records = handler(fields, receive_time)
        except InvalidInput:
            raise  # (a ValueError too) time_backwards, already the right reason
        except (ValueError, IndexError) as err:
            raise InvalidInput(MALFORMED, f'{kind}: {err}') from None
        self.counts[kind] += 1
        return records

    def _check_time(self, tod: float | None) -> None:
        """Reject a time of day before the previous one (not a midnight wrap); re-anchor on
        it, so that one clock jump costs one sentence, not every sentence until the clock
        catches up (humminbird-M37.log: 194124 -> 194111, positions keep going)."""
        if tod is None:
            return
        last, self._last_tod = self._last_tod, tod
        if last is None or tod >= last:
            return
        if last - tod >= _WRAP:
            if self._day is not None:
                self._day += _DAY  # midnight wrap: a time-only sentence is on the next day
            return
        raise InvalidInput(TIME_BACKWARDS, f'time of day {tod:.3f} s < {last:.3f} s')

    def _utc(self, tod: float | None) -> float | None:
        if tod is None or self._day is None:
            return None
        return self._day + tod

    # --- sentences -----------------------------------------------------------------------

    def _gga(self, f: list[str], t: float) -> list[NmeaRecord]:
        # GGA,time,lat,N,lon,E,quality,sats,hdop,alt,M,geoid sep,M,age,station
        _need(f, 10)
        tod = _time_of_day(f[1])
        quality = int(f[6]) if f[6] else 0
        status = _GGA_STATUS.get(quality, FIX_NONE)
        if status == FIX_NONE:
            self._check_time(tod)
            return self._fix_record('GGA', _no_fix(t), tod)
        lat, lon = _position(f[2], f[3], f[4], f[5])
        altitude = float(f[9]) if f[9] else math.nan
        if f[9] and len(f) > 11 and f[11]:
            altitude += float(f[11])  # MSL + geoid separation = ellipsoidal height
        uere = {2: self.config.uere_dgps, 4: self.config.uere_rtk_fixed,
                5: self.config.uere_rtk_float}.get(quality, self.config.uere)
        cov = np.full((3, 3), np.nan)
        if f[8]:
            hdop = float(f[8])
            if not (math.isfinite(hdop) and hdop > 0.0):
                raise ValueError(f'HDOP {f[8]!r}')
            sigma = hdop * uere
            cov = np.diag([sigma ** 2, sigma ** 2, (self.config.vertical_factor * sigma) ** 2])
        self._check_time(tod)
        fix = GnssFix(stamp=t, latitude=lat, longitude=lon, altitude=altitude,
                      status=status, position_covariance=cov)
        return self._fix_record('GGA', fix, tod)

    def _rmc(self, f: list[str], t: float) -> list[NmeaRecord]:
        # RMC,time,status,lat,N,lon,E,sog,cog,date,magvar,E[,mode[,nav status]]
        _need(f, 10)
        tod = _time_of_day(f[1])
        day = _rmc_date(f[9]) if f[9] else None
        fix = _status_mode_fix(t, f[2], f[12][:1] if len(f) > 12 else '', *f[3:7])
        self._check_time(tod)
        if day is not None:
            self._day = day
        return self._fix_record('RMC', fix, tod)

    def _gll(self, f: list[str], t: float) -> list[NmeaRecord]:
        # GLL,lat,N,lon,E,time,status[,mode]
        _need(f, 7)
        tod = _time_of_day(f[5])
        fix = _status_mode_fix(t, f[6], f[7][:1] if len(f) > 7 else '', *f[1:5])
        self._check_time(tod)
        return self._fix_record('GLL', fix, tod)

    def _zda(self, f: list[str], t: float) -> list[NmeaRecord]:
        # ZDA,time,day,month,year,zone hours,zone minutes (date fields may be empty)
        _need(f, 5)
        tod = _time_of_day(f[1])
        day = None
        if f[2] and f[3] and f[4]:
            day = _midnight(int(f[4]), int(f[3]), int(f[2]))
        self._check_time(tod)
        if day is not None:
            self._day = day
        return []

    def _dbt(self, f: list[str], t: float) -> list[NmeaRecord]:
        # DBT,feet,f,metres,M,fathoms,F: prefer metres, else convert.
        _need(f, 7)
        for value, unit, scale in ((f[3], f[4], 1.0), (f[1], f[2], _FEET),
                                   (f[5], f[6], _FATHOM)):
            if value:
                if unit not in ('M', 'f', 'F'):
                    raise ValueError(f'unit {unit!r}')
                return self._depth('DBT', float(value) * scale, t)
        self.counts[NO_DEPTH] += 1  # no bottom: the sounder sends empty fields
        return []

    def _dpt(self, f: list[str], t: float) -> list[NmeaRecord]:
        # DPT,depth below transducer [m],offset [m][,max range scale]
        _need(f, 2)
        if not f[1]:
            self.counts[NO_DEPTH] += 1
            return []
        depth = float(f[1])
        if self.config.depth_reference == 'offset' and len(f) > 2 and f[2]:
            depth += float(f[2])
        return self._depth('DPT', depth, t)

    def _mtw(self, f: list[str], t: float) -> list[NmeaRecord]:
        # MTW,temperature,C
        _need(f, 3)
        if f[2] != 'C':
            raise ValueError(f'unit {f[2]!r}')
        value = float(f[1])
        if not (math.isfinite(value) and -5.0 <= value <= 60.0):
            raise ValueError(f'water temperature {f[1]!r} degC')
        return [NmeaRecord('temperature', ScalarReading(stamp=t, value=value), None, None,
                           'MTW')]

    def _depth(self, sentence: str, depth: float, t: float) -> list[NmeaRecord]:
        if not (math.isfinite(depth) and depth >= 0.0):
            raise ValueError(f'depth {depth} m')
        return [NmeaRecord('depth', ScalarReading(stamp=t, value=depth), None, None,
                           sentence)]

    # --- one fix per epoch ---------------------------------------------------------------

    def _fix_record(self, sentence: str, fix: GnssFix, tod: float | None) -> list[NmeaRecord]:
        """Publish at most one fix per receiver epoch, from the most preferred type.

        An epoch ends when the time of day changes or a type repeats (no-fix sentences
        often carry no time). A fix is published at once unless a more preferred type,
        seen in the previous epoch, may still come in this one: then it is held until that
        type arrives (it replaces the held fix) or the epoch ends (the held fix goes out).
        """
        if fix.status == FIX_NONE:
            self.counts[NO_FIX] += 1
        record = NmeaRecord('fix', fix, self._utc(tod), tod, sentence)
        if sentence not in self._rank:
            return []  # a fix type the configuration does not use
        out: list[NmeaRecord] = []
        epoch = self._epoch
        if tod != epoch.time_of_day or sentence in epoch.types:
            out.extend(self.flush())
            epoch = self._epoch = _Epoch(tod, frozenset(epoch.types))
        epoch.types.add(sentence)
        rank = self._rank[sentence]
        if epoch.published or (epoch.held is not None
                               and self._rank[epoch.held.sentence] < rank):
            self.counts[DUPLICATE_FIX] += 1
            return out
        if epoch.held is not None:
            self.counts[DUPLICATE_FIX] += 1  # the held, less preferred one is replaced
        awaited = any(self._rank.get(s, len(self._rank)) < rank and s not in epoch.types
                      for s in epoch.previous_types)
        if awaited:
            epoch.held = record
        else:
            epoch.held = None
            epoch.published = True
            out.append(record)
        return out


# GGA quality -> NavSatStatus; 0 invalid, 6 estimated (dead reckoning), 7 manual, 8 simulator
# are not fixes.
_GGA_STATUS = {1: FIX, 2: FIX_SBAS, 3: FIX, 4: FIX_GBAS, 5: FIX_GBAS}
# RMC/GLL mode indicator (NMEA 2.3+): A autonomous, D differential, F/R RTK float/fixed;
# N invalid, E estimated, M manual, S simulator are no fix.
_MODE_STATUS = {'A': FIX, 'D': FIX_SBAS, 'F': FIX_GBAS, 'R': FIX_GBAS, 'P': FIX}
_MODE_NO_FIX = ('N', 'E', 'M', 'S')


def _status_mode_fix(t: float, status: str, mode: str, lat: str, ns: str, lon: str,
                     ew: str) -> GnssFix:
    """Fix of an RMC/GLL sentence: status A/V and the NMEA 2.3 mode indicator decide."""
    if status != 'A' or mode in _MODE_NO_FIX:
        if status not in ('A', 'V'):
            raise ValueError(f'status {status!r}')
        return _no_fix(t)
    latitude, longitude = _position(lat, ns, lon, ew)
    return GnssFix(stamp=t, latitude=latitude, longitude=longitude, altitude=math.nan,
                   status=_MODE_STATUS.get(mode, FIX))


def _checksum(body: str) -> int:
    """XOR of the characters between '$'/'!' and '*'."""
    return functools.reduce(operator.xor, body.encode('ascii'), 0)


def _need(fields: list[str], count: int) -> None:
    if len(fields) < count:
        raise ValueError(f'{len(fields)} fields, need {count}')


def _time_of_day(text: str) -> float | None:
    """[s] since midnight of 'hhmmss[.sss]', None when empty."""
    if not text:
        return None
    if len(text) < 6 or not text[:6].isdigit():
        raise ValueError(f'time {text!r}')
    hours, minutes, seconds = int(text[:2]), int(text[2:4]), float(text[4:])
    if hours > 23 or minutes > 59 or not 0.0 <= seconds < 61.0:
        raise ValueError(f'time {text!r}')
    return hours * 3600.0 + minutes * 60.0 + seconds


def _rmc_date(text: str) -> float:
    if len(text) != 6 or not text.isdigit():
        raise ValueError(f'date {text!r}')
    year = int(text[4:])
    # NMEA has two-digit years; receivers this code meets are from 1980 on.
    return _midnight(year + (2000 if year < 80 else 1900), int(text[2:4]), int(text[:2]))


def _midnight(year: int, month: int, day: int) -> float:
    if not (1980 <= year <= 2200 and 1 <= month <= 12 and 1 <= day <= 31):
        raise ValueError(f'date {year}-{month}-{day}')
    return float(calendar.timegm((year, month, day, 0, 0, 0)))


def _position(lat: str, ns: str, lon: str, ew: str) -> tuple[float, float]:
    """[deg] latitude, longitude of NMEA 'ddmm.mmmm', 'N', 'dddmm.mmmm', 'E'."""
    if ns not in ('N', 'S') or ew not in ('E', 'W'):
        raise ValueError(f'hemisphere {ns!r}/{ew!r}')
    latitude = _degrees(lat, 90.0)
    longitude = _degrees(lon, 180.0)
    return (-latitude if ns == 'S' else latitude), (-longitude if ew == 'W' else longitude)


def _degrees(text: str, limit: float) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f'coordinate {text!r}')
    degrees = math.floor(value / 100.0)
    minutes = value - 100.0 * degrees
    result = degrees + minutes / 60.0
    if minutes >= 60.0 or result > limit:
        raise ValueError(f'coordinate {text!r}')
    return result


def _no_fix(stamp: float) -> GnssFix:
    return GnssFix(stamp=stamp, latitude=math.nan, longitude=math.nan, altitude=math.nan,
                   status=FIX_NONE)
