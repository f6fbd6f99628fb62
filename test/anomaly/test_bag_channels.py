"""Detector channels from a small bag written here with known contents."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from asv_autonomy import bagio
from asv_autonomy.anomaly import bag_channels as bc
from asv_autonomy.anomaly.channels import BOAT_CHANNELS, ChannelConfig
from asv_autonomy.geodesy import LocalENU

T = bagio.typestore().types
START = 1_750_000_000.0
SPEED = 1.0          # [m/s] east along y = 0
JUMP = (40.0, 50.0)  # [s] after START: GPS fixes 5 m north of the odometry


def _header(t):
    sec = int(math.floor(t))
    return T['std_msgs/msg/Header'](stamp=T['builtin_interfaces/msg/Time'](
        sec=sec, nanosec=int(round((t - sec) * 1e9))), frame_id='map')


def _vec(x, y, z):
    return T['geometry_msgs/msg/Vector3'](x=x, y=y, z=z)


def _messages(with_nan_depth=True):
    enu = LocalENU(ChannelConfig().datum)
    out = []

    def put(topic, msg, t):
        out.append((topic, msg.__msgtype__, int(round(t * 1e9)),
                    bagio.serialize(msg, msg.__msgtype__)))

    for k in range(1200):                      # 60 s at 20 Hz
        t = START + 0.05 * k
        x = SPEED * (t - START)
        if k % 4 == 0:                         # 5 Hz: odometry, fix, depth, thrust
            pose = T['geometry_msgs/msg/Pose'](
                position=T['geometry_msgs/msg/Point'](x=x, y=0.0, z=0.0),
                orientation=T['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0))
            twist = T['geometry_msgs/msg/Twist'](linear=_vec(SPEED, 0.0, 0.0),
                                                 angular=_vec(0.0, 0.0, 0.0))
            put('/odometry/filtered', T['nav_msgs/msg/Odometry'](
                header=_header(t), child_frame_id='base_link',
                pose=T['geometry_msgs/msg/PoseWithCovariance'](pose=pose, covariance=np.zeros(36)),
                twist=T['geometry_msgs/msg/TwistWithCovariance'](twist=twist,
                                                                 covariance=np.zeros(36))), t)
            north = 5.0 if JUMP[0] <= t - START < JUMP[1] else 0.0
            lat, lon, _ = enu.to_geodetic(x, north)
            put('/sensors/gps/fix', T['sensor_msgs/msg/NavSatFix'](
                header=_header(t), status=T['sensor_msgs/msg/NavSatStatus'](status=0, service=1),
                latitude=float(lat), longitude=float(lon), altitude=0.0,
                position_covariance=np.zeros(9), position_covariance_type=0), t)
            depth = math.nan if with_nan_depth and k == 400 else 7.5
            put('/sensors/sonar/depth', T['sensor_msgs/msg/Range'](
                header=_header(t), radiation_type=0, field_of_view=0.1, min_range=0.2,
                max_range=50.0, range=depth, variance=0.0), t)
            for side in ('left', 'right'):
                put(f'/thrusters/{side}/thrust', T['std_msgs/msg/Float64'](data=12.0), t)
        put('/sensors/imu/data', T['sensor_msgs/msg/Imu'](
            header=_header(t),
            orientation=T['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0),
            orientation_covariance=np.zeros(9), angular_velocity=_vec(0.0, 0.0, 0.0),
            angular_velocity_covariance=np.zeros(9), linear_acceleration=_vec(0.0, 0.0, 9.81),
            linear_acceleration_covariance=np.zeros(9)), t)
    # The simulator's fault diagnostics: active 40..50 s, an empty array when it ends.
    for k in range(int(JUMP[0]), int(JUMP[1]) + 1):
        t = START + k
        statuses = [] if k == JUMP[1] else [T['diagnostic_msgs/msg/DiagnosticStatus'](
            level=1, name='sim/faults/gps', message='gps_jump', hardware_id='gps',
            values=[T['diagnostic_msgs/msg/KeyValue'](key='fault', value='gps_jump')])]
        put('/sim/faults', T['diagnostic_msgs/msg/DiagnosticArray'](header=_header(t),
                                                                    status=statuses), t)
    # One corrupt message (bytes that do not decode).
    out.append(('/sensors/sonar/depth', 'sensor_msgs/msg/Range', int(START * 1e9) + 1, b'\x00\x01'))
    return out


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp('anomaly') / 'mission' / 'bag'
    path.parent.mkdir()
    bagio.write_bag(path, _messages())
    return path


def test_series_from_bag_channels_and_labels_from_diagnostics(bag):
    series, report = bc.series_from_bag(bag)
    assert series.channels == BOAT_CHANNELS
    assert series.dt == pytest.approx(0.1)
    assert series.times[0] == pytest.approx(START)
    assert series.times[-1] == pytest.approx(START + 59.8)
    assert report.dropped == {'depth': 2}       # the undecodable one and the NaN one
    assert report.label_source == '/sim/faults'
    assert report.faults == [bc.FaultInterval('gps_jump', 'gps', START + 40.0, START + 50.0)]
    column = {name: series.values[:, j] for j, name in enumerate(series.channels)}
    rel = series.times - START
    settled = rel > 5.0                          # GPS velocity window filled
    inside = (rel >= 40.2) & (rel < 50.0)
    assert column['gps_residual_north'][inside] == pytest.approx(5.0, abs=1e-3)
    assert column['gps_residual_north'][settled & (rel < 40.0)] == pytest.approx(0.0, abs=1e-3)
    assert column['gps_residual_east'][settled] == pytest.approx(0.0, abs=1e-3)
    assert column['gps_fix'][settled] == pytest.approx(1.0)
    assert column['sonar_depth'][settled] == pytest.approx(7.5)
    assert column['odom_speed'][settled] == pytest.approx(SPEED)
    assert column['imu_accel_z'][settled] == pytest.approx(9.81)
    assert column['imu_heading_vs_course'][settled & ~inside & (rel < 39.0)] == \
        pytest.approx(0.0, abs=1e-6)
    # Straight ahead at constant thrust the current along the hull is unobservable (no
    # turn, never idle): no thrust residuals rather than residuals off by the current.
    assert np.isnan(column['thrust_left_residual']).all()
    calm, _ = bc.series_from_bag(bag, config=ChannelConfig(current=None))
    assert np.isfinite(calm.values[settled, calm.channels.index('thrust_left_residual')]).all()
    expected = (series.times >= START + 40.0) & (series.times < START + 50.0)
    assert (series.anomaly == expected).all()
    assert set(series.fault[expected]) == {'gps_jump'}
    assert set(series.fault_channel[~expected]) == {''}


def test_a_recorder_on_the_wall_clock_stamps_commands_by_the_recorded_clock(tmp_path):
    """``asv sim run`` records at wall time while stamps are simulated time: the
    header-less thrust commands take the newest ``/clock`` as their time, as the node
    stamps them by its clock."""
    wall = 1_800_000_000.0 - START            # years after the simulated start
    messages = []
    for topic, msgtype, log_ns, raw in _messages(with_nan_depth=False):
        if topic == '/sensors/imu/data':      # 20 Hz: the simulator's clock with it
            clock = T['rosgraph_msgs/msg/Clock'](clock=T['builtin_interfaces/msg/Time'](
                sec=log_ns // 10**9, nanosec=log_ns % 10**9))
            messages.append(('/clock', clock.__msgtype__, log_ns + int(wall * 1e9) - 1,
                             bagio.serialize(clock, clock.__msgtype__)))
        messages.append((topic, msgtype, log_ns + int(wall * 1e9), raw))
    path = tmp_path / 'bag'
    bagio.write_bag(path, messages)
    series, _ = bc.series_from_bag(path, config=ChannelConfig(current=None))
    settled = series.times - START > 5.0
    for name in ('thrust_left', 'thrust_left_residual', 'thrust_common_residual'):
        column = series.values[:, series.channels.index(name)]
        assert np.isfinite(column[settled]).all(), name
    assert series.values[settled, series.channels.index('thrust_left')] == pytest.approx(12.0)


def test_labels_json_wins_and_dataset_folder(bag):
    labels = {'faults': [{'type': 'sonar_spurious', 'channel': 'sonar', 'onset': START + 10.0,
                          'end': START + 12.0, 'params': {}}]}
    (bag.parent / 'labels.json').write_text(json.dumps(labels))
    try:
        series, report = bc.series_from_bag(bag)
        assert report.faults == [bc.FaultInterval('sonar_spurious', 'sonar', START + 10.0,
                                                  START + 12.0)]
        assert series.anomaly.sum() == 20
        folder = bag.parent.parent
        (folder / 'seed_0007').mkdir()
        (folder / 'seed_0007' / 'bag').symlink_to(bag)
        (folder / 'seed_0007' / 'labels.json').write_text(json.dumps(labels))
        [from_folder] = bc.series_from_dataset(folder)
        assert (from_folder.anomaly == series.anomaly).all()
    finally:
        (bag.parent / 'labels.json').unlink()
    with pytest.raises(ValueError, match='no seed'):
        bc.series_from_dataset(bag.parent)


def test_not_a_bag_is_a_bag_error(tmp_path):
    with pytest.raises(bagio.BagError):
        bc.series_from_bag(tmp_path / 'missing')


@pytest.mark.slow
def test_a_simulated_mission_gives_every_channel(tmp_path):
    result = subprocess.run([sys.executable, '-m', 'asv_autonomy.cli.main', 'sim', 'faults',
                             '--seeds', '3', '--out', str(tmp_path), '--duration', '90',
                             '--faults-per-run', '0'], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    [series] = bc.series_from_dataset(tmp_path)
    assert series.dt == pytest.approx(0.1) and len(series) > 850
    assert not series.anomaly.any()
    settled = series.times > series.times[0] + 10.0
    residuals = [name.endswith('_residual') and name.startswith('thrust')
                 for name in series.channels]
    observed = series.mask[settled].mean(axis=0)
    assert dict(zip(np.array(series.channels)[~np.array(residuals)],
                    observed[~np.array(residuals)])) == pytest.approx(
        {name: 1.0 for name, r in zip(series.channels, residuals) if not r}, abs=0.05)
    # The thrust residuals wait for the current observer (it starts 20 s in, once the
    # localization's velocities have converged, and the mission must turn or idle before
    # the current along the hull is known); then they stay.
    first = np.argmax(series.mask[:, residuals].all(axis=1))
    assert 20.0 < series.times[first] - series.times[0] < 75.0
    assert series.mask[first:, residuals].mean() > 0.95
    # Same datum as the simulator: fixes agree with the odometry to GPS noise.
    for axis in ('east', 'north'):
        residual = series.values[settled, series.channels.index(f'gps_residual_{axis}')]
        assert abs(np.nanmedian(residual)) < 1.0
