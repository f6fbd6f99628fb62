"""Detector channels from synthetic samples with known answers."""
import math

import numpy as np
import pytest

from asv_autonomy.anomaly import channels as ch
from asv_autonomy.anomaly.series import align
from asv_autonomy.geodesy import LocalENU
from asv_autonomy.measurements import FIX, FIX_NONE, yaw_to_quaternion
from asv_autonomy.planning import vessel

CONFIG = ch.ChannelConfig()


def _fixes(east, north):
    return LocalENU(CONFIG.datum).to_geodetic(np.asarray(east, float), np.asarray(north, float))[:2]


def test_groups_cover_the_fault_channels_and_unknown_channels_are_their_own_group():
    assert set(ch.CHANNEL_GROUPS.values()) == {'gps', 'imu', 'sonar', 'thruster_left',
                                               'thruster_right', 'hull'}
    assert ch.group_of('imu_rate_z') == 'imu' and ch.group_of('pressure') == 'pressure'
    assert ch.group_of('depth') == 'sonar' and ch.group_of('gps_step_east') == 'gps'
    assert set(ch.HOLD_S) == set(ch.BOAT_CHANNELS)


def test_gps_residual_speed_and_fix():
    # Boat going east at 1.5 m/s, odometry on the true track, fixes 2 m east of it.
    times = np.arange(0.0, 10.0, 0.2)
    east = 1.5 * times
    lat, lon = _fixes(east + 2.0, np.zeros_like(times))
    status = np.full(times.shape, FIX)
    status[30:40] = FIX_NONE                        # 6.0 .. 7.8 s
    lat[30:40] = lon[30:40] = np.nan
    odom_t = np.arange(-1.0, 11.0, 0.05)
    odom_xy = np.stack([1.5 * odom_t, np.zeros_like(odom_t)], axis=1)
    streams, (fix_t, v_e, v_n, valid_at) = ch.gps_channels(times, lat, lon, status, odom_t,
                                                           odom_xy, CONFIG)
    _, res_e = streams.samples['gps_residual_east']
    _, res_n = streams.samples['gps_residual_north']
    assert res_e == pytest.approx(2.0, abs=1e-3) and res_n == pytest.approx(0.0, abs=1e-3)
    t_speed, speed = streams.samples['gps_speed']
    assert speed[np.isfinite(speed)] == pytest.approx(1.5, abs=1e-4)
    assert np.isnan(speed[0])                       # one fix: no velocity yet
    assert fix_t.size == times.size - 10
    # The least-squares slope is valid at the mean time of its window's fixes.
    window = fix_t[(fix_t > fix_t[25] - CONFIG.velocity_window_s) & (fix_t <= fix_t[25])]
    assert valid_at[25] == pytest.approx(window.mean(), abs=1e-9)
    assert valid_at[25] < fix_t[25] - 1.0
    series = align(streams, 10.0)
    fix = series.values[:, series.channels.index('gps_fix')]
    grid = series.times
    outage = (grid >= 6.0) & (grid < 8.0)
    assert (fix[outage] == 0.0).all() and (fix[~outage] == 1.0).all()
    res_col = series.values[:, series.channels.index('gps_residual_east')]
    # The last position (5.8 s) is held 1.5 s, then the residual is missing until 8.0 s.
    stale = (grid > 7.35) & (grid < 8.0)
    assert stale.sum() == 6 and np.isnan(res_col[stale]).all()
    assert np.isfinite(res_col[(grid >= 8.0)]).all()


def test_imu_angles_and_heading_vs_course():
    roll, pitch, yaw = 0.1, -0.05, math.radians(30.0)
    cr, sr, cp, sp, cy, sy = (math.cos(roll / 2), math.sin(roll / 2), math.cos(pitch / 2),
                              math.sin(pitch / 2), math.cos(yaw / 2), math.sin(yaw / 2))
    q = np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                  cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])
    times = np.arange(0.0, 2.0, 0.02)
    quats = np.tile(q, (times.size, 1))
    streams = ch.imu_channels(times, quats, np.tile([0.1, 0.2, 0.3], (times.size, 1)),
                              np.tile([0.0, 0.0, 9.81], (times.size, 1)))
    assert streams.samples['imu_roll'][1] == pytest.approx(roll)
    assert streams.samples['imu_pitch'][1] == pytest.approx(pitch)
    assert streams.samples['imu_rate_z'][1] == pytest.approx(0.3)
    # Course east (0), heading 30 deg: sin(30 deg) = 0.5; too slow: missing.
    fix_t = np.array([1.0, 1.2, 1.4])
    hvc = ch.heading_vs_course(times, quats, fix_t, np.array([1.0, 0.1, -1.0]),
                               np.zeros(3), fix_t - 0.5, min_speed=0.3)
    t, values = hvc.samples['imu_heading_vs_course']
    assert list(t) == [1.0, 1.4]
    assert values == pytest.approx([0.5, math.sin(yaw - math.pi)])


def _simulate(efficiency, left_cmd, right_cmd, duration=30.0, dt=0.05):
    """Odometry (times, twist) and 10 Hz commands of the vessel model in calm water."""
    params = CONFIG.vessel
    state, thrust = np.zeros(6), np.zeros(2)
    times, twists = [], []
    command = np.array([left_cmd, right_cmd])
    for k in range(int(duration / dt)):
        state, thrust = vessel.step(state, thrust, command, (0.0, 0.0), (0.0, 0.0), dt,
                                    params, thrust_efficiency=efficiency)
        times.append((k + 1) * dt)
        twists.append(state[3:6])
    cmd_t = np.arange(0.0, duration, 0.1)
    return np.array(times), np.array(twists), cmd_t, np.full(cmd_t.shape, left_cmd), \
        np.full(cmd_t.shape, right_cmd)


@pytest.mark.parametrize('efficiency, expected', [
    ((1.0, 1.0), (0.0, 0.0, 0.0)),          # healthy: delivered = commanded
    ((1.0, 0.5), (0.0, -12.0, -6.0)),       # right thruster at half: 12 N of 24 lost
    ((0.5, 0.5), (-10.0, -12.0, -11.0)),    # both lose half (what a drag looks like)
])
def test_command_residuals_measure_the_lost_thrust(efficiency, expected):
    t, twist, cmd_t, left, right = _simulate(efficiency, 20.0, 24.0)
    streams = ch.command_residuals(t, twist, cmd_t, left, cmd_t, right, CONFIG)
    for name, value in zip(('thrust_left_residual', 'thrust_right_residual',
                            'thrust_common_residual'), expected):
        times, values = streams.samples[name]
        steady = values[times > 20.0]               # after the transients
        assert steady == pytest.approx(value, abs=0.3), name


def test_command_residuals_stay_small_through_quick_turns():
    # Healthy thrusters steering hard (+-15 N differential, 3 s period): the differenced
    # odometry is the acceleration at the middle of its span, so the velocities and the
    # commands are taken there too; at the newest sample they led it by 0.25 s.
    params = CONFIG.vessel
    state, thrust, dt = np.zeros(6), np.zeros(2), 0.05
    times, twists, cmd_t, cmds = [], [], [], []
    for k in range(int(40.0 / dt)):
        t = k * dt
        if k % 2 == 0:
            turn = 15.0 * math.sin(2.0 * math.pi * t / 3.0)
            command = np.array([20.0 - turn, 20.0 + turn])
            cmd_t.append(t)
            cmds.append(command)
        state, thrust = vessel.step(state, thrust, command, (0.0, 0.0), (0.0, 0.0), dt, params)
        times.append(t + dt)
        twists.append(state[3:6])
    cmds = np.array(cmds)
    streams = ch.command_residuals(np.array(times), np.array(twists), np.array(cmd_t),
                                   cmds[:, 0], np.array(cmd_t), cmds[:, 1], CONFIG)
    times, values = streams.samples['thrust_left_residual']
    assert np.abs(values[times > 10.0]).max() < 1.5


def test_builder_drops_malformed_samples_and_forgets_old_ones():
    builder = ch.BoatChannelBuilder(ch.ChannelConfig(history_s=5.0))
    q = yaw_to_quaternion(0.0)
    for k in range(100):
        t = 0.1 * k
        assert builder.add_imu(t, q, (0.0, 0.0, 0.1), (0.0, 0.0, 9.81))
        assert builder.add_odometry(t, t, 0.0, 1.0, 0.0, 0.0)
        assert builder.add_thrust('left', t, 10.0) and builder.add_thrust('right', t, 10.0)
        assert builder.add_depth(t, 5.0)
    lat, lon = _fixes([9.9], [0.0])                  # on the odometry position
    assert builder.add_gps(9.9, lat[0], lon[0], FIX)
    assert builder.add_gps(9.95, math.nan, math.nan, FIX_NONE)     # no fix: kept
    assert not builder.add_gps(9.96, math.nan, math.nan, FIX)      # fix without position
    assert not builder.add_depth(9.9, math.inf)
    assert not builder.add_imu(math.nan, q, (0, 0, 0), (0, 0, 9.81))
    assert not builder.add_imu(9.9, (0.0, 0.0, 0.0, 0.0), (0, 0, 0), (0, 0, 9.81))
    assert builder.dropped == {'gps': 1, 'depth': 1, 'imu': 2}
    with pytest.raises(ValueError, match='side'):
        builder.add_thrust('middle', 1.0, 1.0)
    streams = builder.streams()
    assert set(streams.channels) == set(ch.BOAT_CHANNELS)
    t_imu, _ = streams.samples['imu_rate_z']
    # The newest sample is the no-fix at 9.95 s: samples before 4.95 s are forgotten.
    assert t_imu.min() == pytest.approx(5.0)
    assert streams.samples['gps_residual_east'][1] == pytest.approx([0.0], abs=1e-3)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match='velocity_window_s'):
        ch.ChannelConfig(velocity_window_s=0.0)
    with pytest.raises(ValueError, match='min_course_speed'):
        ch.ChannelConfig(min_course_speed=-1.0)


def test_yaw_vs_gyro_sees_a_heading_drift_and_not_a_turn():
    t = np.arange(0.0, 30.0, 0.02)                        # 50 Hz
    rate = 0.1                                            # [rad/s] a steady turn
    drift = np.where(t >= 15.0, 0.004 * (t - 15.0), 0.0)  # heading drifts from 15 s on
    quats = np.array([yaw_to_quaternion(rate * ti + d) for ti, d in zip(t, drift)])
    gyro = np.column_stack([np.zeros_like(t), np.zeros_like(t), np.full_like(t, rate)])
    accel = np.tile([0.0, 0.0, 9.81], (t.size, 1))
    times, values = ch.imu_channels(t, quats, gyro, accel, yaw_window_s=5.0) \
        .samples['imu_yaw_vs_gyro']
    assert times.min() >= 4.0 + 0.5                       # a window of history first
    turning = values[times < 15.0]
    drifting = values[times >= 21.0]                      # the whole window drifts
    assert np.abs(turning).max() < 1e-6                   # across the yaw wrap at pi too
    assert drifting == pytest.approx(0.004, abs=2e-5)  # +- one sample in a window


def test_odometry_derived_channels_wait_for_the_filter_to_converge():
    config = ch.ChannelConfig(warmup_s=3.0)
    t = np.arange(0.0, 10.0, 0.05)
    twist = np.tile([1.0, 0.0, 0.0], (t.size, 1))
    streams = ch.command_residuals(t, twist, t, np.full_like(t, 10.0), t,
                                   np.full_like(t, 10.0), config)
    assert streams.samples['thrust_left_residual'][0].min() >= 3.0
    # The start is the first odometry ever, not the oldest one a bounded history holds.
    later = ch.command_residuals(t, twist, t, np.full_like(t, 10.0), t,
                                 np.full_like(t, 10.0), config, odometry_start=-10.0,
                                 command_start=-10.0)
    assert later.samples['thrust_left_residual'][0].min() < 1.5


def test_thrust_residuals_start_once_the_first_command_has_settled():
    """A mission's first command is a step from rest that the differentiated odometry
    follows late: no residual until the lag, the derivative and the residual's window
    have passed it (on the ROS graph the planner starts seconds after the odometry)."""
    config = ch.ChannelConfig(warmup_s=1.0)
    settle = ch.command_settle_s(config)
    assert settle == pytest.approx(3 * 0.2 + 0.5 + 1.0)
    t = np.arange(0.0, 20.0, 0.05)
    twist = np.tile([1.0, 0.0, 0.0], (t.size, 1))
    ct = t[t >= 6.0]
    streams = ch.command_residuals(t, twist, ct, np.full_like(ct, 10.0), ct + 0.5,
                                   np.full_like(ct, 10.0), config)
    for name in ('thrust_left_residual', 'thrust_right_residual', 'thrust_common_residual'):
        assert streams.samples[name][0].min() == pytest.approx(6.5 + settle, abs=0.05)
    # The builder keeps each side's first command ever when its history moves on.
    builder = ch.BoatChannelBuilder(ch.ChannelConfig(warmup_s=1.0, history_s=5.0))
    starts = []
    for k, stamp in enumerate(t):
        builder.add_odometry(stamp, 0.0, 0.0, 1.0, 0.0, 0.0)
        if stamp >= 6.0:
            builder.add_thrust('left', stamp, 10.0)
            builder.add_thrust('right', stamp, 10.0)
        if k in (180, 380):                                   # 9 s and 19 s
            starts.append(builder.streams().samples['thrust_left_residual'][0].min())
    assert starts[0] == pytest.approx(6.0 + settle, abs=0.06)
    assert starts[1] == pytest.approx(19.0 - 5.0, abs=0.06)   # not settling again


def test_data_time_is_the_oldest_live_source_and_ignores_a_stopped_one():
    builder = ch.BoatChannelBuilder()
    assert builder.data_time() == -math.inf
    q = (0.0, 0.0, 0.0, 1.0)
    for k in range(50):                          # IMU at 50 Hz up to 0.98 s
        builder.add_imu(0.02 * k, q, (0.0, 0.0, 0.0), (0.0, 0.0, 9.81))
    for k in range(10):                          # odometry at 20 Hz, lagging: up to 0.45 s
        builder.add_odometry(0.05 * k, 0.0, 0.0, 0.0, 0.0, 0.0)
    builder.add_gps(0.8, 52.0, 13.0, 0)
    assert builder.data_time() == pytest.approx(0.45)
    # The odometry stops; once it is more than stale_s behind it no longer holds scoring.
    for k in range(50, 150):
        builder.add_imu(0.02 * k, q, (0.0, 0.0, 0.0), (0.0, 0.0, 9.81))
    for k in range(5, 15):
        builder.add_gps(0.2 * k, 52.0, 13.0, 0)
    assert builder.data_time(stale_s=1.0) == pytest.approx(2.8)
