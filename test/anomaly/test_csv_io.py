"""CSV input/output: separators, time formats, labels, bad rows and clear errors."""
import csv
import math

import numpy as np
import pytest

from asv_autonomy.anomaly.csv_io import CsvError, read_csv, write_scores


def _write(tmp_path, text, name='log.csv'):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_comma_seconds_with_labels_text_column_and_bad_rows(tmp_path, caplog):
    path = _write(tmp_path, '\n'.join([
        'time,speed,depth,mode,anomaly',
        '0.0,1.0,5.0,auto,0',
        '0.5,1.5,,auto,0',                # empty depth: missing
        '1.0,2.0,5.0,auto',               # 4 fields: skipped
        'x1,2.5,5.0,auto,0',              # bad time: skipped
        '1.5,3.0,5.0,manual,1',
        '2.0,3.5,5.0,manual,1',
    ]) + '\n')
    series, report = read_csv(path)
    assert report.separator == ',' and report.time_format == 'seconds'
    assert report.channels == ('speed', 'depth') and report.ignored_columns == ('mode',)
    assert 'mode' in caplog.text
    assert (report.rows, report.skipped_rows) == (4, 2)
    assert [line for line, _ in report.skipped_examples] == [4, 5]
    assert report.rate_hz == pytest.approx(2.0)
    assert series.times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    speed, depth = series.values[:, 0], series.values[:, 1]
    # 1.0 s has no row: speed held from 0.5 s (hold 1.5 steps = 0.75 s).
    assert speed == pytest.approx([1.0, 1.5, 1.5, 3.0, 3.5])
    # The newest row at 0.5 s and 1.0 s has no depth: missing, not an older value.
    assert depth == pytest.approx([5.0, np.nan, np.nan, 5.0, 5.0], nan_ok=True)
    assert list(series.anomaly) == [False, False, False, True, True]
    assert series.fault is None


def test_semicolon_iso_times_first_column_and_rate(tmp_path):
    path = _write(tmp_path, '\n'.join([
        'stamp;a;b',
        '2024-05-01T12:00:00Z;1;10',
        '2024-05-01T12:00:01+00:00;2;20',
        '2024-05-01T14:00:02+02:00;3;30',   # = 12:00:02 UTC
        '2024-05-01T12:00:03;4;40',         # naive: UTC
    ]))
    series, report = read_csv(path, rate_hz=2.0)
    assert report.separator == ';' and report.time_column == 'stamp'
    assert report.time_format == 'iso8601' and not report.has_labels
    start = 1714564800.0                    # 2024-05-01T12:00:00Z
    assert series.times[0] == pytest.approx(start) and series.dt == pytest.approx(0.5)
    assert series.values[:, 0] == pytest.approx([1, 1, 2, 2, 3, 3, 4])
    assert series.anomaly is None


def test_time_column_by_name_and_bad_cells(tmp_path):
    rows = ['x,Timestamp,y'] + [f'{k},{k * 0.1:.1f},{k}' for k in range(30)]
    rows[5] = '4,0.4,oops'                  # one bad cell in a numeric column
    series, report = read_csv(_write(tmp_path, '\n'.join(rows)))
    assert report.time_column == 'Timestamp' and report.channels == ('x', 'y')
    assert report.bad_cells == {'y': 1}
    assert math.isnan(series.values[4, 1]) and series.values[5, 1] == 5.0


@pytest.mark.parametrize('text, message', [
    ('', 'empty'),
    ('time\n0,1\n', 'bad header'),
    ('time,a,,b\n0,1,2,3\n', 'bad header'),
    ('time,a,A\n0,1,2\n', 'duplicate'),
    ('time,a\nnoon,1\nlater,2\n', 'no usable data rows'),
    ('time,a,b\n0,1\n1,2\n', 'no usable data rows'),
    ('time,mode\n0,auto\n1,manual\n', 'no numeric channel'),
])
def test_unusable_files_are_clear_errors(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(CsvError, match=message) as info:
        read_csv(path)
    assert str(path) in str(info.value)


def test_missing_file_is_a_csv_error(tmp_path):
    with pytest.raises(CsvError, match='cannot read'):
        read_csv(tmp_path / 'none.csv')


def test_write_scores_round_trip(tmp_path):
    path = tmp_path / 'scores.csv'
    write_scores(path, [0.0, 0.1], [0.25, 3.5], [False, True], ['', 'gps'])
    with path.open() as f:
        rows = list(csv.reader(f))
    assert rows == [['time', 'score', 'is_anomaly', 'channel'],
                    ['0.000000', '0.25', '0', ''], ['0.100000', '3.5', '1', 'gps']]
    with pytest.raises(ValueError, match='must match'):
        write_scores(path, [0.0], [1.0, 2.0], [True], ['a'])
