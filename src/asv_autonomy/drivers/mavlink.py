"""MAVLink autopilot bridge (ArduPilot Rover / boat, PX4): sensors in, thrust out.

No rclpy here (DESIGN.md §4). :class:`MavlinkBridge` owns a pymavlink connection and

* decodes the autopilot's ATTITUDE (+ SCALED_IMU / SCALED_IMU2 / RAW_IMU / HIGHRES_IMU
  accelerations) into :class:`ImuSample` and GPS_RAW_INT (or GLOBAL_POSITION_INT) into
  :class:`GnssFix`, converting MAVLink's NED world / FRD body frames to REP-103 ENU / FLU:
  roll stays, pitch and yaw-from-north change sign, yaw_enu = pi/2 - yaw_ned, and body
  vectors (x, y, z)_FRD -> (x, -y, -z)_FLU;
* turns thruster commands [N] into RC_CHANNELS_OVERRIDE PWM at a fixed rate, every output
  through a :class:`ThrustGuard` (timeout, e-stop, saturation, DESIGN.md §5);
* watches the autopilot's HEARTBEAT: none for ``heartbeat_timeout`` -> link lost, thrust
  neutral (a few neutral overrides, then none until the autopilot is back);
* sends our own HEARTBEAT at 1 Hz, asks for the sensor streams (SET_MESSAGE_INTERVAL),
  arms/disarms and sets the mode on request;
* counts malformed traffic (bad CRC, bad prefix, NaN fields...) per reason; nothing raises.

Thrust -> PWM (per thruster, ``u`` the thrust normalised by the guard's max forward /
reverse thrust, so u in [-1, 1])::

    pwm = neutral                                         if u == 0
    pwm = neutral + sign(u) * (deadband + |u| * (range - deadband))   otherwise

(``deadband`` [us] skips an ESC's dead zone around neutral; ``reverse`` flips the sign).
'direct' mixing writes thruster i to RC channel ``channels[i]`` (the autopilot passes the
channel to the ESC, e.g. ArduPilot SERVOn_FUNCTION = RCINx); 'skid_steer' writes ArduPilot
Rover's throttle (``channels[0]``) = (u_left + u_right) / 2 and steering (``channels[1]``) =
(u_left - u_right) / 2 for MANUAL mode, which mixes them back into left/right throttle.

Times passed in (``now``) are seconds on the caller's clock (the node clock); sensor records
are stamped with the receive time.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

# Speak MAVLink 2 from the start (ArduPilot and PX4 do); must precede the pymavlink import.
os.environ.setdefault('MAVLINK20', '1')
from pymavlink import mavutil  # noqa: E402

from asv_autonomy.drivers.thrust_guard import ThrustGuard, ThrustGuardConfig  # noqa: E402
from asv_autonomy.measurements import (FIX, FIX_GBAS, FIX_NONE, FIX_SBAS,  # noqa: E402
                                       GnssFix, ImuSample, InvalidInput)

mavlink = mavutil.mavlink
G = 9.80665  # [m/s^2] standard gravity (SCALED_IMU accelerations are in milli-g)
IMU_MESSAGES = ('SCALED_IMU', 'SCALED_IMU2', 'RAW_IMU', 'HIGHRES_IMU')
GPS_MESSAGES = ('GPS_RAW_INT', 'GLOBAL_POSITION_INT')
MIXINGS = ('direct', 'skid_steer')
_RC_IGNORE = 65535  # RC_CHANNELS_OVERRIDE: leave this channel alone
_HEARTBEAT_PERIOD = 1.0  # [s] our own heartbeat
_NEUTRAL_REPEATS = 3  # neutral overrides sent after the link is lost, in case some get through
_REBOOT_JUMP_MS = 5000  # an autopilot clock going back by more is a reboot, not reordering
# GPS_RAW_INT fix_type -> NavSatStatus (0 no GPS, 1 no fix, 2 2D, 3 3D, 4 DGPS, 5 RTK float,
# 6 RTK fixed, 7 static, 8 PPP).
_FIX_STATUS = {2: FIX, 3: FIX, 4: FIX_SBAS, 5: FIX_GBAS, 6: FIX_GBAS, 7: FIX, 8: FIX}


@dataclass(frozen=True)
class MavlinkConfig:
    """Args:
        connection: pymavlink connection string: 'udpin:0.0.0.0:14550' (listen),
            'udpout:host:port', 'tcp:host:port', or a serial device '/dev/ttyACM0'
            (``baud`` applies).
        baud: [bit/s] for a serial connection.
        source_system: our MAVLink system id (ArduPilot accepts RC overrides only from
            SYSID_MYGCS, default 255).
        source_component: our component id (191 = onboard computer).
        target_system: autopilot system id; 0 = the first autopilot heartbeat seen.
        heartbeat_timeout: [s] no autopilot HEARTBEAT for longer -> link lost, thrust neutral.
        message_rate: [Hz] requested rate of ATTITUDE, the IMU and the GPS message; 0 leaves
            the autopilot's stream settings alone.
        imu_message: acceleration source: 'SCALED_IMU', 'SCALED_IMU2', 'RAW_IMU'
            (ArduPilot fills it in milli-g like SCALED_IMU) or 'HIGHRES_IMU' [m/s^2].
        gps_message: 'GPS_RAW_INT' (raw receiver fix, fix type and accuracy) or
            'GLOBAL_POSITION_INT' (the autopilot's fused position, no accuracy).
        imu_max_age: [s] an acceleration older than this is not attached to an attitude
            sample (its acceleration is then NaN = not provided).
        uere: [m] user equivalent range error: horizontal sigma = HDOP * uere when the
            receiver gives no h_acc.
        fused_position_sigma: [m] horizontal sigma given to GLOBAL_POSITION_INT fixes.
        orientation_sigma: [rad] roll, pitch, yaw 1-sigma; 0 = unknown.
        angular_velocity_sigma: [rad/s] 1-sigma; 0 = unknown.
        linear_acceleration_sigma: [m/s^2] 1-sigma; 0 = unknown.
        channels: 1-based RC channel per thruster ('direct') or (throttle, steering)
            ('skid_steer').
        reverse: per entry of ``channels``, flip the direction.
        mixing: 'direct' or 'skid_steer' (module docstring).
        pwm_neutral: [us] PWM of zero thrust.
        pwm_range: [us] PWM offset of full thrust from neutral.
        pwm_deadband: [us] ESC dead zone skipped by any non-zero command.
        override_rate: [Hz] RC_CHANNELS_OVERRIDE rate (ArduPilot drops an override after
            RC_OVERRIDE_TIME, 3 s by default).
        mode: mode set when the autopilot is first seen (e.g. 'MANUAL', 'GUIDED'); '' keeps it.
        guard: thrust timeout / saturation, thrusters = number of thrust inputs.
    """

    connection: str = 'udpin:0.0.0.0:14550'
    baud: int = 115200
    source_system: int = 255
    source_component: int = 191
    target_system: int = 0
    heartbeat_timeout: float = 3.0
    message_rate: float = 20.0
    imu_message: str = 'SCALED_IMU'
    gps_message: str = 'GPS_RAW_INT'
    imu_max_age: float = 0.5
    uere: float = 3.0
    fused_position_sigma: float = 2.0
    orientation_sigma: tuple[float, float, float] = (0.0, 0.0, 0.0)
    angular_velocity_sigma: float = 0.0
    linear_acceleration_sigma: float = 0.0
    channels: tuple[int, ...] = (1, 3)
    reverse: tuple[bool, ...] = (False, False)
    mixing: str = 'direct'
    pwm_neutral: int = 1500
    pwm_range: int = 400
    pwm_deadband: int = 0
    override_rate: float = 10.0
    mode: str = ''
    guard: ThrustGuardConfig = field(default_factory=ThrustGuardConfig)

    def __post_init__(self):
        if not self.connection:
            raise ValueError('connection must not be empty')
        for name in ('source_system', 'source_component'):
            if not 1 <= getattr(self, name) <= 255:
                raise ValueError(f'{name} must be in [1, 255], got {getattr(self, name)}')
        if not 0 <= self.target_system <= 255:
            raise ValueError(f'target_system must be in [0, 255], got {self.target_system}')
        for name in ('heartbeat_timeout', 'imu_max_age', 'uere', 'fused_position_sigma',
                     'override_rate'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        for name in ('message_rate', 'angular_velocity_sigma', 'linear_acceleration_sigma'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f'{name} must be >= 0, got {value}')
        if not all(math.isfinite(s) and s >= 0.0 for s in self.orientation_sigma):
            raise ValueError(f'orientation_sigma must be >= 0, got {self.orientation_sigma}')
        if self.imu_message not in IMU_MESSAGES:
            raise ValueError(f'imu_message must be one of {IMU_MESSAGES}, '
                             f'got {self.imu_message!r}')
        if self.gps_message not in GPS_MESSAGES:
            raise ValueError(f'gps_message must be one of {GPS_MESSAGES}, '
                             f'got {self.gps_message!r}')
        if self.mixing not in MIXINGS:
            raise ValueError(f'mixing must be one of {MIXINGS}, got {self.mixing!r}')
        expected = self.guard.thrusters if self.mixing == 'direct' else 2
        if len(self.channels) != expected:
            raise ValueError(f'channels needs {expected} entries for {self.mixing!r} mixing '
                             f'of {self.guard.thrusters} thrusters, got {self.channels}')
        if self.mixing == 'skid_steer' and self.guard.thrusters != 2:
            raise ValueError(f"'skid_steer' mixing needs guard.thrusters = 2, "
                             f'got {self.guard.thrusters}')
        if len(self.reverse) != len(self.channels):
            raise ValueError(f'reverse needs one entry per channel, got {self.reverse}')
        if len(set(self.channels)) != len(self.channels) or not all(
                1 <= c <= 18 for c in self.channels):
            raise ValueError(f'channels must be distinct RC channels in [1, 18], '
                             f'got {self.channels}')
        if not 800 <= self.pwm_neutral <= 2200:
            raise ValueError(f'pwm_neutral must be in [800, 2200] us, got {self.pwm_neutral}')
        if not 0 < self.pwm_range <= 1000:
            raise ValueError(f'pwm_range must be in (0, 1000] us, got {self.pwm_range}')
        if not 0 <= self.pwm_deadband < self.pwm_range:
            raise ValueError(f'pwm_deadband must be in [0, pwm_range), got {self.pwm_deadband}')


class Record(NamedTuple):
    """One decoded measurement: kind 'imu' (ImuSample) or 'fix' (GnssFix)."""

    kind: str
    measurement: ImuSample | GnssFix


class PollResult(NamedTuple):
    """What :meth:`MavlinkBridge.spin_once` received.

    Args:
        records: decoded measurements, in arrival order.
        rejected: reason -> count of what was dropped in this call.
    """

    records: list[Record]
    rejected: Counter


# ----------------------------------------------------------------- pure conversions
def euler_ned_to_enu(roll: float, pitch: float, yaw: float) -> tuple[float, float, float]:
    """ZYX Euler angles [rad] of FRD in NED -> ZYX Euler angles of FLU in ENU."""
    return roll, -pitch, (math.pi / 2.0 - yaw + math.pi) % (2.0 * math.pi) - math.pi


def quaternion_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """(4,) quaternion x, y, z, w of R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(roll / 2.0), math.sin(roll / 2.0)
    cp, sp = math.cos(pitch / 2.0), math.sin(pitch / 2.0)
    cy, sy = math.cos(yaw / 2.0), math.sin(yaw / 2.0)
    return np.array([sr * cp * cy - cr * sp * sy,
                     cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy,
                     cr * cp * cy + sr * sp * sy])


def frd_to_flu(x: float, y: float, z: float) -> np.ndarray:
    """(3,) body vector FRD -> FLU."""
    return np.array([x, -y, -z], dtype=np.float64)


def acceleration_flu(msg: Any) -> np.ndarray:
    """(3,) [m/s^2] specific force in FLU of a SCALED_IMU*/RAW_IMU (milli-g) or HIGHRES_IMU
    (m/s^2) message; at rest z is +g (the autopilot reports about -1000 mg on FRD z)."""
    scale = 1.0 if msg.get_type() == 'HIGHRES_IMU' else G / 1000.0
    return frd_to_flu(msg.xacc * scale, msg.yacc * scale, msg.zacc * scale)


def pwm_of(u: float, reverse: bool, config: MavlinkConfig) -> int:
    """[us] PWM of a normalised command ``u`` in [-1, 1] (module docstring)."""
    u = -u if reverse else u
    u = min(max(u, -1.0), 1.0)
    if u == 0.0:
        return config.pwm_neutral
    span = config.pwm_deadband + abs(u) * (config.pwm_range - config.pwm_deadband)
    return int(round(config.pwm_neutral + math.copysign(span, u)))


def normalised(thrust: np.ndarray, guard: ThrustGuardConfig) -> np.ndarray:
    """Thrust [N] -> u in [-1, 1]: forward over max_forward, reverse over max_reverse."""
    thrust = np.asarray(thrust, dtype=np.float64)
    return np.where(thrust >= 0.0, thrust / guard.max_forward, thrust / guard.max_reverse)


def channel_pwms(thrust: np.ndarray, config: MavlinkConfig) -> dict[int, int]:
    """RC channel -> PWM [us] for the guarded thrust [N] of every thruster."""
    u = normalised(thrust, config.guard)
    if config.mixing == 'skid_steer':
        u = np.array([(u[0] + u[1]) / 2.0, (u[0] - u[1]) / 2.0])  # throttle, steering
    return {ch: pwm_of(float(v), rev, config)
            for ch, v, rev in zip(config.channels, u, config.reverse)}


def fix_of_gps_raw(msg: Any, stamp: float, uere: float) -> GnssFix:
    """GnssFix of a GPS_RAW_INT. fix_type < 2 -> FIX_NONE with NaN position. Horizontal
    sigma: h_acc [mm] when given, else eph (HDOP * 100) * uere, else unknown (NaN);
    vertical likewise from v_acc / epv. Altitude: alt_ellipsoid when given, else the MSL
    altitude (the geoid separation is then not applied)."""
    if msg.fix_type < 2:
        return GnssFix(stamp, math.nan, math.nan, math.nan, FIX_NONE)
    lat, lon = msg.lat * 1e-7, msg.lon * 1e-7
    if abs(lat) > 90.0 or abs(lon) > 180.0:
        raise InvalidInput('out_of_range', f'latitude {lat}, longitude {lon}')
    alt_ellipsoid = getattr(msg, 'alt_ellipsoid', 0)
    altitude = (alt_ellipsoid if alt_ellipsoid else msg.alt) * 1e-3

    def sigma(acc_mm: int, dop100: int) -> float:
        if acc_mm and acc_mm != 0xFFFFFFFF:
            return acc_mm * 1e-3
        if dop100 and dop100 != 0xFFFF:
            return dop100 * 0.01 * uere
        return math.nan

    sh = sigma(getattr(msg, 'h_acc', 0), msg.eph)
    sv = sigma(getattr(msg, 'v_acc', 0), msg.epv)
    if math.isnan(sh):
        cov = np.full((3, 3), np.nan)
    else:
        sv = 2.0 * sh if math.isnan(sv) else sv  # GNSS vertical is typically ~2x worse
        cov = np.diag([sh * sh, sh * sh, sv * sv])
    return GnssFix(stamp, lat, lon, altitude, _FIX_STATUS.get(msg.fix_type, FIX), cov)


def fix_of_global_position(msg: Any, stamp: float, sigma: float) -> GnssFix:
    """GnssFix of a GLOBAL_POSITION_INT (fused; lat = lon = 0 means no position)."""
    lat, lon = msg.lat * 1e-7, msg.lon * 1e-7
    if msg.lat == 0 and msg.lon == 0:
        return GnssFix(stamp, math.nan, math.nan, math.nan, FIX_NONE)
    if abs(lat) > 90.0 or abs(lon) > 180.0:
        raise InvalidInput('out_of_range', f'latitude {lat}, longitude {lon}')
    return GnssFix(stamp, lat, lon, msg.alt * 1e-3, FIX,
                   np.diag([sigma ** 2, sigma ** 2, (2.0 * sigma) ** 2]))


# ------------------------------------------------------------------------- bridge
class MavlinkBridge:
    """Autopilot link: sensor records in, guarded thrust out (module docstring).

    Args:
        config: the bridge configuration.
        connection: an open pymavlink connection to use instead of opening
            ``config.connection`` (tests).
    """

    def __init__(self, config: MavlinkConfig = MavlinkConfig(), connection: Any = None):
        self.config = config
        self.guard = ThrustGuard(config.guard)
        self.counts: Counter = Counter()  # accepted per message type + rejected per reason
        self._conn = connection
        self.target_system = config.target_system
        self.target_component = 0
        self.vehicle_type: int | None = None
        self.armed = False
        self.mode = ''
        self.last_ack: tuple[int, int] | None = None  # (command, result) of the last ack
        self._last_heartbeat = -math.inf  # [s] receive time of the autopilot's heartbeat
        self._seen = False
        self._lost = False
        self._neutral_left = 0
        self._next_heartbeat = -math.inf
        self._next_override = -math.inf
        self._accel: tuple[float, np.ndarray] | None = None
        self._boot_ms: dict[str, int] = {}
        self.last_pwm: dict[int, int] = {}
        o = [s * s if s > 0.0 else math.nan for s in config.orientation_sigma]
        w, a = config.angular_velocity_sigma, config.linear_acceleration_sigma
        self._variances = (np.array(o), np.full(3, w * w if w > 0.0 else math.nan),
                           np.full(3, a * a if a > 0.0 else math.nan))

    # ------------------------------------------------------------ connection
    def open(self) -> None:
        """Open ``config.connection`` (no-op when a connection was given)."""
        if self._conn is None:
            cfg = self.config
            self._conn = mavutil.mavlink_connection(
                cfg.connection, baud=cfg.baud, source_system=cfg.source_system,
                source_component=cfg.source_component)

    def close(self) -> None:
        """Send neutral once (if the autopilot is there) and close the link."""
        if self._conn is None:
            return
        try:
            if self.connected:
                self._send_override({ch: self.config.pwm_neutral for ch in self.config.channels})
        except Exception:  # noqa: BLE001 - closing must not fail
            pass
        try:
            self._conn.close()
        finally:
            self._conn = None

    @property
    def is_open(self) -> bool:
        """The link is open (it may still have no autopilot on it)."""
        return self._conn is not None

    @property
    def connected(self) -> bool:
        """An autopilot heartbeat arrived within ``heartbeat_timeout``."""
        return self._seen and not self._lost

    # ------------------------------------------------------------ commands
    def command(self, index: int, thrust: float, now: float) -> None:
        """Thrust [N] for thruster ``index`` received at ``now`` [s] (InvalidInput on NaN /
        unknown index, from the guard)."""
        self.guard.command(index, thrust, now)

    def set_estop(self, engaged: bool, now: float | None = None) -> None:
        """Engage/release the e-stop; with ``now`` a neutral override goes out at once."""
        self.guard.set_estop(engaged)
        if engaged and now is not None:
            self._next_override = -math.inf
            self.update(now)

    def arm(self, arm: bool) -> tuple[bool, str]:
        """Send an arm (True) / disarm request. Refused while the e-stop is engaged (arming)
        or without autopilot. The result arrives as a COMMAND_ACK (``last_ack``)."""
        if arm and self.guard.estop:
            return False, 'e-stop engaged: not arming'
        if not self.connected:
            return False, 'no autopilot heartbeat'
        self._command_long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, 1.0 if arm else 0.0)
        return True, 'arm request sent' if arm else 'disarm request sent'

    def set_mode(self, name: str) -> tuple[bool, str]:
        """Request the autopilot mode ``name`` (ArduPilot mode names for its vehicle type)."""
        if not self.connected:
            return False, 'no autopilot heartbeat'
        mapping = mavutil.mode_mapping_byname(self.vehicle_type) or {}
        if name not in mapping:
            return False, f'unknown mode {name!r} for vehicle type {self.vehicle_type}: ' \
                          f'{sorted(mapping)}'
        self._command_long(mavlink.MAV_CMD_DO_SET_MODE,
                           mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, mapping[name])
        return True, f'mode {name} requested'

    # ------------------------------------------------------------ the loop
    def spin_once(self, now: float, max_messages: int = 1000) -> PollResult:
        """Read what arrived (at most ``max_messages``), then :meth:`update`."""
        result = self.poll(now, max_messages)
        self.update(now)
        return result

    def poll(self, now: float, max_messages: int = 1000) -> PollResult:
        """Decode every waiting message; bad traffic is counted, never raised."""
        records: list[Record] = []
        rejected: Counter = Counter()
        if self._conn is None:
            return PollResult(records, rejected)
        for _ in range(max_messages):
            try:
                msg = self._conn.recv_msg()
            except Exception as err:  # noqa: BLE001 - a broken link must not crash the node
                self._reject(_bad_data_reason(str(err)), rejected)
                break
            if msg is None:
                break
            try:
                record = self.handle(msg, now)
            except InvalidInput as err:
                self._reject(err.reason, rejected)
                continue
            except Exception:  # noqa: BLE001 - a message we misread: count, go on
                self._reject('malformed', rejected)
                continue
            if record is not None:
                records.append(record)
        return PollResult(records, rejected)

    def update(self, now: float) -> None:
        """Heartbeat watchdog, our heartbeat, the RC override when due."""
        if self._conn is None:
            return
        cfg = self.config
        if self._seen and not self._lost and now - self._last_heartbeat > cfg.heartbeat_timeout:
            self._lost = True
            self._neutral_left = _NEUTRAL_REPEATS
            self.counts['link_lost'] += 1
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + _HEARTBEAT_PERIOD
            self._safe(lambda: self._conn.mav.heartbeat_send(
                mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavlink.MAV_AUTOPILOT_INVALID, 0, 0,
                mavlink.MAV_STATE_ACTIVE))
        if now < self._next_override:
            return
        self._next_override = now + 1.0 / cfg.override_rate
        if self._lost:
            if self._neutral_left > 0:
                self._neutral_left -= 1
                self._send_override({ch: cfg.pwm_neutral for ch in cfg.channels})
            return
        if not self._seen:
            return  # no autopilot yet: nobody to override
        self._send_override(channel_pwms(self.guard.output(now).thrust, cfg))

    # ------------------------------------------------------------ decoding
    def handle(self, msg: Any, now: float) -> Record | None:
        """Decode one message received at ``now`` [s]; a measurement record or None.

        Raises:
            InvalidInput: the reason to drop it ('bad_crc', 'nan', 'out_of_order', ...).
        """
        kind = msg.get_type()
        if kind == 'BAD_DATA':
            raise InvalidInput(_bad_data_reason(getattr(msg, 'reason', '')), str(msg))
        if kind == 'HEARTBEAT':
            self._on_heartbeat(msg, now)
            return None
        if not self._from_autopilot(msg):
            return None  # other systems (GCS, gimbal, ...) or before the first heartbeat
        self.counts[kind] += 1
        if kind == 'COMMAND_ACK':
            self.last_ack = (int(msg.command), int(msg.result))
            return None
        self._check_order(kind, msg)
        if kind == self.config.imu_message:
            accel = acceleration_flu(msg)
            if not np.isfinite(accel).all():
                raise InvalidInput('nan', f'{kind} acceleration {accel}')
            self._accel = (now, accel)
            return None
        if kind == 'ATTITUDE':
            return Record('imu', self._imu_sample(msg, now))
        if kind == self.config.gps_message:
            if kind == 'GPS_RAW_INT':
                return Record('fix', fix_of_gps_raw(msg, now, self.config.uere))
            return Record('fix', fix_of_global_position(msg, now,
                                                        self.config.fused_position_sigma))
        return None

    def _imu_sample(self, msg: Any, now: float) -> ImuSample:
        values = (msg.roll, msg.pitch, msg.yaw, msg.rollspeed, msg.pitchspeed, msg.yawspeed)
        if not all(math.isfinite(v) for v in values):
            raise InvalidInput('nan', f'ATTITUDE {values}')
        q = quaternion_from_euler(*euler_ned_to_enu(msg.roll, msg.pitch, msg.yaw))
        rates = frd_to_flu(msg.rollspeed, msg.pitchspeed, msg.yawspeed)
        if self._accel is not None and now - self._accel[0] <= self.config.imu_max_age:
            accel = self._accel[1]
        else:
            accel = np.full(3, np.nan)  # not provided (REP-145)
        o_var, w_var, a_var = self._variances
        return ImuSample(now, q, rates, accel, o_var.copy(), w_var.copy(), a_var.copy())

    def _on_heartbeat(self, msg: Any, now: float) -> None:
        if msg.type == mavlink.MAV_TYPE_GCS or msg.autopilot == mavlink.MAV_AUTOPILOT_INVALID:
            return  # a GCS or companion computer, not the autopilot
        if self.target_system == 0:
            self.target_system = msg.get_srcSystem()
        if msg.get_srcSystem() != self.target_system:
            return
        if self.target_component == 0:
            self.target_component = msg.get_srcComponent()
        if msg.get_srcComponent() != self.target_component:
            return
        self.counts['HEARTBEAT'] += 1
        back = not self._seen or self._lost
        self._seen, self._lost = True, False
        self._last_heartbeat = now
        self.vehicle_type = int(msg.type)
        self.armed = bool(msg.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
        self.mode = mavutil.mode_string_v10(msg)
        if back:
            self._on_autopilot_found()

    def _on_autopilot_found(self) -> None:
        """First heartbeat (or back after a loss): ask for streams and the configured mode."""
        cfg = self.config
        self._boot_ms.clear()  # it may have rebooted
        if cfg.message_rate > 0.0:
            interval_us = 1e6 / cfg.message_rate
            for name in ('ATTITUDE', cfg.imu_message, cfg.gps_message):
                self._command_long(mavlink.MAV_CMD_SET_MESSAGE_INTERVAL,
                                   getattr(mavlink, f'MAVLINK_MSG_ID_{name}'), interval_us)
        if cfg.mode:
            ok, text = self.set_mode(cfg.mode)
            if not ok:
                self.counts['bad_mode'] += 1

    def _from_autopilot(self, msg: Any) -> bool:
        return (self._seen and msg.get_srcSystem() == self.target_system
                and msg.get_srcComponent() == self.target_component)

    def _check_order(self, kind: str, msg: Any) -> None:
        """Drop a message older than the last of its type (UDP reordering); a large jump
        back is an autopilot reboot and is accepted."""
        t = getattr(msg, 'time_boot_ms', None)
        if t is None:
            usec = getattr(msg, 'time_usec', None)
            # GPS_RAW_INT/HIGHRES_IMU time_usec may be UNIX time: compare in ms either way.
            t = None if usec is None else usec // 1000
        if t is None:
            return
        last = self._boot_ms.get(kind)
        if last is not None and last - _REBOOT_JUMP_MS < t < last:
            raise InvalidInput('out_of_order', f'{kind} at {t} ms after {last} ms')
        self._boot_ms[kind] = t

    # ------------------------------------------------------------ sending
    def _send_override(self, pwms: dict[int, int]) -> None:
        values = [_RC_IGNORE] * 8 + [0] * 10  # channels 9-18: 0 also means "ignore"
        for ch, pwm in pwms.items():
            values[ch - 1] = pwm
        self.last_pwm = dict(pwms)
        self._safe(lambda: self._conn.mav.rc_channels_override_send(
            self.target_system, self.target_component, *values))
        self.counts['override_sent'] += 1

    def _command_long(self, command: int, *params: float) -> None:
        p = list(params) + [0.0] * (7 - len(params))
        self._safe(lambda: self._conn.mav.command_long_send(
            self.target_system, self.target_component, command, 0, *p))

    def _safe(self, send) -> None:
        try:
            send()
        except Exception:  # noqa: BLE001 - a write error (port gone) is counted, not fatal
            self.counts['write_error'] += 1

    def _reject(self, reason: str, rejected: Counter) -> None:
        self.counts[reason] += 1
        rejected[reason] += 1

    def status(self, now: float) -> dict:
        """Link state and counters for diagnostics."""
        age = now - self._last_heartbeat
        out = {'connected': self.connected, 'armed': self.armed, 'mode': self.mode,
               'target_system': self.target_system,
               'heartbeat_age': age if math.isfinite(age) else -1.0,
               'estop': self.guard.estop}
        out.update({f'pwm/ch{ch}': pwm for ch, pwm in sorted(self.last_pwm.items())})
        if self.last_ack is not None:
            out['last_ack'] = f'command {self.last_ack[0]} result {self.last_ack[1]}'
        out.update({f'count/{k}': v for k, v in sorted(self.counts.items())})
        return out


def _bad_data_reason(text: str) -> str:
    """Short reason of a pymavlink parse error / BAD_DATA text."""
    text = text.lower()
    if 'crc' in text:
        return 'bad_crc'
    if 'prefix' in text:
        return 'bad_prefix'
    if 'signature' in text:
        return 'bad_signature'
    return 'bad_data'
