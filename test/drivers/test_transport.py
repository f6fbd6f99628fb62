"""Byte sources on loopback and pseudo-terminals; reconnect with backoff when the link goes."""
import os
import socket
import threading
import time
import tty

import pytest

from asv_autonomy.drivers.transport import (BackoffConfig, Reconnecting, SerialSource,
                                            SourceError, TcpSource, UdpSource)

LINE = b'$INMTW,17.9,C*1B\r\n'


def _read_until(source, size, timeout=5.0):
    data = b''
    deadline = time.monotonic() + timeout
    while len(data) < size and time.monotonic() < deadline:
        data += source.read(0.05)
    return data


# --- serial over a pseudo-terminal -------------------------------------------------------

def _open_pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def test_serial_reads_a_pty_and_times_out_quietly():
    master, slave, path = _open_pty()
    source = SerialSource(path, 9600)
    try:
        source.open()
        assert source.connected
        start = time.monotonic()
        assert source.read(0.1) == b''
        assert 0.08 <= time.monotonic() - start < 1.0
        os.write(master, LINE * 3)
        assert _read_until(source, 3 * len(LINE)) == LINE * 3
    finally:
        source.close()
        os.close(master)
        os.close(slave)
    assert not source.connected


def test_serial_open_of_a_missing_port_raises_source_error(tmp_path):
    source = SerialSource(str(tmp_path / 'ttyUSB9'), 4800)
    with pytest.raises(SourceError, match='cannot open'):
        source.open()
    assert not source.connected
    with pytest.raises(SourceError):
        source.read(0.01)


def test_pty_master_closing_is_a_lost_link_then_reconnect_to_the_new_device(tmp_path):
    # A udev-style symlink (/dev/gps) pointing at the current device, as after re-plugging.
    link = tmp_path / 'gps'
    master, slave, path = _open_pty()
    link.symlink_to(path)
    source = Reconnecting(SerialSource(str(link), 4800), backoff_initial=0.05,
                          backoff_max=0.2)
    try:
        source.read(0.01)  # opens it (opening a serial port discards what came before)
        os.write(master, LINE)
        assert _read_until(source, len(LINE)) == LINE
        assert source.connected and source.reconnects == 0
        os.close(master)  # the adapter is unplugged
        os.close(slave)
        assert _read_until(source, 1, timeout=0.5) == b''
        assert not source.connected and source.disconnects == 1
        time.sleep(0.4)
        source.read(0.01)
        assert source.open_failures >= 1  # the device is gone: re-open attempts fail
        master, slave, path = _open_pty()  # plugged in again, maybe under another name
        link.unlink()
        link.symlink_to(path)
        deadline = time.monotonic() + 3.0
        while not source.connected and time.monotonic() < deadline:
            source.read(0.05)
        os.write(master, LINE)
        assert _read_until(source, len(LINE)) == LINE
        status = source.status()
        assert status['connected'] and status['reconnects'] == 1
        assert status['bytes_read'] == 2 * len(LINE) and 'gps' in status['last_error']
    finally:
        source.close()
        os.close(master)
        os.close(slave)


# --- UDP -----------------------------------------------------------------------------------

def test_udp_datagrams_on_loopback():
    source = UdpSource('127.0.0.1', 0)
    source.open()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert source.read(0.05) == b''
        sender.sendto(LINE, source.address)
        sender.sendto(b'$GPGGA,no line end*00', source.address)  # one sentence per datagram
        data = _read_until(source, len(LINE) + 23)
        assert data == LINE + b'$GPGGA,no line end*00\r\n'
    finally:
        sender.close()
        source.close()


def test_udp_port_in_use_by_another_program_is_a_source_error():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(('127.0.0.1', 0))
    try:
        with pytest.raises(SourceError, match='cannot bind'):
            UdpSource('127.0.0.1', blocker.getsockname()[1]).open()
    finally:
        blocker.close()


# --- TCP -----------------------------------------------------------------------------------

def _listen(port=0):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('127.0.0.1', port))
    server.listen(1)
    return server


def test_tcp_reads_and_detects_the_peer_closing():
    server = _listen()
    source = TcpSource('127.0.0.1', server.getsockname()[1])
    try:
        source.open()
        peer, _ = server.accept()
        peer.sendall(LINE)
        assert _read_until(source, len(LINE)) == LINE
        peer.close()
        with pytest.raises(SourceError, match='closed by the peer'):
            _read_until(source, 1)
        assert not source.connected
    finally:
        source.close()
        server.close()


def test_tcp_server_gone_and_back_reconnects_with_backoff():
    server = _listen()
    port = server.getsockname()[1]
    source = Reconnecting(TcpSource('127.0.0.1', port), backoff_initial=0.05,
                          backoff_max=0.2)
    accepted = []

    def serve(server):
        peer, _ = server.accept()
        accepted.append(peer)
        peer.sendall(LINE)

    try:
        thread = threading.Thread(target=serve, args=(server,), daemon=True)
        thread.start()
        assert _read_until(source, len(LINE)) == LINE
        thread.join(2.0)
        accepted[0].close()  # the server goes away
        server.close()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert source.read(0.05) == b''
        status = source.status()
        assert status['disconnects'] == 1 and not status['connected']
        # attempts at +0.05, +0.15, +0.35, +0.55, +0.75 ... s: about 5 in one second,
        # far fewer than the ~20 reads
        assert 3 <= status['open_failures'] <= 8, status
        assert status['backoff_s'] == 0.2
        server = _listen(port)  # the server is back
        thread = threading.Thread(target=serve, args=(server,), daemon=True)
        thread.start()
        assert _read_until(source, len(LINE), timeout=3.0) == LINE
        assert source.status()['reconnects'] == 1 and source.connected
        assert source.status()['backoff_s'] == 0.05  # reset after a success
    finally:
        thread.join(2.0)
        for peer in accepted:
            peer.close()
        source.close()
        server.close()


# --- backoff schedule ----------------------------------------------------------------------

class _FlakySource:
    """Fails to open ``failures`` times, then works; records when open was tried."""

    def __init__(self, clock, failures):
        self.clock, self.failures = clock, failures
        self.attempts = []
        self.connected = False

    def open(self):
        self.attempts.append(self.clock())
        if len(self.attempts) <= self.failures:
            raise SourceError('no such device')
        self.connected = True

    def read(self, timeout):
        if self.failures < 0:
            raise SourceError('link lost')
        return b'x'

    def close(self):
        self.connected = False


def test_backoff_doubles_up_to_the_maximum_and_resets():
    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    flaky = _FlakySource(clock, failures=4)
    # powers of two: exact float arithmetic
    source = Reconnecting(flaky, backoff_initial=1 / 16, backoff_max=1 / 4, clock=clock)
    for step in range(100):  # a read every 1/64 s, without waiting (timeout 0)
        now[0] = step / 64
        source.read(0.0)
    # waits 1/16, 1/8, 1/4, 1/4 after the failures
    assert flaky.attempts == [0.0, 4 / 64, 12 / 64, 28 / 64, 44 / 64]
    assert source.open_failures == 4 and source.reconnects == 1
    assert source.bytes_read == 100 - 44 and source.status()['backoff_s'] == 1 / 16
    # a lost link waits backoff_initial before the first re-open
    flaky.failures = -1
    assert source.read(0.0) == b'' and source.disconnects == 1
    flaky.failures = 10 ** 6
    now[0] += 3 / 64
    source.read(0.0)
    assert len(flaky.attempts) == 5
    now[0] += 1 / 64
    source.read(0.0)
    assert len(flaky.attempts) == 6


@pytest.mark.parametrize('initial, maximum', [(0.0, 1.0), (1.0, 0.5), (float('nan'), 1.0),
                                              (0.1, float('inf'))])
def test_bad_backoff_is_refused(initial, maximum):
    with pytest.raises(ValueError):
        BackoffConfig(initial, maximum)
