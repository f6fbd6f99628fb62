"""A recorded NMEA log becomes a replayable mission: `asv bag from-nmea`, then `asv replay`
through localization and mapping (real ROS 2 processes; `make test` runs them in a private
network namespace). The log is synthesized from a known lake bottom so the map can be
checked; the real plaka.log slice runs when ../shared/data is present."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asv_autonomy import bagio
from asv_autonomy.cli.report import load_run

ASV = [sys.executable, '-m', 'asv_autonomy.cli.main']
LAT0, LON0 = 60.0845, 23.5391          # off Finland, where plaka.log was recorded
M_PER_DEG_LAT = 111_320.0


def bottom(x, y):
    """[m] the synthetic lake's depth at east x, north y [m] about (LAT0, LON0)."""
    return 10.0 + 0.02 * np.asarray(x) + 3.0 * np.sin(np.asarray(y) / 40.0)


def _sentence(body: str) -> str:
    checksum = 0
    for char in body:
        checksum ^= ord(char)
    return f'${body}*{checksum:02X}'


def _ddmm(value: float, width: int) -> str:
    degrees = int(value)
    return f'{degrees:0{width}d}{(value - degrees) * 60.0:07.4f}'


def synthetic_log(path: Path, seconds: int = 500, seed: int = 0) -> np.ndarray:
    """A lawnmower at 2 m/s: GGA fixes (1 Hz, 0.3 m noise, HDOP 0.6) and DBT depth of
    `bottom` (0.05 m noise) between them, plus sentences the converter ignores. Returns the
    true (t, x, y) of each fix."""
    rng = np.random.default_rng(seed)
    legs = [((0, 0), (150, 0)), ((150, 0), (150, 25)), ((150, 25), (0, 25)),
            ((0, 25), (0, 50)), ((0, 50), (150, 50)), ((150, 50), (150, 75)),
            ((150, 75), (0, 75))]
    waypoints = np.array([legs[0][0]] + [b for _, b in legs], float)
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(waypoints, axis=0), axis=1))])
    lines, truth = [], []
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(LAT0))
    for t in range(seconds):
        s = min(2.0 * t, along[-1])
        x, y = np.interp(s, along, waypoints[:, 0]), np.interp(s, along, waypoints[:, 1])
        truth.append((t, x, y))
        east, north = x + rng.normal(0, 0.3), y + rng.normal(0, 0.3)
        lat, lon = LAT0 + north / M_PER_DEG_LAT, LON0 + east / m_per_deg_lon
        hms = f'{10 + t // 3600:02d}{(t // 60) % 60:02d}{t % 60:02d}.00'
        lines.append(_sentence(f'GPGGA,{hms},{_ddmm(lat, 2)},N,{_ddmm(lon, 3)},E,1,9,0.6,'
                               '2.0,M,18.0,M,,'))
        depth = float(bottom(x, y)) + rng.normal(0, 0.05)
        lines.append(_sentence(f'SDDBT,{depth / 0.3048:.2f},f,{depth:.2f},M,'
                               f'{depth / 1.8288:.2f},F'))
        lines.append(_sentence('IIMWV,338,R,13.41,N,A'))
    path.write_text('\n'.join(lines) + '\n')
    return np.array(truth)


def from_nmea(log: Path, bag: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(ASV + ['bag', 'from-nmea', str(log), '-o', str(bag), *extra],
                          capture_output=True, text=True, timeout=120)


def test_from_nmea_writes_the_contract_topics_on_sentence_time(tmp_path):
    truth = synthetic_log(tmp_path / 'boat.log', seconds=60)
    result = from_nmea(tmp_path / 'boat.log', tmp_path / 'bag', '--date', '2024-05-17')
    assert result.returncode == 0, result.stderr
    info = bagio.bag_info(tmp_path / 'bag')
    counts = {topic: t['count'] for topic, t in info['topics'].items()}
    assert counts == {'/sensors/gps/fix': 60, '/sensors/sonar/depth': 60}
    start = 1715940000.0            # 2024-05-17 10:00:00 UTC
    assert info['start_ns'] == round(start * 1e9)
    assert info['duration_ns'] == round(truth[-1, 0] * 1e9)
    fixes = [bagio.deserialize(m.msgtype, m.data) for m in
             bagio.read_messages(tmp_path / 'bag', ['/sensors/gps/fix'])]
    assert fixes[0].header.frame_id == 'gps_link' and fixes[0].status.status == 0
    # GGA HDOP 0.6 x 3 m UERE on the horizontal diagonal.
    assert fixes[0].position_covariance[0] == pytest.approx(1.8 ** 2)
    assert abs(fixes[0].latitude - LAT0) < 1e-4


@pytest.mark.parametrize('case', ['exists', 'missing', 'empty'])
def test_from_nmea_refuses_bad_input_with_a_reason(tmp_path, case):
    log, bag = tmp_path / 'boat.log', tmp_path / 'bag'
    if case == 'exists':
        synthetic_log(log, seconds=5)
        bag.mkdir()
    elif case == 'empty':
        log.write_text('$IIMWV,338,R,13.41,N,A*2C\nnot nmea at all\n')
    result = from_nmea(log, bag)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert {'exists': 'already exists', 'missing': 'no such NMEA log',
            'empty': 'no fix, depth or temperature'}[case] in result.stderr
    if case == 'empty':
        assert not bag.exists(), 'a half-written bag was left behind'


def replay(bag: Path, out: Path, env: dict) -> Path:
    result = subprocess.run(ASV + ['replay', str(bag), '--rate', '20', '--out', str(out)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return (out / 'latest').resolve()


def odometry(run_dir: Path) -> np.ndarray:
    rows = []
    for message in bagio.read_messages(run_dir / 'bag', ['/odometry/filtered']):
        msg = bagio.deserialize(message.msgtype, message.data)
        p = msg.pose.pose.position
        rows.append((msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec, p.x, p.y))
    return np.array(rows)


@pytest.mark.ros
@pytest.mark.slow
def test_replayed_log_is_localized_and_mapped_the_same_way_twice(ros_env, tmp_path):
    truth = synthetic_log(tmp_path / 'boat.log')
    assert from_nmea(tmp_path / 'boat.log', tmp_path / 'bag').returncode == 0
    first = replay(tmp_path / 'bag', tmp_path / 'runs1', ros_env)
    summary = json.loads((first / 'summary.json').read_text())
    assert set(summary['nodes'].values()) == {0}, summary['nodes']
    dropped = dict(summary['dropped_inputs'])
    # Without IMU localization starts after imu_wait (2 s) and 5 m of travel (3 s at
    # 2 m/s): the soundings before its first pose have none (counted no_pose), nothing else
    # is lost.
    assert dropped.pop('mapping') <= 4, summary['dropped_inputs']
    assert dropped == {'anomaly': 0, 'controller': 0, 'localization': 0, 'segmentation': 0}
    assert summary['real_time_factor'] > 15.0
    assert (first / 'report.png').stat().st_size > 10_000
    # The datum is the first fix: the map frame starts at the track's start.
    params = (first / 'params.yaml').read_text()
    assert 'latitude: 60.08' in params

    # GNSS-only localization follows the track (fix noise 0.3 m, HDOP-based sigma 1.8 m).
    track = odometry(first)
    assert len(track) > 0.9 * len(truth)
    bag_start = bagio.bag_info(tmp_path / 'bag')['start_ns'] / 1e9
    elapsed = track[:, 0] - bag_start
    error = np.hypot(track[:, 1] - np.interp(elapsed, truth[:, 0], truth[:, 1] - truth[0, 1]),
                     track[:, 2] - np.interp(elapsed, truth[:, 0], truth[:, 2] - truth[0, 2]))
    assert np.sqrt(np.mean(error ** 2)) < 1.0, np.sqrt(np.mean(error ** 2))

    # The bathymetry map recovers the synthetic bottom along the track.
    run = load_run(first / 'bag')
    x, y, mean, std = run.maps['bathymetry']
    near = np.array([np.min(np.hypot(truth[:, 1] - truth[0, 1] - a, truth[:, 2] - truth[0, 2] - b))
                     < 5.0 for a, b in zip(x, y)])
    expected = bottom(x[near] + truth[0, 1], y[near] + truth[0, 2]) + 0.1   # + draft offset
    rmse = float(np.sqrt(np.mean((mean[near] - expected) ** 2)))
    assert near.sum() > 100 and rmse < 0.5, (near.sum(), rmse)

    # Deterministic nodes give the same outputs from the same bag.
    second = replay(tmp_path / 'bag', tmp_path / 'runs2', ros_env)
    again = odometry(second)
    common, i, j = np.intersect1d(track[:, 0], again[:, 0], return_indices=True)
    np.testing.assert_allclose(again[j], track[i], rtol=0, atol=1e-9)
    # The same poses in both runs, except where a recording started late or stopped early
    # (only at the ends, never a gap in the middle).
    assert len(common) >= 0.9 * max(len(track), len(again))
    for run in (track, again):
        inside = (run[:, 0] >= common[0]) & (run[:, 0] <= common[-1])
        assert np.array_equal(run[inside, 0], common), 'a pose differs or is missing'


@pytest.mark.slow
def test_plaka_log_converts(shared_data, tmp_path):
    log = shared_data / 'nmea' / 'plaka.log'
    head = tmp_path / 'plaka_head.log'
    head.write_text(''.join(log.open().readlines()[:16000]))   # the first ~33 min
    result = from_nmea(head, tmp_path / 'bag')
    assert result.returncode == 0, result.stderr
    counts = {t: i['count'] for t, i in bagio.bag_info(tmp_path / 'bag')['topics'].items()}
    # plaka.log: one GLL fix and one DBT depth every 2 s (16 sentences a cycle).
    assert counts == {'/sensors/gps/fix': 1000, '/sensors/sonar/depth': 1000}
