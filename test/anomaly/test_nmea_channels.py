"""NMEA logs: channels of a synthetic log with known answers, and the real logs."""
from functools import reduce

import numpy as np
import pytest

from asv_autonomy.anomaly.nmea_channels import series_from_nmea
from asv_autonomy.geodesy import Datum, LocalENU

KNOTS = 3600.0 / 1852.0
START_LAT, START_LON = 60.0, 23.5


def _sentence(body):
    checksum = reduce(lambda a, c: a ^ ord(c), body, 0)
    return f'${body}*{checksum:02X}'


def _dm(value, width):
    """NMEA (d)ddmm.mmmmmm of a positive angle [deg]."""
    minutes = round(abs(value) * 60.0, 6)
    degrees = int(minutes // 60.0)
    return f'{degrees:0{width}d}{minutes - 60.0 * degrees:09.6f}'


def _log(tmp_path, seconds=40, lost=range(20, 25)):
    """A boat going north at 2 m/s, heading 30 deg (crabbing), 1 Hz; no fix in `lost`."""
    enu = LocalENU(Datum(START_LAT, START_LON))
    lines = ['# synthetic log']
    for k in range(seconds):
        tod = f'1200{k:02d}.00'
        lat, lon, _ = enu.to_geodetic(0.0, 2.0 * k)
        if k in lost:
            lines.append(_sentence(f'GPRMC,{tod},V,,,,,,,010524,,,N'))
            continue
        lines += [
            _sentence(f'GPRMC,{tod},A,{_dm(float(lat), 2)},N,{_dm(float(lon), 3)},E,'
                      f'{2.0 * KNOTS:.3f},0.0,010524,,,A'),
            _sentence(f'GPVTG,0.0,T,,M,{2.0 * KNOTS:.3f},N,7.2,K,A'),
            _sentence('HEHDT,30.0,T'),
            _sentence(f'VWVHW,30.0,T,,M,{2.5 * KNOTS:.3f},N,9.0,K'),
            _sentence('SDDBT,32.8,f,10.0,M,5.5,F'),
            _sentence(f'WIMWV,90.0,R,{5.0 * KNOTS:.2f},N,A'),
        ]
    lines.append('$GPRMC,garbage*00')
    path = tmp_path / 'boat.log'
    path.write_text('\n'.join(lines) + '\n')
    return path


def test_synthetic_log_channels(tmp_path):
    series, report = series_from_nmea(_log(tmp_path))
    assert report.fix_rate_hz == pytest.approx(1.0) and report.span_s == pytest.approx(39.0)
    assert series.dt == pytest.approx(1.0)
    assert series.times[0] == pytest.approx(1714564800.0)      # 2024-05-01 12:00:00 UTC
    col = {name: series.values[:, j] for j, name in enumerate(series.channels)}
    assert set(col) >= {'gps_fix', 'gps_speed', 'gps_step_east', 'gps_step_north', 'sog',
                        'cog_vs_track', 'cog_vs_heading', 'heading_rate', 'water_speed',
                        'depth', 'wind_speed_relative', 'wind_angle_relative'}
    fixed = np.ones(40, bool)
    fixed[20:25] = False
    assert (col['gps_fix'] == fixed).all()
    assert (series.anomaly == ~fixed).all() and set(series.fault_channel[~fixed]) == {'gps'}
    steady = np.arange(40) < 19
    # Positions are written to 1e-6 arc minutes (1.9 mm north).
    assert col['gps_speed'][1:19] == pytest.approx(2.0, abs=4e-3)
    assert col['gps_step_north'][2:19] == pytest.approx(0.0, abs=4e-3)
    assert col['sog'][steady] == pytest.approx(2.0, abs=1e-3)
    assert col['cog_vs_heading'][steady] == pytest.approx(-0.5, abs=1e-6)
    assert col['cog_vs_track'][1:19] == pytest.approx(0.0, abs=1e-3)
    assert col['heading_rate'][1:19] == pytest.approx(0.0)
    assert col['water_speed'][steady] == pytest.approx(2.5, abs=1e-3)
    assert col['depth'][steady] == pytest.approx(10.0)
    assert col['wind_speed_relative'][steady] == pytest.approx(5.0, abs=1e-2)
    assert col['wind_angle_relative'][steady] == pytest.approx(1.0)
    # Positions are missing (not held) after the fix is lost for longer than 1.5 periods.
    assert np.isnan(col['gps_speed'][22:25]).all()
    assert report.rejected['malformed'] + report.rejected['bad_checksum'] >= 1


def test_a_log_without_fixes_is_an_error(tmp_path):
    path = tmp_path / 'depth.log'
    path.write_text(_sentence('SDDBT,32.8,f,10.0,M,5.5,F') + '\n')
    with pytest.raises(ValueError, match='no position fixes'):
        series_from_nmea(path)


def test_real_logs(shared_data):
    nmea = shared_data / 'nmea'
    plaka, report = series_from_nmea(nmea / 'plaka.log')
    # plaka.log: one sentence cycle every 2 s over ~4.1 h, a fix throughout.
    assert report.fix_rate_hz == pytest.approx(0.5)
    assert 14000.0 < report.span_s < 15500.0
    assert not plaka.anomaly.any()
    assert {'sog', 'water_speed', 'depth', 'wind_speed_relative'} <= set(plaka.channels)
    assert 'cog_vs_heading' not in plaka.channels       # its HDT/VHW heading fields are empty
    depth = plaka.values[:, plaka.channels.index('depth')]
    assert np.isfinite(depth).mean() > 0.99 and 1.0 < np.nanmedian(depth) < 50.0
    rx210, _ = series_from_nmea(nmea / 'rx210.log')
    assert rx210.anomaly.sum() == 22                     # 22 RMC,V epochs
    telit, _ = series_from_nmea(nmea / 'telit-he910.log')
    assert telit.anomaly[:37].all() and not telit.anomaly[37:].any()
