"""NMEA 0183 parser: every sentence we use, bad input of every kind, and the real logs of
../shared/data/nmea fed through SerialSource over a pseudo-terminal pair."""
import functools
import math
import operator
import os
import random
import re
import threading
import time
import tty

import numpy as np
import pytest

from asv_autonomy.drivers.nmea import NmeaConfig, NmeaParser
from asv_autonomy.drivers.transport import SerialSource
from asv_autonomy.measurements import FIX, FIX_GBAS, FIX_NONE, FIX_SBAS, InvalidInput

T = 123.0  # receive time [s]


def nmea(body: str, start: str = '$') -> str:
    """A sentence with its checksum (XOR of the characters between start and '*')."""
    checksum = functools.reduce(operator.xor, body.encode(), 0)
    return f'{start}{body}*{checksum:02X}'


GGA = 'GPGGA,123519.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'
RMC = 'GPRMC,123519.00,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W'


def parse(line, parser=None, t=T):
    parser = parser or NmeaParser()
    return parser.parse_line(line, t)


def one(line, parser=None):
    records = parse(line, parser)
    assert len(records) == 1, records
    return records[0]


# --- sentences ---------------------------------------------------------------------------

def test_gga_fix_position_altitude_covariance_and_time():
    record = one(nmea(GGA))
    fix = record.measurement
    assert record.kind == 'fix' and record.sentence == 'GGA'
    assert fix.stamp == T and fix.status == FIX
    assert fix.latitude == pytest.approx(48 + 7.038 / 60, abs=1e-12)
    assert fix.longitude == pytest.approx(11 + 31.0 / 60, abs=1e-12)
    assert fix.altitude == pytest.approx(545.4 + 46.9)  # MSL + geoid separation
    sigma = 0.9 * NmeaConfig().uere
    np.testing.assert_allclose(np.diag(fix.position_covariance),
                               [sigma ** 2, sigma ** 2, (2.0 * sigma) ** 2])
    assert fix.position_covariance[0, 1] == 0.0
    assert record.time_of_day == 12 * 3600 + 35 * 60 + 19
    assert record.utc is None  # no date seen yet


@pytest.mark.parametrize('quality, status, uere', [
    ('1', FIX, 3.0), ('2', FIX_SBAS, 1.0), ('3', FIX, 3.0), ('4', FIX_GBAS, 0.05),
    ('5', FIX_GBAS, 0.5)])
def test_gga_quality_sets_status_and_uere(quality, status, uere):
    fix = one(nmea(GGA.replace(',E,1,08,', f',E,{quality},08,'))).measurement
    assert fix.status == status
    assert fix.position_covariance[0, 0] == pytest.approx((0.9 * uere) ** 2)


@pytest.mark.parametrize('quality', ['0', '6', '', '8'])
def test_gga_without_fix_is_a_no_fix_with_nan_position(quality):
    parser = NmeaParser()
    fix = one(nmea(GGA.replace(',E,1,08,', f',E,{quality},08,')), parser).measurement
    assert fix.status == FIX_NONE
    assert math.isnan(fix.latitude) and math.isnan(fix.longitude)
    assert np.isnan(fix.position_covariance).all()
    assert parser.counts['no_fix'] == 1 and parser.counts['GGA'] == 1


def test_gga_without_hdop_or_geoid_separation():
    fix = one(nmea('GPGGA,123519,4807.038,S,01131.000,W,1,08,,545.4,M,,M,,')).measurement
    assert np.isnan(fix.position_covariance).all()
    assert fix.altitude == pytest.approx(545.4)
    assert fix.latitude < 0 and fix.longitude < 0


def test_rmc_fix_has_a_date_and_unknown_covariance():
    record = one(nmea(RMC))
    fix = record.measurement
    assert fix.status == FIX and np.isnan(fix.position_covariance).all()
    assert math.isnan(fix.altitude)
    assert fix.latitude == pytest.approx(48 + 7.038 / 60)
    # 1994-03-23 12:35:19 UTC
    assert record.utc == 764426119.0


@pytest.mark.parametrize('status, mode, expected', [
    ('A', '', FIX), ('A', ',A', FIX), ('A', ',D', FIX_SBAS), ('A', ',R', FIX_GBAS),
    ('A', ',N', FIX_NONE), ('A', ',E', FIX_NONE), ('V', '', FIX_NONE), ('V', ',N', FIX_NONE)])
def test_rmc_status_and_mode(status, mode, expected):
    body = RMC.replace(',A,4807', f',{status},4807') + mode
    parser = NmeaParser()
    fix = one(nmea(body), parser).measurement
    assert fix.status == expected
    assert math.isnan(fix.latitude) == (expected == FIX_NONE)
    assert parser.counts['no_fix'] == (expected == FIX_NONE)


def test_rmc_void_with_empty_fields_is_a_no_fix():
    fix = one('$GPRMC,,V,,,,,,,,,,N*53').measurement  # telit-he910.log, before its first fix
    assert fix.status == FIX_NONE


@pytest.mark.parametrize('status, mode, expected', [
    ('A', '', FIX), ('A', ',D', FIX_SBAS), ('V', '', FIX_NONE), ('A', ',N', FIX_NONE)])
def test_gll(status, mode, expected):
    record = one(nmea(f'GPGLL,6005.071,N,02332.346,E,095559,{status}{mode}'))
    assert record.measurement.status == expected
    assert record.time_of_day == 9 * 3600 + 55 * 60 + 59
    if expected != FIX_NONE:
        assert record.measurement.latitude == pytest.approx(60 + 5.071 / 60)
        assert record.measurement.longitude == pytest.approx(23 + 32.346 / 60)


@pytest.mark.parametrize('body, depth', [
    ('IIDBT,034.25,f,010.44,M,005.64,F', 10.44),   # metres preferred
    ('SDDBT,034.25,f,,M,005.64,F', 34.25 * 0.3048),  # feet fallback
    ('SDDBT,,f,,M,005.64,F', 5.64 * 1.8288),         # fathoms fallback
])
def test_dbt_depth_in_metres(body, depth):
    record = one(nmea(body))
    assert record.kind == 'depth' and record.sentence == 'DBT'
    assert record.measurement.value == pytest.approx(depth)
    assert record.measurement.stamp == T and record.utc is None


def test_dbt_without_a_bottom_gives_no_record():
    parser = NmeaParser()
    assert parse(nmea('SDDBT,,f,,M,,F'), parser) == []
    assert parser.counts['no_depth'] == 1 and parser.counts['DBT'] == 1


@pytest.mark.parametrize('reference, depth', [('transducer', 2.2), ('offset', 2.7)])
def test_dpt_offset_applies_only_when_configured(reference, depth):
    parser = NmeaParser(NmeaConfig(depth_reference=reference))
    assert one(nmea('INDPT,2.2,0.5'), parser).measurement.value == pytest.approx(depth)
    assert one(nmea('INDPT,2.2,0.5,100'), parser).measurement.value == pytest.approx(depth)


def test_mtw_water_temperature():
    record = one('$INMTW,17.9,C*1B')
    assert record.kind == 'temperature' and record.measurement.value == pytest.approx(17.9)


@pytest.mark.parametrize('talker', ['GP', 'GN', 'GL', 'GA', 'II', 'IN', 'SD'])
def test_talker_id_does_not_matter(talker):
    assert one(nmea(talker + GGA[2:])).measurement.status == FIX
    assert one(nmea(talker + 'DBT,,f,3.5,M,,F')).measurement.value == 3.5


def test_zda_date_dates_the_following_fixes():
    parser = NmeaParser()
    assert parse(nmea('GPZDA,123518.00,23,03,1994,00,00'), parser) == []
    assert one(nmea(GGA), parser).utc == 764426119.0
    assert parser.last_utc == 764426119.0
    # plaka.log's ZDA has no date: time only
    parser = NmeaParser()
    parse('$GPZDA,095559,,,,00,*4D', parser)
    assert parser.counts['ZDA'] == 1 and parser.last_utc is None
    assert parser.last_time_of_day == 9 * 3600 + 55 * 60 + 59


# --- bad input -----------------------------------------------------------------------------

def test_wrong_checksum_is_rejected_and_counted():
    parser = NmeaParser()
    line = nmea(GGA)
    bad = line[:-2] + ('00' if line[-2:] != '00' else '01')
    with pytest.raises(InvalidInput) as err:
        parse(bad, parser)
    assert err.value.reason == 'bad_checksum'
    # one flipped character in the body is caught too
    with pytest.raises(InvalidInput, match='bad_checksum'):
        parse(line.replace('4807.038', '4807.039'), parser)
    assert parser.counts['bad_checksum'] == 2 and parser.counts['GGA'] == 0


def test_missing_checksum_accepted_unless_required():
    assert one('$' + GGA).measurement.status == FIX
    with pytest.raises(InvalidInput, match='bad_checksum'):
        parse('$' + GGA, NmeaParser(NmeaConfig(require_checksum=True)))


@pytest.mark.parametrize('line', [
    nmea('GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'),  # hemisphere
    nmea('GPGGA,123519,4867.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'),  # minutes >= 60
    nmea('GPGGA,123519,9107.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'),  # lat > 90
    nmea('GPGGA,253519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'),  # hour 25
    nmea('GPGGA,123519,4807.038,N,01131.000,E,1,08,-1,545.4,M,46.9,M,,'),   # HDOP < 0
    nmea('GPGGA,123519,4807.038,N,01131.000,E,x,08,0.9,545.4,M,46.9,M,,'),  # quality
    nmea('GPGGA,123519,4807.038,N'),                                        # truncated
    nmea('GPGGA,123519,nan,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,'),
    nmea('GPRMC,123519,A,,,,,022.4,084.4,230394,003.1,W'),                  # A, no position
    nmea('GPRMC,123519,X,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W'),  # status
    nmea('GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,321394,003.1,W'),  # date
    nmea('IIDBT,034.25,f,-10.4,M,005.64,F'),                                # negative depth
    nmea('IIDBT,034.25,f,inf,M,005.64,F'),
    nmea('INMTW,17.9,F'),                                                   # unit
    nmea('INMTW,917.9,C'),                                                  # impossible
    nmea('INMTW'),
    '$GPGGA,123519*GG',                                                     # checksum text
    '$GPGGA,1*123',
    'just some text',
    '$',
    '$*00',
    nmea('gpgga,1'),                                                        # lowercase
    '$GPGGA,\x01\x02*03',
])
def test_malformed_sentences_are_rejected_as_malformed(line):
    parser = NmeaParser()
    with pytest.raises(InvalidInput) as err:
        parse(line, parser)
    assert err.value.reason == 'malformed', err.value
    assert parser.counts['malformed'] == 1


@pytest.mark.parametrize('line', [
    '$GPGSV,3,1,12,13,73,068,33,10,69,286,21,04,47,217,,02,42,290,*7D',
    '!AIVDM,1,1,,B,13njCt031t0DA=lN2:jKmad60l1p,0*12',
    '$PTFTTXT,FT-TEC Electronics GmbH,uptime: 00:09:00.0009,connection: 00:08:59.0249*53',
    nmea('GPVTG,251.34,T,,M,0.58,N,1.07,K,A'),
    nmea('PGRME,15.0,M,45.0,M,25.0,M'),
])
def test_valid_sentences_we_do_not_use_are_unsupported(line):
    parser = NmeaParser()
    with pytest.raises(InvalidInput) as err:
        parse(line, parser)
    assert err.value.reason == 'unsupported'
    assert parser.counts['unsupported'] == 1 and parser.last_error == ''


def test_comments_are_counted_and_ignored():
    parser = NmeaParser()
    assert parser.feed(b'# Name: a log\r\n#\n' + nmea(GGA).encode() + b'\n', T)[0].kind == 'fix'
    assert parser.counts['comment'] == 2


STREAM = ('\r\n'.join([nmea(GGA), nmea(RMC), '$INMTW,17.9,C*1B',
                       nmea('IIDBT,034.25,f,010.44,M,005.64,F'),
                       nmea(GGA.replace('123519.00', '123520.00'))]) + '\r\n').encode()


def _summary(records):
    return [(r.kind, r.sentence, r.measurement.value if r.kind != 'fix'
             else (r.measurement.latitude, r.time_of_day)) for r in records]


def test_stream_split_at_every_byte_gives_the_same_records():
    reference = _summary(NmeaParser().feed(STREAM, T))
    assert [kind for kind, *_ in reference] == ['fix', 'temperature', 'depth', 'fix']
    for split in range(len(STREAM) + 1):
        parser = NmeaParser()
        records = parser.feed(STREAM[:split], T) + parser.feed(STREAM[split:], T)
        assert _summary(records) == reference, split
    parser = NmeaParser()
    records = [r for i in range(len(STREAM)) for r in parser.feed(STREAM[i:i + 1], T)]
    assert _summary(records) == reference
    assert sum(v for k, v in parser.counts.items() if k in ('malformed', 'bad_checksum')) == 0


@pytest.mark.parametrize('eol', [b'\r', b'\n', b'\n\r', b'\r\r\n'])
def test_any_line_ending(eol):
    data = STREAM.replace(b'\r\n', eol)
    assert _summary(NmeaParser().feed(data, T)) == _summary(NmeaParser().feed(STREAM, T))


def test_garbage_is_dropped_and_the_stream_recovers():
    parser = NmeaParser()
    data = (b'\x00\xff\xfe garbage\r\n' + b'\xa5\x5a' + nmea(GGA).encode() + b'\r\n'
            + b'$GPGGA,12$' + nmea(RMC).encode() + b'\r\n' + b'\xff' * 50 + b'\n')
    records = parser.feed(data, T)
    assert [r.sentence for r in records] == ['GGA']  # RMC of the same epoch: duplicate
    assert parser.counts['garbage'] == 2       # noise before '$' on two lines
    assert parser.counts['malformed'] == 2     # the two lines without any sentence
    assert parser.counts['RMC'] == 1 and parser.counts['duplicate_fix'] == 1


def test_random_bytes_never_raise():
    rng = random.Random(7)
    parser = NmeaParser()
    alphabet = b'$!*,.0123456789ABCDEFGPNSEWMV\r\n\x00\xff'
    for _ in range(200):
        size = rng.randint(0, 400)
        data = bytes(rng.choice(alphabet) for _ in range(size))
        parser.feed(data, T)
    assert parser.counts['malformed'] > 0
    assert len(parser._buffer) <= parser.config.max_line
    # still parses good input afterwards
    assert [r.kind for r in parser.feed(b'\n' + STREAM, T)][-1] == 'fix'


def test_overlong_lines_are_dropped_with_bounded_memory():
    parser = NmeaParser(NmeaConfig(max_line=100))
    long_line = b'$GPTXT,' + b'A' * 300
    records = parser.feed(long_line + b'\r\n' + STREAM, T)
    assert parser.counts['too_long'] == 1
    assert len(records) == 4
    # without any line end, across feeds: the buffer never exceeds max_line
    parser = NmeaParser(NmeaConfig(max_line=100))
    for _ in range(50):
        assert parser.feed(b'X' * 64, T) == []
        assert len(parser._buffer) <= 100
    assert parser.counts['too_long'] == 1
    records = parser.feed(b'tail of the long line\r\n' + STREAM, T)
    assert len(records) == 4 and parser.counts['malformed'] == 0


# --- time ----------------------------------------------------------------------------------

def _gga_at(hhmmss: str) -> str:
    return nmea(GGA.replace('123519.00', hhmmss))


def test_time_going_backwards_rejects_one_sentence_per_jump():
    parser = NmeaParser()
    assert one(_gga_at('194124'), parser).time_of_day == 70884
    with pytest.raises(InvalidInput, match='time_backwards'):
        parse(_gga_at('194111'), parser)
    # the clock re-anchors on the new time: the following epochs are accepted
    assert one(_gga_at('194112'), parser).time_of_day == 70872
    assert parser.counts['time_backwards'] == 1 and parser.counts['GGA'] == 2
    # equal times (several sentences of one epoch) are not backwards
    parse(nmea(RMC.replace('123519.00', '194112')), parser)
    assert parser.counts['time_backwards'] == 1


def test_midnight_wrap_is_not_backwards_and_advances_the_date():
    parser = NmeaParser()
    before = one(nmea(RMC.replace('123519.00', '235959.50')), parser)
    after = one(_gga_at('000000.50'), parser)
    assert parser.counts['time_backwards'] == 0
    assert after.utc - before.utc == pytest.approx(1.0)


# --- one fix per epoch ---------------------------------------------------------------------

def _fixes(lines, config=NmeaConfig()):
    parser = NmeaParser(config)
    data = ''.join(line + '\r\n' for line in lines).encode()
    records = parser.feed(data, T) + parser.flush()
    return [(r.sentence, r.time_of_day) for r in records if r.kind == 'fix'], parser


def _epoch(seconds, *kinds):
    hhmmss = f'1200{seconds:02d}'
    out = []
    for kind in kinds:
        if kind == 'GGA':
            out.append(_gga_at(hhmmss))
        elif kind == 'RMC':
            out.append(nmea(RMC.replace('123519.00', hhmmss)))
        else:
            out.append(nmea(f'GPGLL,4807.038,N,01131.000,E,{hhmmss},A'))
    return out


def test_gga_and_rmc_of_one_epoch_give_one_fix_from_gga():
    # GGA first (gps.log) and RMC first (rx210.log): GGA wins from the second epoch on
    for order in (('GGA', 'RMC'), ('RMC', 'GGA')):
        lines = [line for s in range(5) for line in _epoch(s, *order)]
        fixes, parser = _fixes(lines)
        assert [t for _, t in fixes] == [43200 + s for s in range(5)], order
        assert all(sentence == 'GGA' for sentence, _ in fixes[1:]), fixes
        assert parser.counts['duplicate_fix'] == 5


def test_rotating_sentences_give_one_fix_per_epoch():
    # humminbird-M37.log: each second carries one of RMC, GLL, GGA
    kinds = ['RMC', 'GLL', 'RMC', 'GGA', 'RMC', 'GLL', 'RMC', 'GGA']
    lines = [line for s, kind in enumerate(kinds) for line in _epoch(s, kind)]
    fixes, _ = _fixes(lines)
    assert fixes == [(kind, 43200 + s) for s, kind in enumerate(kinds)]


def test_fix_sentences_selects_and_orders_the_sources():
    lines = [line for s in range(3) for line in _epoch(s, 'GGA', 'RMC', 'GLL')]
    fixes, _ = _fixes(lines, NmeaConfig(fix_sentences=('RMC',)))
    assert fixes == [('RMC', 43200 + s) for s in range(3)]
    fixes, _ = _fixes(lines, NmeaConfig(fix_sentences=('GLL', 'GGA')))
    assert [s for s, _ in fixes] == ['GGA', 'GLL', 'GLL']


def test_no_fix_epochs_without_time_are_one_per_epoch():
    # telit-he910.log before its first fix: GGA, GLL, RMC with empty time fields
    cycle = ['$GPGGA,,,,,,0,,,,M,,M,,*66', '$GPGLL,,,,,,V,N*64', '$GPRMC,,V,,,,,,,,,,N*53']
    fixes, parser = _fixes(cycle * 4)
    assert fixes == [('GGA', None)] * 4
    assert parser.counts['no_fix'] == 12


@pytest.mark.parametrize('kwargs', [
    dict(max_line=5), dict(fix_sentences=()), dict(fix_sentences=('GGA', 'VTG')),
    dict(fix_sentences=('GGA', 'GGA')), dict(uere=0.0), dict(uere_rtk_fixed=math.nan),
    dict(vertical_factor=-1.0), dict(depth_reference='keel')])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        NmeaConfig(**kwargs)


# --- the real logs through a serial port (pseudo-terminal pair) ---------------------------

# Verified by hand (grep/awk on the files, see the comments) and recomputed independently
# by `_independent_counts` below:
EXPECTED = {
    # 34 RMC 'A' (one per second); 75 AIS (!AIVDO/!AIVDM) + 33 GBS unsupported
    'ait250.log': dict(fix=34, no_fix=0, depth=0, temperature=0, rejected=0,
                       unsupported=108, time_backwards=0),
    # 1202 GGA epochs (the last line has no line end), each RMC duplicates its GGA;
    # 1201 GSA + 1201 VTG + 943 GSV unsupported
    'gps.log': dict(fix=1202, no_fix=0, depth=0, temperature=0, rejected=0,
                    unsupported=3345, time_backwards=0),
    # 33 one-second epochs (194101-194124, then 194111-194119), each with one of
    # RMC/GLL/GGA; RMC 194111 goes back 13 s after ZDA 194124: rejected -> 32 fixes;
    # 33 DPT, 16 MTW; 8 VTG unsupported
    'humminbird-M37.log': dict(fix=32, no_fix=0, depth=33, temperature=16, rejected=1,
                               unsupported=8, time_backwards=1),
    # 7250 GLL 'A' fixes, 7250 DBT depths; 7250 ZDA (time only) used for time;
    # 116000 sentences - 3 * 7250 = 94250 unsupported (wind, heading, log, ...)
    'plaka.log': dict(fix=7250, no_fix=0, depth=7250, temperature=0, rejected=0,
                      unsupported=94250, time_backwards=0),
    # 62 epochs 184040-184141 (RMC, GGA from 184041), 22 of them void (RMC V, GGA 0);
    # 26 GSA + 10 GSV + 1 $PTFTTXT unsupported
    'rx210.log': dict(fix=62, no_fix=22, depth=0, temperature=0, rejected=0,
                      unsupported=37, time_backwards=0),
    # 224 GGA/GLL/RMC cycles, the first 37 without fix (and without time); GGA
    # 105153.408 follows 105153.71 (back 0.3 s): rejected, GLL/RMC of that epoch remain;
    # 224 GSA + 438 GSV + 224 VTG unsupported
    'telit-he910.log': dict(fix=224, no_fix=37, depth=0, temperature=0, rejected=1,
                            unsupported=886, time_backwards=1),
}

_LINE = re.compile(r'^[$!]([A-Z0-9]{2})([A-Z0-9]+),(.*)\*([0-9A-F]{2})$')


def _independent_counts(text: str) -> dict:
    """The expected numbers straight from the text, without the parser: lines with a good
    checksum by type; a time-bearing sentence earlier than the previous one is rejected;
    fix sentences (GGA, RMC, GLL) group into epochs (new epoch when the time field changes
    or a type repeats); an epoch is 'no fix' when its sentences say invalid."""
    used = {'GGA', 'RMC', 'GLL', 'ZDA', 'DBT', 'DPT', 'MTW'}
    counts = dict(fix=0, no_fix=0, depth=0, temperature=0, rejected=0, unsupported=0,
                  time_backwards=0)
    last_time = None
    epoch_time, epoch_types, epoch_valid = object(), set(), True

    def close_epoch():
        if epoch_types:
            counts['fix'] += 1
            counts['no_fix'] += not epoch_valid

    for line in text.splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        match = _LINE.match(line.strip())
        assert match, f'a line the logs do not have: {line!r}'
        body = line.strip()[1:line.strip().rindex('*')]
        assert functools.reduce(operator.xor, body.encode(), 0) == int(match.group(4), 16)
        talker, kind, fields = match.group(1), match.group(2), body.split(',')
        if kind not in used or talker.startswith('P'):
            counts['unsupported'] += 1
            continue
        time_field = {'GGA': 1, 'RMC': 1, 'ZDA': 1, 'GLL': 5}.get(kind)
        if time_field is not None and fields[time_field]:
            seconds = float(fields[time_field][:2]) * 3600 + float(
                fields[time_field][2:4]) * 60 + float(fields[time_field][4:])
            previous, last_time = last_time, seconds
            if previous is not None and seconds < previous:
                counts['time_backwards'] += 1
                counts['rejected'] += 1
                continue
        if kind in ('DBT', 'DPT'):
            counts['depth'] += 1
        elif kind == 'MTW':
            counts['temperature'] += 1
        elif kind in ('GGA', 'RMC', 'GLL'):
            stamp = fields[time_field]
            if stamp != epoch_time or kind in epoch_types:
                close_epoch()
                epoch_time, epoch_types, epoch_valid = stamp, set(), True
            epoch_types.add(kind)
            epoch_valid &= {'GGA': fields[6] not in ('', '0'), 'RMC': fields[2] == 'A',
                            'GLL': fields[6] == 'A'}[kind]
    close_epoch()
    return counts


def _open_pty():
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no CR/LF translation
    return master, slave, os.ttyname(slave)


def _through_pty(data: bytes, parser: NmeaParser, chunk: int = 1000) -> list:
    """Write ``data`` into the master side in chunks; read it with SerialSource."""
    master, slave, path = _open_pty()
    source = SerialSource(path, 115200)
    source.open()
    errors = []

    def write():
        try:
            for start in range(0, len(data), chunk):
                os.write(master, data[start:start + chunk])
        except OSError as err:
            errors.append(err)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    records, received = [], 0
    deadline = time.monotonic() + 60.0
    try:
        while received < len(data) and time.monotonic() < deadline:
            piece = source.read(0.2)
            received += len(piece)
            records += parser.feed(piece, time.monotonic())
    finally:
        writer.join(5.0)
        source.close()
        os.close(master)
        os.close(slave)
    assert not errors and received == len(data), (errors, received, len(data))
    return records + parser.finish(time.monotonic())


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_every_real_log_through_a_serial_pty(shared_data, name):
    path = shared_data / 'nmea' / name
    if not path.is_file():
        pytest.skip(f'{path} is absent')
    data = path.read_bytes()
    expected = _independent_counts(data.decode('ascii'))
    assert expected == EXPECTED[name]
    parser = NmeaParser()
    records = _through_pty(data, parser)
    fixes = [r.measurement for r in records if r.kind == 'fix']
    measured = dict(
        fix=len(fixes), no_fix=sum(f.status == FIX_NONE for f in fixes),
        depth=sum(r.kind == 'depth' for r in records),
        temperature=sum(r.kind == 'temperature' for r in records),
        rejected=sum(parser.counts[r] for r in ('bad_checksum', 'malformed',
                                                'time_backwards', 'too_long')),
        unsupported=parser.counts['unsupported'],
        time_backwards=parser.counts['time_backwards'])
    assert measured == expected, dict(parser.counts)
    # every published fix is either a real position or an explicit no-fix
    for fix in fixes:
        assert (fix.status == FIX_NONE) == math.isnan(fix.latitude)
        if fix.status != FIX_NONE:
            assert -90 <= fix.latitude <= 90 and -180 <= fix.longitude <= 180
    depths = [r.measurement.value for r in records if r.kind == 'depth']
    assert all(0.0 <= d < 100.0 for d in depths)
