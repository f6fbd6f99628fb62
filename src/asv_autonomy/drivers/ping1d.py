"""Blue Robotics Ping1D (Ping, Ping2) echosounder: protocol core and a small byte link.

No rclpy here (DESIGN.md §4). The device speaks the Ping binary protocol: frames
``'B' 'R' <payload length u16> <message id u16> <src u8> <dst u8> <payload> <checksum u16>``
with the checksum the 16-bit sum of every preceding byte. Frames are decoded with brping's own
:class:`brping.PingParser` / :class:`brping.PingMessage`; this module adds what a driver on a
noisy serial line needs around it:

* header sanity (unknown message id, a payload length that does not fit the message, an
  absurd length from a corrupted byte) is checked as soon as the header is in, so one bad
  length byte cannot swallow the following good frames;
* after any rejected frame the parser re-scans the rejected bytes from the second byte on,
  so a truncated frame followed by a good one loses only the truncated one;
* every rejection is counted per reason (``bad_checksum``, ``bad_length``, ``unknown_id``,
  ``garbage`` = a run of bytes outside any frame, ``low_confidence``, ``out_of_range``,
  ``nack``) and nothing raises.

Depth readings come from ``distance_simple``, ``distance`` or ``profile`` messages (all start
with ``distance`` [mm] and ``confidence`` [%]). Variance from confidence::

    sigma = max(relative_sigma * depth, min_sigma) * 100 / confidence      [m]

i.e. the device's accuracy at 100 % confidence, inflated in inverse proportion to the
confidence (50 % doubles sigma); readings below ``min_confidence`` (always including 0 %,
"no bottom found") are dropped.
"""
from __future__ import annotations

import errno
import math
import socket
import struct
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from brping import definitions
from brping.pingmessage import PingMessage, PingParser

from asv_autonomy.measurements import ScalarReading

MODES = ('request', 'continuous')
DEPTH_MESSAGES = {
    'distance_simple': definitions.PING1D_DISTANCE_SIMPLE,
    'distance': definitions.PING1D_DISTANCE,
    'profile': definitions.PING1D_PROFILE,
}
# Messages a Ping1D may send: its own and the common ones (ack, nack, ascii text, ...).
# Not brping's payload_dict_all: it merges every device and, e.g., id 1211 there is another
# device's 'altitude', not Ping1D's 'distance_simple'.
_KNOWN = {**definitions.payload_dict_common, **definitions.payload_dict_ping1d}
# Variable-length messages (profile: up to a few hundred samples, nack/ascii text).
_VARIABLE = {definitions.PING1D_PROFILE, definitions.COMMON_NACK, definitions.COMMON_ASCII_TEXT}
# [bytes] no Ping1D message is longer; a larger declared length is a corrupted header.
_MAX_PAYLOAD = 1024
_HEADER = PingMessage.headerLength


@dataclass(frozen=True)
class Ping1DConfig:
    """Args:
        mode: 'request' (ask for ``message`` every 1/``rate`` s with general_request) or
            'continuous' (enable pinging and send continuous_start once; the device then
            streams on its own, the firmware streams ``profile``).
        message: depth message: 'distance_simple', 'distance' or 'profile'.
        rate: [Hz] request rate in 'request' mode.
        reply_timeout: [s] no valid frame for longer -> the device is reported silent and,
            in 'continuous' mode, the start sequence is sent again (device rebooted).
        min_confidence: [%] readings with a lower confidence are dropped (>= 1, so that
            confidence 0, "no bottom found", is always dropped).
        relative_sigma: 1-sigma depth error at 100 % confidence as a fraction of depth.
        min_sigma: [m] floor of the 1-sigma depth error at 100 % confidence.
        min_range, max_range: [m] valid depths; readings outside are dropped
            ('out_of_range').
        speed_of_sound: [m/s] sent to the device at start (fresh water ~1480, sea water
            ~1500); 0 leaves the device's own setting.
        device_id: destination device id written in our requests (0: any device).
    """

    mode: str = 'request'
    message: str = 'distance'
    rate: float = 10.0
    reply_timeout: float = 2.0
    min_confidence: int = 1
    relative_sigma: float = 0.005
    min_sigma: float = 0.025
    min_range: float = 0.3
    max_range: float = 100.0
    speed_of_sound: float = 0.0
    device_id: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.message not in DEPTH_MESSAGES:
            raise ValueError(f'message must be one of {tuple(DEPTH_MESSAGES)}, '
                             f'got {self.message!r}')
        for name in ('rate', 'reply_timeout', 'relative_sigma', 'min_sigma', 'max_range'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f'{name} must be > 0, got {value}')
        if not 1 <= self.min_confidence <= 100:
            raise ValueError(f'min_confidence must be in [1, 100] %, got {self.min_confidence}')
        if not (math.isfinite(self.min_range) and 0.0 <= self.min_range < self.max_range):
            raise ValueError(f'min_range must be in [0, max_range), got {self.min_range}')
        if not (self.speed_of_sound == 0.0 or 1000.0 <= self.speed_of_sound <= 2000.0):
            raise ValueError(f'speed_of_sound must be 0 (keep) or in [1000, 2000] m/s, '
                             f'got {self.speed_of_sound}')
        if not 0 <= self.device_id <= 255:
            raise ValueError(f'device_id must be in [0, 255], got {self.device_id}')


class FeedResult(NamedTuple):
    """What one chunk of bytes gave.

    Args:
        readings: depth readings [m] with variance [m^2], stamped with the receive time.
        rejected: reason -> count of what was dropped in this chunk.
    """

    readings: list[ScalarReading]
    rejected: Counter


def frame(message_id: int, device_id: int = 0, **fields) -> bytes:
    """A packed Ping1D frame of ``message_id`` with payload ``fields`` (brping packs it).

    Raises:
        KeyError: ``message_id`` is not a Ping1D/common message.
        ValueError: a field the message does not have.
    """
    msg = PingMessage(message_id, payload_dict=_KNOWN)
    msg.dst_device_id = device_id
    for name, value in fields.items():
        if name not in msg.payload_field_names:
            raise ValueError(f'{msg.name} has no field {name!r}')
        setattr(msg, name, value)
    return bytes(msg.pack_msg_data())


class Ping1D:
    """Ping1D protocol state: requests to send, bytes in -> depth readings (module doc)."""

    def __init__(self, config: Ping1DConfig = Ping1DConfig()):
        self.config = config
        self.counts: Counter = Counter()  # accepted per message name + rejected per reason
        self._parser = PingParser(_KNOWN)
        self._message_id = DEPTH_MESSAGES[config.message]
        self._last_frame = -math.inf  # [s] receive time of the last valid frame
        self._next_request = -math.inf
        self._next_start = -math.inf
        self._started = False
        self._in_garbage = False

    # --------------------------------------------------------------- outgoing
    def start(self) -> bytes:
        """Bytes that (re)configure the device: speed of sound, then for 'continuous'
        ping enable + continuous_start."""
        cfg = self.config
        out = b''
        if cfg.speed_of_sound > 0.0:
            out += frame(definitions.PING1D_SET_SPEED_OF_SOUND, cfg.device_id,
                         speed_of_sound=int(round(cfg.speed_of_sound * 1000.0)))  # [mm/s]
        if cfg.mode == 'continuous':
            out += frame(definitions.PING1D_SET_PING_ENABLE, cfg.device_id, ping_enabled=1)
            out += frame(definitions.PING1D_CONTINUOUS_START, cfg.device_id,
                         id=self._message_id)
        return out

    def poll(self, now: float) -> bytes:
        """Bytes due at ``now`` [s]: the start sequence (first call, and again every
        ``reply_timeout`` while the device is silent: it may have rebooted and lost its
        settings) and, in 'request' mode, the periodic request."""
        cfg = self.config
        out = b''
        if now >= self._next_start and (not self._started or self.silent(now)):
            self._started = True
            out += self.start()
            self._next_start = now + cfg.reply_timeout
        if cfg.mode == 'request' and now >= self._next_request:
            out += frame(definitions.COMMON_GENERAL_REQUEST, cfg.device_id,
                         requested_id=self._message_id)
            # Keep the phase through jitter, but never queue a burst after a pause.
            period = 1.0 / cfg.rate
            late = now - self._next_request > period
            self._next_request = (now if late else self._next_request) + period
        return out

    def restart(self) -> None:
        """Forget the device state (the link was re-opened): the next poll sends start()."""
        self._started = False
        self._next_start = -math.inf
        self._next_request = -math.inf
        self._parser = PingParser(_KNOWN)
        self._in_garbage = False

    def silent(self, now: float) -> bool:
        """True when no valid frame arrived for ``reply_timeout`` [s]."""
        return now - self._last_frame > self.config.reply_timeout

    # --------------------------------------------------------------- incoming
    def feed(self, data: bytes, now: float) -> FeedResult:
        """Parse received bytes; partial frames stay buffered for the next call.

        Args:
            data: bytes as read from the link (any split).
            now: [s] receive time, the stamp of the readings.
        """
        readings: list[ScalarReading] = []
        rejected: Counter = Counter()
        parser = self._parser
        queue = bytes(data)
        pos = 0
        while pos < len(queue):
            byte = queue[pos]
            pos += 1
            before = parser.state
            result = parser.parse_byte(byte)
            if result == PingParser.NEW_MESSAGE:
                self._in_garbage = False
                self._handle(parser.rx_msg, now, readings, rejected)
                continue
            if result == PingParser.ERROR:
                reason = 'bad_checksum'
            elif parser.state == PingParser.WAIT_SRC_ID:
                reason = self._check_header(parser.message_id, parser.payload_length)
                if reason is None:
                    continue
            else:
                if parser.state == PingParser.WAIT_START and before in (
                        PingParser.WAIT_START, PingParser.WAIT_HEADER):
                    # A byte outside any frame (or a 'B' not followed by 'R'); count each
                    # run of them once.
                    restart = before == PingParser.WAIT_HEADER and byte == ord('B')
                    if restart:
                        parser.parse_byte(byte)  # 'BBR...': this 'B' may start the frame
                    # The lone 'B' before, and this byte unless it restarted a frame.
                    self.counts['garbage_bytes'] += (
                        (before == PingParser.WAIT_HEADER) + (not restart))
                    if not self._in_garbage:
                        self._in_garbage = True
                        self._reject('garbage', rejected)
                continue
            # Rejected frame: re-scan its bytes after the first one ('B'), the start of a
            # good frame may hide in them (a truncated frame followed by a good one).
            self._in_garbage = False
            self._reject(reason, rejected)
            queue = bytes(parser.buf[1:]) + queue[pos:]
            pos = 0
            self._parser = parser = PingParser(_KNOWN)
        return FeedResult(readings, rejected)

    def _check_header(self, message_id: int, payload_length: int) -> str | None:
        """Reason to reject a frame header as soon as it is complete, or None."""
        spec = _KNOWN.get(message_id)
        if spec is None:
            return 'unknown_id'
        static = spec['payload_length']
        if message_id in _VARIABLE:
            ok = static <= payload_length <= _MAX_PAYLOAD
        else:
            ok = payload_length == static
        return None if ok else 'bad_length'

    def _handle(self, msg: PingMessage, now: float, readings: list, rejected: Counter) -> None:
        self._last_frame = now
        self.counts[msg.name] += 1
        if msg.message_id == definitions.COMMON_NACK:
            self._reject('nack', rejected)
            return
        if msg.message_id not in DEPTH_MESSAGES.values():
            return  # acks, device info, ...: counted above, nothing to publish
        reading = self.reading(int(msg.distance), int(msg.confidence), now)
        if isinstance(reading, str):
            self._reject(reading, rejected)
        else:
            readings.append(reading)

    def reading(self, distance_mm: int, confidence: int, now: float) -> ScalarReading | str:
        """Depth reading of a distance [mm] and confidence [%], or the reason to drop it."""
        cfg = self.config
        if confidence < cfg.min_confidence:
            return 'low_confidence'
        depth = distance_mm / 1000.0
        if not cfg.min_range <= depth <= cfg.max_range:
            return 'out_of_range'
        sigma = max(cfg.relative_sigma * depth, cfg.min_sigma) * 100.0 / min(confidence, 100)
        return ScalarReading(stamp=now, value=depth, variance=sigma * sigma)

    def _reject(self, reason: str, rejected: Counter) -> None:
        self.counts[reason] += 1
        rejected[reason] += 1

    def status(self, now: float) -> dict:
        """Counters and link state for diagnostics."""
        age = now - self._last_frame
        return {'silent': self.silent(now),
                'last_frame_age': age if math.isfinite(age) else -1.0,
                **{f'count/{k}': v for k, v in sorted(self.counts.items())}}


# ----------------------------------------------------------------------- links
class SerialLink:
    """Ping1D on a serial port (USB adapter), 115200 8N1 by default.

    Args:
        device: serial device path.
        baud: [bit/s].
    """

    def __init__(self, device: str, baud: int = 115200):
        self.device = device
        self.baud = baud
        self._port = None

    def open(self) -> None:
        import serial  # pyserial: imported here so a UDP-only setup does not need it
        self._port = serial.Serial(self.device, self.baud, timeout=0)

    def read(self) -> bytes:
        """Whatever bytes are waiting (never blocks); OSError when the port is gone."""
        if self._port is None:
            raise OSError('serial port not open')
        return self._port.read(max(1, self._port.in_waiting))

    def write(self, data: bytes) -> None:
        if self._port is None:
            raise OSError('serial port not open')
        self._port.write(data)

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            finally:
                self._port = None


class UdpLink:
    """Ping1D over UDP (e.g. BlueOS ping service, port 9090): requests are sent to
    ``host:port`` and only datagrams from there are read back (connected socket).

    Args:
        host: device address.
        port: device UDP port.
    """

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None

    def open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def read(self) -> bytes:
        """Every datagram waiting (never blocks); OSError when the socket is gone."""
        if self._sock is None:
            raise OSError('UDP socket not open')
        chunks = []
        while True:
            try:
                chunks.append(self._sock.recv(65535))
            except BlockingIOError:
                break
            except ConnectionRefusedError:
                break  # ICMP port unreachable from an earlier send: nobody listens yet
        return b''.join(chunks)

    def write(self, data: bytes) -> None:
        if self._sock is None:
            raise OSError('UDP socket not open')
        try:
            self._sock.send(data)
        except ConnectionRefusedError:
            pass  # the device is not up (yet); the request loop retries
        except OSError as err:
            if err.errno != errno.EAGAIN:
                raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def unpack_header(data: bytes) -> tuple[int, int, int, int]:
    """(payload length, message id, src id, dst id) of a frame (tests, debugging)."""
    _, _, length, message_id, src, dst = struct.unpack('<BBHHBB', bytes(data[:_HEADER]))
    return length, message_id, src, dst
