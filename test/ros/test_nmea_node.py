"""nmea_driver node: NMEA over UDP / a pty serial port -> NavSatFix, Range, Temperature;
rejected lines and the connection state on `diagnostics`.

Real node processes over DDS: run inside a private network namespace (`make test`).
"""
import functools
import math
import operator
import os
import socket
import signal
import subprocess
import sys
import time
import tty

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import NavSatFix, NavSatStatus, Range, Temperature

from asv_autonomy.ros import qos
from asv_autonomy.ros.conversions import ERROR, read_diagnostics

import node_process


def nmea(body: str) -> bytes:
    checksum = functools.reduce(operator.xor, body.encode(), 0)
    return f'${body}*{checksum:02X}\r\n'.encode()


def _node_command(*ros_args):
    return [sys.executable, '-c',
            'import sys; from asv_autonomy.ros.nmea_node import main; sys.exit(main())',
            '--ros-args', *ros_args]


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Harness:
    """A test node collecting the driver's topics and diagnostics."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node('nmea_node_test', context=self.context)
        self.fixes, self.depths, self.temperatures, self.statuses = [], [], [], []
        self.node.create_subscription(NavSatFix, 'sensors/gps/fix', self.fixes.append,
                                      qos.SENSOR)
        self.node.create_subscription(Range, 'sensors/sonar/depth', self.depths.append,
                                      qos.SENSOR)
        self.node.create_subscription(Temperature, 'sensors/water/temperature',
                                      self.temperatures.append, qos.SENSOR)
        self.node.create_subscription(DiagnosticArray, 'diagnostics', lambda m: self.statuses
                                      .extend(s for s in read_diagnostics(m)
                                              if s['name'] == '/nmea_driver'), 10)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def spin_until(self, condition, timeout, action=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if action is not None:
                action()
            self.executor.spin_once(timeout_sec=0.1)
            if condition():
                return True
        return False

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)



def _stop(process) -> str:
    return node_process.stop(process, signal.SIGTERM)



@pytest.mark.ros
def test_udp_sentences_become_fix_depth_temperature_and_rejections_are_counted(ros_env):
    port = _free_udp_port()
    process = subprocess.Popen(
        _node_command('-p', 'source:=udp', '-p', 'host:=127.0.0.1', '-p', f'port:={port}',
                      '-p', 'sonar_frame:=sounder', '-p', 'max_range:=50.0'),
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    harness = Harness()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    second = [0]

    def send_epoch():
        # One fix epoch, one no-fix epoch, a depth, a temperature, a bad checksum and a
        # malformed line, with times that go forward (the node may miss the first ones).
        second[0] += 2
        fix_time = f'1200{second[0] % 60:02d}'
        void_time = f'1200{(second[0] + 1) % 60:02d}'
        datagram = (nmea(f'GPGGA,{fix_time},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,')
                    + nmea(f'GPGGA,{void_time},,,,,0,00,,,M,,M,,')
                    + nmea('SDDBT,034.25,f,010.44,M,005.64,F') + b'$INMTW,17.9,C*1B\r\n'
                    + b'$GPGGA,120000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00\r\n'
                    + nmea('GPGGA,12x000,,,,,1,,,,,,,,'))
        sender.sendto(datagram, ('127.0.0.1', port))

    def complete():
        if not (harness.statuses and harness.depths and harness.temperatures):
            return False
        values = harness.statuses[-1]['values']
        statuses = {f.status.status for f in harness.fixes}
        return ({NavSatStatus.STATUS_FIX, NavSatStatus.STATUS_NO_FIX} <= statuses
                and values.get('dropped/nmea/bad_checksum', 0) > 0
                and values.get('dropped/nmea/malformed', 0) > 0)

    try:
        assert harness.spin_until(complete, 30.0, send_epoch), (
            len(harness.fixes), harness.statuses[-1:])
        fix = next(f for f in harness.fixes if f.status.status == NavSatStatus.STATUS_FIX)
        assert fix.header.frame_id == 'gps_link'
        assert fix.latitude == pytest.approx(48 + 7.038 / 60)
        assert fix.position_covariance[0] == pytest.approx((0.9 * 3.0) ** 2)
        assert fix.position_covariance_type == NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
        no_fix = next(f for f in harness.fixes
                      if f.status.status == NavSatStatus.STATUS_NO_FIX)
        assert math.isnan(no_fix.latitude)
        depth = harness.depths[-1]
        assert depth.header.frame_id == 'sounder' and depth.range == pytest.approx(10.44)
        assert depth.max_range == 50.0
        assert harness.temperatures[-1].temperature == pytest.approx(17.9)
        # stamped with the node clock at receive time (wall time here)
        assert abs(fix.header.stamp.sec - time.time()) < 60
        values = harness.statuses[-1]['values']
        assert values['nmea/GGA'] >= 2 and values['nmea/no_fix'] >= 1
        assert values['connected'] is True and values['published/sensors/gps/fix'] >= 2
        assert process.poll() is None
    finally:
        sender.close()
        harness.close()
        output = _stop(process)
    assert 'Traceback' not in output, output


@pytest.mark.ros
def test_missing_serial_port_is_an_error_until_it_appears(ros_env, tmp_path):
    link = tmp_path / 'gps'  # not there yet: the adapter is unplugged
    process = subprocess.Popen(
        _node_command('-p', f'device:={link}', '-p', 'baud:=38400',
                      '-p', 'backoff_initial:=0.1', '-p', 'backoff_max:=0.4'),
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    harness = Harness()
    master = slave = None
    try:
        assert harness.spin_until(
            lambda: harness.statuses and harness.statuses[-1]['values']['open_failures'] >= 2,
            30.0), harness.statuses[-1:]
        status = harness.statuses[-1]
        assert status['level'] == ERROR and 'disconnected' in status['message']
        assert status['values']['connected'] is False
        master, slave = os.openpty()  # plugged in
        tty.setraw(slave)
        link.symlink_to(os.ttyname(slave))
        line = nmea('GPGLL,6005.071,N,02332.346,E,095559,A,D')
        assert harness.spin_until(lambda: harness.fixes, 20.0,
                                  lambda: os.write(master, line))
        assert harness.fixes[-1].status.status == NavSatStatus.STATUS_SBAS_FIX
        assert harness.spin_until(
            lambda: harness.statuses[-1]['values']['connected'] is True, 5.0)
        assert harness.statuses[-1]['values']['reconnects'] == 1
        assert harness.statuses[-1]['level'] != ERROR
        assert process.poll() is None
    finally:
        harness.close()
        output = _stop(process)
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
    assert 'Traceback' not in output, output


@pytest.mark.ros
@pytest.mark.parametrize('parameter, value', [
    ('source', 'pigeon'), ('backoff_max', '0.01'), ('depth_reference', 'keel'),
    ('max_range', '-1.0')])
def test_bad_parameter_is_refused_with_its_name(ros_env, parameter, value):
    result = subprocess.run(_node_command('-p', f'{parameter}:={value}'), env=ros_env,
                            capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert parameter in output and 'Traceback' not in output, output
