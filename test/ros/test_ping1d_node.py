"""ping1d_driver node against a fake Ping1D on UDP loopback: requests in, depth out,
malformed frames counted on `diagnostics`. Real node process over DDS (private netns)."""
import socket
import subprocess
import sys
import time

import pytest
import rclpy
from brping import definitions
from brping.pingmessage import PingMessage, PingParser
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import Range

from asv_autonomy.ros import qos
from asv_autonomy.ros.conversions import read_diagnostics

PING1D = {**definitions.payload_dict_common, **definitions.payload_dict_ping1d}


def distance_frame(distance_mm: int, confidence: int) -> bytes:
    msg = PingMessage(definitions.PING1D_DISTANCE, payload_dict=PING1D)
    msg.distance, msg.confidence, msg.scan_length = distance_mm, confidence, 30000
    return bytes(msg.pack_msg_data())


@pytest.mark.ros
def test_requests_are_answered_with_depth_and_bad_frames_are_counted(ros_env):
    device = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    device.bind(('127.0.0.1', 0))
    device.setblocking(False)
    port = device.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, '-c',
         'import sys; from asv_autonomy.ros.ping1d_node import main; sys.exit(main())',
         '--ros-args', '-p', 'source:=udp', '-p', 'host:=127.0.0.1', '-p', f'port:={port}',
         '-p', 'ping1d.rate:=20.0'],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('ping1d_node_test', context=context)
    ranges, statuses = [], []
    node.create_subscription(Range, 'sensors/sonar/depth', ranges.append, qos.SENSOR)
    node.create_subscription(DiagnosticArray, 'diagnostics', lambda m: statuses.extend(
        s for s in read_diagnostics(m) if s['name'] == '/ping1d_driver'), 10)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    parser = PingParser(PING1D)
    requests = 0
    good = distance_frame(4321, 90)
    corrupted = bytearray(good)
    corrupted[9] ^= 0x01  # checksum no longer matches
    link = f'udp:127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
            try:
                data, address = device.recvfrom(1024)
            except BlockingIOError:
                data = b''
            for byte in data:
                if parser.parse_byte(byte) == PingParser.NEW_MESSAGE and \
                        parser.rx_msg.message_id == definitions.COMMON_GENERAL_REQUEST:
                    assert parser.rx_msg.requested_id == definitions.PING1D_DISTANCE
                    requests += 1
                    # every other answer comes with line noise and a corrupted frame
                    reply = good if requests % 2 else b'\x07noise' + bytes(corrupted) + good
                    device.sendto(reply, address)
            values = statuses[-1]['values'] if statuses else {}
            if len(ranges) >= 3 and values.get(f'dropped/{link}/bad_checksum', 0) >= 1 \
                    and values.get(f'dropped/{link}/garbage', 0) >= 1:
                break
        assert requests >= 3, 'the node sent no general_request'
        assert len(ranges) >= 3, 'no depth published'
        r = ranges[-1]
        assert r.range == pytest.approx(4.321) and r.header.frame_id == 'sonar_link'
        assert r.variance > 0.0 and r.min_range == pytest.approx(0.3)
        values = statuses[-1]['values']
        assert values[f'dropped/{link}/bad_checksum'] >= 1, values
        assert values[f'dropped/{link}/garbage'] >= 1, values
        assert values['link_open'] is True
        assert process.poll() is None, 'the node died'
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        process.terminate()
        output, _ = process.communicate(timeout=10)
        device.close()
    assert 'Traceback' not in output, output


@pytest.mark.ros
def test_bad_parameter_is_refused(ros_env):
    result = subprocess.run(
        [sys.executable, '-c',
         'import sys; from asv_autonomy.ros.ping1d_node import main; sys.exit(main())',
         '--ros-args', '-p', 'ping1d.min_confidence:=0'],
        env=ros_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'ping1d.min_confidence' in result.stdout + result.stderr
