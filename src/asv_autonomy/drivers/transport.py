"""Byte sources for sensor drivers: serial port, UDP, TCP client, and a reconnecting wrapper.

No rclpy here. Every source has the same small interface:

* ``open()``: connect; raises ``SourceError`` (an ``OSError``) when it cannot;
* ``read(timeout) -> bytes``: what arrived within ``timeout`` [s] (``b''`` when nothing);
  raises ``SourceError`` when the link failed (port unplugged, TCP peer gone) and
  leaves the source closed;
* ``close()``: idempotent;
* ``connected``: True between a successful ``open()`` and a failure or ``close()``.

`Reconnecting` wraps a source so that ``read`` never raises: it re-opens a failed source
with exponential backoff and counts losses, failed attempts and reconnects for diagnostics.
"""
from __future__ import annotations

import math
import select
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import serial

_CHUNK = 65536  # [bytes] largest single read


class SourceError(OSError):
    """A byte source could not be opened, or its link failed."""


class ByteSource(Protocol):
    connected: bool

    def open(self) -> None: ...

    def read(self, timeout: float) -> bytes: ...

    def close(self) -> None: ...


def _wait_readable(fileobj: Any, timeout: float) -> bool:
    readable, _, _ = select.select([fileobj], [], [], max(0.0, timeout))
    return bool(readable)


class SerialSource:
    """A serial port (USB adapter, RS-422/232, a pseudo-terminal) through pyserial.

    Args:
        port: device path, e.g. '/dev/ttyUSB0' or a udev symlink '/dev/gps' (a symlink is
            re-resolved at every open, so a re-plugged adapter is found again).
        baud: [bit/s] line speed (4800 for classic NMEA 0183, 38400 for NMEA HS / AIS).
    """

    def __init__(self, port: str, baud: int = 4800):
        self.port = port
        self.baud = baud
        self.connected = False
        self._serial: serial.Serial | None = None

    def __repr__(self) -> str:
        return f'SerialSource({self.port!r}, {self.baud})'

    def open(self) -> None:
        self.close()
        try:
            # timeout=0: non-blocking reads; read() waits with select itself.
            self._serial = serial.Serial(self.port, self.baud, timeout=0)
        except (serial.SerialException, OSError, ValueError) as err:
            raise SourceError(f'cannot open {self.port}: {err}') from None
        self.connected = True

    def read(self, timeout: float) -> bytes:
        if self._serial is None:
            raise SourceError(f'{self.port} is not open')
        try:
            if not _wait_readable(self._serial.fileno(), timeout):
                return b''
            # Readable but no data = hang-up (adapter unplugged, pty master closed):
            # pyserial raises SerialException for it.
            return self._serial.read(_CHUNK)
        except (serial.SerialException, OSError, ValueError, TypeError) as err:
            self.close()
            raise SourceError(f'{self.port}: {err}') from None

    def close(self) -> None:
        self.connected = False
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass  # already gone


class UdpSource:
    """Datagrams received on a UDP port (NMEA multiplexers, BlueOS, chart plotters).

    Each datagram is a whole number of sentences; one that does not end with a line end
    gets CRLF appended, so the next datagram cannot be glued onto its last sentence.

    Args:
        host: local address to bind ('0.0.0.0' for all interfaces, '127.0.0.1' for local).
        port: local UDP port to listen on (0 picks a free one; see ``address`` after open).
    """

    def __init__(self, host: str = '0.0.0.0', port: int = 10110):
        self.host = host
        self.port = port
        self.connected = False
        self.address: tuple[str, int] | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        return f'UdpSource({self.host!r}, {self.port})'

    def open(self) -> None:
        self.close()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError as err:
            sock.close()
            raise SourceError(f'cannot bind UDP {self.host}:{self.port}: {err}') from None
        sock.setblocking(False)
        self._socket = sock
        self.address = sock.getsockname()
        self.connected = True

    def read(self, timeout: float) -> bytes:
        if self._socket is None:
            raise SourceError('UDP socket is not open')
        try:
            if not _wait_readable(self._socket, timeout):
                return b''
            out = bytearray()
            while True:  # everything queued, without waiting again
                try:
                    datagram = self._socket.recv(_CHUNK)
                except BlockingIOError:
                    break
                out += datagram
                if datagram and datagram[-1:] not in (b'\n', b'\r'):
                    out += b'\r\n'
            return bytes(out)
        except OSError as err:
            self.close()
            raise SourceError(f'UDP {self.host}:{self.port}: {err}') from None

    def close(self) -> None:
        self.connected = False
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


class TcpSource:
    """A TCP client (NMEA over TCP: gpsd raw port, WiFi gateways, kplex).

    Args:
        host: server address.
        port: server TCP port (10110 is the registered NMEA-0183 port).
        connect_timeout: [s] longest wait for the connection.
    """

    def __init__(self, host: str = '127.0.0.1', port: int = 10110,
                 connect_timeout: float = 2.0):
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.connected = False
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        return f'TcpSource({self.host!r}, {self.port})'

    def open(self) -> None:
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port),
                                            timeout=self.connect_timeout)
        except OSError as err:
            raise SourceError(f'cannot connect to {self.host}:{self.port}: {err}') from None
        sock.setblocking(False)
        self._socket = sock
        self.connected = True

    def read(self, timeout: float) -> bytes:
        if self._socket is None:
            raise SourceError(f'TCP {self.host}:{self.port} is not connected')
        try:
            if not _wait_readable(self._socket, timeout):
                return b''
            data = self._socket.recv(_CHUNK)
        except BlockingIOError:
            return b''
        except OSError as err:
            self.close()
            raise SourceError(f'TCP {self.host}:{self.port}: {err}') from None
        if not data:  # orderly shutdown by the peer
            self.close()
            raise SourceError(f'TCP {self.host}:{self.port}: closed by the peer')
        return data

    def close(self) -> None:
        self.connected = False
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


@dataclass(frozen=True)
class BackoffConfig:
    """Args:
        backoff_initial: [s] wait before the first re-open attempt after a failure.
        backoff_max: [s] longest wait between attempts (the wait doubles up to it).
    """

    backoff_initial: float = 0.5
    backoff_max: float = 10.0

    def __post_init__(self):
        if not (math.isfinite(self.backoff_initial) and self.backoff_initial > 0.0):
            raise ValueError(f'backoff_initial must be > 0 s, got {self.backoff_initial}')
        if not (math.isfinite(self.backoff_max) and self.backoff_max >= self.backoff_initial):
            raise ValueError(f'backoff_max must be >= backoff_initial '
                             f'({self.backoff_initial} s), got {self.backoff_max}')


class Reconnecting:
    """A byte source that re-opens itself after failures; ``read`` never raises.

    The first ``read`` opens the source. After a failed open or a lost link the next
    attempt waits ``backoff_initial`` seconds, doubling after each failed attempt up to
    ``backoff_max``; a successful open resets the wait.

    Args:
        source: the source to manage.
        backoff_initial: [s] first wait.
        backoff_max: [s] longest wait.
        clock: monotonic clock [s] (injectable for tests).
    """

    def __init__(self, source: ByteSource, backoff_initial: float = 0.5,
                 backoff_max: float = 10.0, *,
                 clock: Callable[[], float] = time.monotonic):
        self.config = BackoffConfig(backoff_initial, backoff_max)
        self.source = source
        self._clock = clock
        self._backoff = self.config.backoff_initial
        self._next_attempt = -math.inf
        self._ever_opened = False
        self.reconnects = 0       # successful re-opens after a loss or a failed open
        self.disconnects = 0      # links lost while open
        self.open_failures = 0    # failed open attempts
        self.bytes_read = 0
        self.last_error = ''

    @property
    def connected(self) -> bool:
        return bool(self.source.connected)

    def read(self, timeout: float) -> bytes:
        """Bytes within ``timeout`` [s]; ``b''`` when none, while disconnected or waiting
        for the next attempt (it sleeps at most ``timeout`` then)."""
        if not self.source.connected and not self._try_open(timeout):
            return b''
        try:
            data = self.source.read(timeout)
        except OSError as err:
            self.disconnects += 1
            self.last_error = str(err)
            self.source.close()
            self._schedule_retry()
            return b''
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self.source.close()

    def status(self) -> dict[str, Any]:
        """Key-values for diagnostics."""
        return {'connected': self.connected, 'reconnects': self.reconnects,
                'disconnects': self.disconnects, 'open_failures': self.open_failures,
                'bytes_read': self.bytes_read, 'backoff_s': self._backoff,
                'last_error': self.last_error}

    def _try_open(self, timeout: float) -> bool:
        wait = self._next_attempt - self._clock()
        if wait > 0.0:
            time.sleep(min(wait, max(0.0, timeout)))
            if self._next_attempt > self._clock():
                return False
        try:
            self.source.open()
        except OSError as err:
            self.open_failures += 1
            self.last_error = str(err)
            self._schedule_retry()
            return False
        if self._ever_opened or self.open_failures:
            self.reconnects += 1
        self._ever_opened = True
        self._backoff = self.config.backoff_initial
        return True

    def _schedule_retry(self) -> None:
        self._next_attempt = self._clock() + self._backoff
        self._backoff = min(2.0 * self._backoff, self.config.backoff_max)
