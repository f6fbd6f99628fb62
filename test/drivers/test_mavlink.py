"""MavlinkBridge against a scripted MAVLink vehicle on UDP loopback.

The vehicle is a real pymavlink connection (`udpout` to the bridge's `udpin` port) run in a
thread: it sends ArduPilot-like HEARTBEATs (surface boat), and the test makes it send
ATTITUDE / SCALED_IMU / GPS_RAW_INT and reads back what the bridge sent (RC overrides,
commands, our heartbeat).
"""
import math
import socket
import threading
import time

import numpy as np
import pytest

from asv_autonomy.drivers.mavlink import (MavlinkBridge, MavlinkConfig, channel_pwms,
                                          euler_ned_to_enu, fix_of_gps_raw,
                                          quaternion_from_euler)
from asv_autonomy.drivers.thrust_guard import ThrustGuardConfig
from asv_autonomy.measurements import FIX, FIX_GBAS, FIX_NONE, FIX_SBAS, quaternion_to_yaw
from pymavlink import mavutil

mavlink = mavutil.mavlink


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Vehicle:
    """ArduPilot Rover (boat) stand-in: heartbeats at 10 Hz while ``beating``, records
    every message it receives."""

    def __init__(self, port: int):
        self.conn = mavutil.mavlink_connection(f'udpout:127.0.0.1:{port}',
                                               source_system=1, source_component=1)
        self.beating = True
        self.received = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, name: str, *args) -> None:
        with self._lock:
            getattr(self.conn.mav, f'{name}_send')(*args)

    def _run(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if self.beating and now >= next_beat:
                next_beat = now + 0.1
                self.send('heartbeat', mavlink.MAV_TYPE_SURFACE_BOAT,
                          mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA,
                          mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 0, mavlink.MAV_STATE_ACTIVE)
            while True:
                with self._lock:
                    msg = self.conn.recv_msg()
                if msg is None:
                    break
                self.received.append((time.monotonic(), msg))
            time.sleep(0.005)

    def of_type(self, kind: str, since: float = 0.0) -> list:
        return [m for t, m in list(self.received) if m.get_type() == kind and t >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.conn.close()


@pytest.fixture
def link():
    """(bridge, vehicle) on UDP loopback with a 0.5 s heartbeat timeout."""
    port = free_udp_port()
    bridge = MavlinkBridge(MavlinkConfig(connection=f'udpin:127.0.0.1:{port}',
                                         heartbeat_timeout=0.5, override_rate=20.0))
    bridge.open()
    vehicle = Vehicle(port)
    yield bridge, vehicle
    vehicle.close()
    bridge.close()


def spin_until(bridge, condition, timeout=3.0):
    """Spin the bridge until condition(records) is true; returns (records, rejected)."""
    records, rejected = [], {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = bridge.spin_once(time.monotonic())
        records += result.records
        for k, v in result.rejected.items():
            rejected[k] = rejected.get(k, 0) + v
        if condition(records):
            break
        time.sleep(0.005)
    return records, rejected


def wait_for(predicate, bridge, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        bridge.spin_once(time.monotonic())
        time.sleep(0.005)
    return predicate()


# ------------------------------------------------------------------ pure conversions
def rotation(q):
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


@pytest.mark.parametrize('roll, pitch, yaw', [(0.0, 0.0, 0.0), (0.1, -0.2, 0.3),
                                              (-0.4, 0.3, 2.9), (0.2, 0.1, -1.7)])
def test_ned_frd_attitude_becomes_the_same_rotation_in_enu_flu(roll, pitch, yaw):
    # Independent route: R_enu_flu = T R_ned_frd F with T swapping x/y and flipping z.
    T = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    F = np.diag([1.0, -1.0, -1.0])
    expected = T @ rotation(quaternion_from_euler(roll, pitch, yaw)) @ F
    got = rotation(quaternion_from_euler(*euler_ned_to_enu(roll, pitch, yaw)))
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_heading_east_in_ned_is_yaw_zero_in_enu():
    for yaw_ned, yaw_enu in [(math.pi / 2, 0.0), (0.0, math.pi / 2), (math.pi, -math.pi / 2)]:
        q = quaternion_from_euler(*euler_ned_to_enu(0.0, 0.0, yaw_ned))
        assert quaternion_to_yaw(q) == pytest.approx(yaw_enu, abs=1e-12)


def test_thrust_to_pwm_mapping():
    cfg = MavlinkConfig(pwm_deadband=25, reverse=(False, True))
    # u = 22.5/45 = 0.5 -> 1500 + 25 + 0.5 * 375; right reversed: u = +1 -> 1100 reversed
    assert channel_pwms(np.array([22.5, -35.0]), cfg) == {1: 1712, 3: 1900}
    assert channel_pwms(np.array([0.0, 0.0]), cfg) == {1: 1500, 3: 1500}
    skid = MavlinkConfig(mixing='skid_steer', channels=(3, 1))
    # full ahead on both: throttle 1900, steering neutral; left only: half throttle, turn
    assert channel_pwms(np.array([45.0, 45.0]), skid) == {3: 1900, 1: 1500}
    assert channel_pwms(np.array([45.0, 0.0]), skid) == {3: 1700, 1: 1700}


@pytest.mark.parametrize('kwargs, word', [
    ({'channels': (1,)}, 'channels'), ({'channels': (1, 1)}, 'channels'),
    ({'reverse': (True,)}, 'reverse'), ({'pwm_deadband': 400}, 'pwm_deadband'),
    ({'imu_message': 'IMU'}, 'imu_message'), ({'heartbeat_timeout': 0.0}, 'heartbeat_timeout'),
    ({'mixing': 'skid_steer', 'guard': ThrustGuardConfig(thrusters=3),
      'channels': (1, 3)}, 'thrusters'),
])
def test_bad_config_is_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        MavlinkConfig(**kwargs)


@pytest.mark.parametrize('fix_type, status', [(0, FIX_NONE), (1, FIX_NONE), (3, FIX),
                                              (4, FIX_SBAS), (6, FIX_GBAS)])
def test_gps_raw_int_fix_type_and_accuracy(fix_type, status):
    msg = mavlink.MAVLink_gps_raw_int_message(0, fix_type, 476205000, -1222597000, 12000,
                                              150, 300, 0, 0, 9)
    fix = fix_of_gps_raw(msg, 5.0, uere=3.0)
    assert fix.status == status and fix.stamp == 5.0
    if status == FIX_NONE:
        assert math.isnan(fix.latitude)
        return
    assert (fix.latitude, fix.longitude) == pytest.approx((47.6205, -122.2597))
    # sigma_h = HDOP 1.5 * 3 m, sigma_v = VDOP 3.0 * 3 m
    np.testing.assert_allclose(np.diag(fix.position_covariance), [4.5 ** 2, 4.5 ** 2, 81.0])
    # h_acc / v_acc [mm] win over DOPs; unknown eph -> unknown covariance
    msg = mavlink.MAVLink_gps_raw_int_message(0, fix_type, 476205000, -1222597000, 12000,
                                              150, 300, 0, 0, 9, 15000, 20, 40)
    fix = fix_of_gps_raw(msg, 5.0, uere=3.0)
    assert fix.altitude == pytest.approx(15.0)
    np.testing.assert_allclose(np.diag(fix.position_covariance), [4e-4, 4e-4, 16e-4])
    msg = mavlink.MAVLink_gps_raw_int_message(0, fix_type, 476205000, -1222597000, 12000,
                                              65535, 65535, 0, 0, 9)
    assert np.isnan(fix_of_gps_raw(msg, 5.0, uere=3.0).position_covariance).all()


# ------------------------------------------------------------------ over UDP loopback
def test_sensor_messages_become_enu_flu_records(link):
    bridge, vehicle = link
    assert wait_for(lambda: bridge.connected, bridge)
    assert bridge.target_system == 1 and bridge.mode == 'MANUAL'
    vehicle.send('scaled_imu', 1000, 10, -20, -1000, 0, 0, 0, 0, 0, 0)  # [mg] FRD, at rest
    vehicle.send('attitude', 1010, 0.1, 0.2, math.pi / 2, 0.01, 0.02, 0.03)
    vehicle.send('gps_raw_int', 0, 3, 476205000, -1222597000, 12000, 150, 300, 0, 0, 9)
    records, rejected = spin_until(bridge, lambda r: {x.kind for x in r} == {'imu', 'fix'})
    assert not rejected
    imu = next(r.measurement for r in records if r.kind == 'imu')
    fix = next(r.measurement for r in records if r.kind == 'fix')
    # heading east: ENU yaw 0; pitch nose-up in FRD is nose-up in FLU too (-pitch about y
    # left); rates (p, q, r)_FRD -> (p, -q, -r)_FLU; specific force up = +g on z.
    expected = quaternion_from_euler(0.1, -0.2, 0.0)
    assert abs(np.dot(imu.orientation, expected)) == pytest.approx(1.0, abs=1e-9)
    assert quaternion_to_yaw(imu.orientation) == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(imu.angular_velocity, [0.01, -0.02, -0.03], rtol=1e-6)
    np.testing.assert_allclose(imu.linear_acceleration,
                               np.array([10.0, 20.0, 1000.0]) * 9.80665e-3, rtol=1e-6)
    assert (fix.latitude, fix.longitude, fix.status) == (pytest.approx(47.6205),
                                                          pytest.approx(-122.2597), FIX)
    # the bridge announced itself and asked for the three streams
    assert wait_for(lambda: vehicle.of_type('HEARTBEAT'), bridge)
    beat = vehicle.of_type('HEARTBEAT')[0]
    assert beat.type == mavlink.MAV_TYPE_ONBOARD_CONTROLLER
    intervals = {int(m.param1) for m in vehicle.of_type('COMMAND_LONG')
                 if m.command == mavlink.MAV_CMD_SET_MESSAGE_INTERVAL}
    assert intervals == {mavlink.MAVLINK_MSG_ID_ATTITUDE, mavlink.MAVLINK_MSG_ID_SCALED_IMU,
                         mavlink.MAVLINK_MSG_ID_GPS_RAW_INT}


def last_override(vehicle, since=0.0):
    overrides = vehicle.of_type('RC_CHANNELS_OVERRIDE', since)
    return overrides[-1] if overrides else None


def test_thrust_reaches_the_vehicle_as_rc_override_and_times_out(link):
    bridge, vehicle = link
    assert wait_for(lambda: bridge.connected, bridge)
    sent = time.monotonic()
    # Commands keep coming for ~0.3 s: left half ahead -> 1700, right full astern -> 1100.
    deadline = sent + 0.3
    while time.monotonic() < deadline:
        now = time.monotonic()
        bridge.command(0, 22.5, now)
        bridge.command(1, -100.0, now)  # saturated at max_reverse 35 N
        bridge.spin_once(now)
        time.sleep(0.01)
    o = last_override(vehicle, sent)
    assert o is not None
    assert (o.chan1_raw, o.chan3_raw, o.chan2_raw) == (1700, 1100, 65535)
    assert (o.target_system, o.target_component) == (1, 1)
    # No command for longer than the guard timeout (0.5 s): neutral.
    stopped = time.monotonic()
    assert wait_for(lambda: (last_override(vehicle, stopped + 0.6) or o).chan1_raw == 1500,
                    bridge)
    assert last_override(vehicle, stopped + 0.6).chan3_raw == 1500


def test_estop_sends_neutral_at_once_and_refuses_arming(link):
    bridge, vehicle = link
    assert wait_for(lambda: bridge.connected, bridge)
    now = time.monotonic()
    bridge.command(0, 45.0, now)
    bridge.command(1, 45.0, now)
    assert wait_for(lambda: getattr(last_override(vehicle), 'chan1_raw', 0) == 1900, bridge)
    stop = time.monotonic()
    bridge.set_estop(True, stop)
    bridge.command(0, 45.0, stop)  # ignored while stopped
    assert wait_for(lambda: last_override(vehicle, stop) is not None, bridge)
    assert last_override(vehicle, stop).chan1_raw == 1500
    ok, text = bridge.arm(True)
    assert not ok and 'e-stop' in text


def test_lost_heartbeat_goes_neutral_stops_overriding_and_recovers(link):
    bridge, vehicle = link
    assert wait_for(lambda: bridge.connected, bridge)
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        now = time.monotonic()
        bridge.command(0, 30.0, now)
        bridge.command(1, 30.0, now)
        bridge.spin_once(now)
        time.sleep(0.01)
    assert last_override(vehicle).chan1_raw > 1500
    vehicle.beating = False
    silent = time.monotonic()
    # Thrust is still being commanded: only the watchdog can make it neutral.
    while time.monotonic() < silent + 1.2:
        now = time.monotonic()
        bridge.command(0, 30.0, now)
        bridge.command(1, 30.0, now)
        bridge.spin_once(now)
        time.sleep(0.01)
    assert not bridge.connected and bridge.status(time.monotonic())['connected'] is False
    after = vehicle.of_type('RC_CHANNELS_OVERRIDE', silent + 0.55)
    assert after and all(o.chan1_raw == 1500 and o.chan3_raw == 1500 for o in after)
    assert len(after) <= 3  # a few neutral overrides, then silence
    vehicle.beating = True
    assert wait_for(lambda: bridge.connected, bridge)


def test_garbage_and_corrupted_frames_are_counted_and_the_link_survives(link):
    bridge, vehicle = link
    assert wait_for(lambda: bridge.connected, bridge)
    rng = np.random.default_rng(3)
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port = int(bridge.config.connection.rsplit(':', 1)[1])
    good = vehicle.conn.mav.attitude_encode(2000, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0).pack(
        vehicle.conn.mav)
    corrupted = bytearray(good)
    corrupted[-3] ^= 0xFF  # payload byte: CRC no longer matches
    try:
        raw.sendto(rng.integers(0, 256, 300, dtype=np.uint8).tobytes().replace(b'\xfd', b'\x00'),
                   ('127.0.0.1', port))
        raw.sendto(bytes(corrupted), ('127.0.0.1', port))
        raw.sendto(b'\xfd\x09', ('127.0.0.1', port))  # truncated header
    finally:
        raw.close()
    records, rejected = spin_until(bridge, lambda r: False, timeout=0.5)
    assert rejected.get('bad_crc', 0) >= 1, rejected
    assert sum(rejected.values()) >= 2, rejected
    vehicle.send('attitude', 3000, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    records, _ = spin_until(bridge, lambda r: any(x.kind == 'imu' for x in r))
    assert any(x.kind == 'imu' for x in records), 'the link died after garbage'


def test_nan_attitude_and_reordered_messages_are_dropped(link):
    bridge, vehicle = link
    assert wait_for(lambda: bridge.connected, bridge)
    vehicle.send('attitude', 5000, math.nan, 0.0, 0.0, 0.0, 0.0, 0.0)
    vehicle.send('attitude', 6000, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    vehicle.send('attitude', 5900, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # older than the last
    records, rejected = spin_until(
        bridge, lambda r: False, timeout=0.4)
    assert rejected == {'nan': 1, 'out_of_order': 1}
    assert [r.kind for r in records] == ['imu']
    # no acceleration yet: not provided (NaN), orientation still valid
    assert np.isnan(records[0].measurement.linear_acceleration).all()


def test_arm_and_mode_requests_reach_the_vehicle(link):
    bridge, vehicle = link
    assert wait_for(lambda: bridge.connected, bridge)
    assert bridge.arm(True)[0]
    assert bridge.set_mode('HOLD')[0]
    assert not bridge.set_mode('NO_SUCH_MODE')[0]

    def commands():
        return {int(m.command): m for m in vehicle.of_type('COMMAND_LONG')}
    assert wait_for(lambda: {mavlink.MAV_CMD_COMPONENT_ARM_DISARM,
                             mavlink.MAV_CMD_DO_SET_MODE} <= set(commands()), bridge)
    cmds = commands()
    assert cmds[mavlink.MAV_CMD_COMPONENT_ARM_DISARM].param1 == 1.0
    hold = mavutil.mode_mapping_byname(mavlink.MAV_TYPE_SURFACE_BOAT)['HOLD']
    assert cmds[mavlink.MAV_CMD_DO_SET_MODE].param2 == hold
    vehicle.send('command_ack', mavlink.MAV_CMD_COMPONENT_ARM_DISARM,
                 mavlink.MAV_RESULT_ACCEPTED)
    assert wait_for(lambda: bridge.last_ack is not None, bridge)
    assert bridge.last_ack == (mavlink.MAV_CMD_COMPONENT_ARM_DISARM, mavlink.MAV_RESULT_ACCEPTED)
