"""Stamping a recorded NMEA log (asv bag from-nmea): sentence times, dates, midnight."""
import calendar
import datetime
from collections import Counter


from asv_autonomy.drivers.nmea_log import first_date, stamped_records


def sentence(body: str) -> str:
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f'${body}*{checksum:02X}'


def gll(hhmmss: str, lat='6005.071', lon='02332.346') -> str:
    return sentence(f'GPGLL,{lat},N,{lon},E,{hhmmss},A,D')


def dbt(metres: float) -> str:
    return sentence(f'IIDBT,{metres / 0.3048:.2f},f,{metres:.2f},M,{metres / 1.8288:.2f},F')


def rmc(hhmmss: str, ddmmyy: str) -> str:
    return sentence(f'GPRMC,{hhmmss},A,6005.071,N,02332.346,E,5.8,224.4,{ddmmyy},,,A')


def utc(y, mo, d, h, mi, s) -> float:
    return float(calendar.timegm((y, mo, d, h, mi, s)))


def test_time_of_day_logs_go_on_the_given_date_and_cross_midnight():
    lines = [gll('235958'), dbt(10.0), gll('235959'), dbt(10.5), gll('000001'), dbt(11.0)]
    records = list(stamped_records(lines, date=datetime.date(2020, 6, 1)))
    stamps = [(r.kind, r.measurement.stamp) for r in records]
    assert stamps == [('fix', utc(2020, 6, 1, 23, 59, 58)), ('depth', utc(2020, 6, 1, 23, 59, 58)),
                      ('fix', utc(2020, 6, 1, 23, 59, 59)), ('depth', utc(2020, 6, 1, 23, 59, 59)),
                      ('fix', utc(2020, 6, 2, 0, 0, 1)), ('depth', utc(2020, 6, 2, 0, 0, 1))]
    assert [r.measurement.value for r in records if r.kind == 'depth'] == [10.0, 10.5, 11.0]


def test_untimed_readings_before_any_time_are_counted_not_guessed():
    counts = Counter()
    records = list(stamped_records([dbt(3.0), gll('120000'), dbt(4.0)], counts=counts))
    assert [r.kind for r in records] == ['fix', 'depth'] and counts['no_time'] == 1
    assert records[1].measurement.stamp == 12 * 3600.0       # 1970-01-01 without a date


def test_dated_sentences_give_the_date():
    lines = ['# a comment', gll('095959'), rmc('100000', '150722'), dbt(7.0)]
    assert first_date(lines) == datetime.date(2022, 7, 15)
    records = list(stamped_records(lines, date=first_date(lines)))
    assert records[-1].kind == 'depth'
    assert records[-1].measurement.stamp == utc(2022, 7, 15, 10, 0, 0)
    assert first_date([gll('095959')]) is None


def test_bad_lines_are_counted_and_skipped():
    counts = Counter()
    good = gll('120000')
    lines = [good[:-2] + '00', 'garbage', good, '$GPGLL,bad*7F']
    records = list(stamped_records(lines, counts=counts))
    assert len(records) == 1
    assert counts['bad_checksum'] >= 1 and counts['GLL'] == 1
