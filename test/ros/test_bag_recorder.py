"""`asv bag record`: a recorder process records what a node publishes, message by message."""
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rosbags.interfaces import QosDurability, QosReliability

from asv_autonomy.bagio import bag_info, deserialize, read_messages
from asv_autonomy.cli.main import main

pytestmark = pytest.mark.ros

RECORD = [sys.executable, '-m', 'asv_autonomy.cli.main', 'bag', 'record']
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
RELIABLE = QoSProfile(depth=50)


@pytest.fixture
def node(ros_env):
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node('bag_test_publisher', context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def header(i, frame):
    from std_msgs.msg import Header
    msg = Header(frame_id=frame)
    msg.stamp.sec, msg.stamp.nanosec = 1000 + i, 1000 * i
    return msg


def navsatfix(i):
    from sensor_msgs.msg import NavSatFix
    msg = NavSatFix(header=header(i, 'gps_link'), latitude=47.0 + 1e-5 * i,
                    longitude=8.5 - 1e-5 * i, altitude=400.0 + i, position_covariance_type=2)
    msg.status.status, msg.status.service = 0, 1
    msg.position_covariance = np.arange(9, dtype=float) * i
    return msg


def imu(i):
    from sensor_msgs.msg import Imu
    msg = Imu(header=header(i, 'imu_link'))
    msg.orientation.z, msg.orientation.w = np.sin(0.01 * i), np.cos(0.01 * i)
    msg.angular_velocity.z = 0.1 * i
    msg.linear_acceleration.x, msg.linear_acceleration.z = -0.5 * i, 9.81
    msg.orientation_covariance[0] = 1e-3 * i
    return msg


def image(i):
    from sensor_msgs.msg import Image
    pixels = np.random.default_rng(i).integers(0, 256, (384, 512, 3), dtype=np.uint8)
    return Image(header=header(i, 'camera_link'), height=384, width=512, encoding='rgb8',
                 step=512 * 3, data=pixels.tobytes())


def odometry(i):
    from nav_msgs.msg import Odometry
    msg = Odometry(header=header(i, 'map'), child_frame_id='base_link')
    msg.pose.pose.position.x, msg.pose.pose.position.y = 2.0 * i, -1.0 * i
    msg.pose.pose.orientation.w = 1.0
    msg.pose.covariance = np.eye(6).ravel() * i
    msg.twist.twist.linear.x = 1.5
    return msg


def diagnostics(i):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    return DiagnosticArray(header=header(i, ''), status=[
        DiagnosticStatus(level=bytes([i % 3]), name=f'channel{k}', message=f'ok {i}',
                         hardware_id='asv', values=[KeyValue(key='score', value=str(0.1 * i)),
                                                    KeyValue(key='threshold', value='0.5')])
        for k in range(2)])


def float64(i):
    from std_msgs.msg import Float64
    return Float64(data=0.25 * i - 2.0)


def assert_same(sent, recorded, path='msg'):
    """Field-by-field comparison of an rclpy message with its rosbags decoding."""
    for field in sent.get_fields_and_field_types():
        a, b = getattr(sent, field), getattr(recorded, field)
        where = f'{path}.{field}'
        if hasattr(a, 'get_fields_and_field_types'):
            assert_same(a, b, where)
        elif isinstance(a, list) and a and hasattr(a[0], 'get_fields_and_field_types'):
            assert len(a) == len(b), where
            for k, (x, y) in enumerate(zip(a, b)):
                assert_same(x, y, f'{where}[{k}]')
        elif isinstance(a, bytes) and not isinstance(b, bytes):
            np.testing.assert_array_equal(np.frombuffer(a, np.uint8), b, err_msg=where)
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=where)


def wait_for_subscribers(publishers, timeout=20.0):
    end = time.monotonic() + timeout
    while any(p.get_subscription_count() == 0 for p in publishers):
        assert time.monotonic() < end, 'the recorder did not subscribe'
        time.sleep(0.05)


def test_record_round_trip(node, ros_env, tmp_path, capsys):
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import Image, Imu, NavSatFix
    from std_msgs.msg import Bool, Float64

    # Latched before the recorder exists: transient local durability must capture it.
    estop = node.create_publisher(Bool, 'safety/estop', LATCHED)
    estop.publish(Bool(data=True))
    bag = tmp_path / 'bag'
    recorder = subprocess.Popen(RECORD + ['-a', '-o', str(bag), '--exclude',
                                          '^/(rosout|parameter_events)$'],
                                env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    try:
        spec = {  # topic: (type, make, count, qos)
            '/thrusters/left/thrust': (Float64, float64, 30, RELIABLE),
            '/sensors/gps/fix': (NavSatFix, navsatfix, 20, qos_profile_sensor_data),
            '/sensors/imu/data': (Imu, imu, 20, qos_profile_sensor_data),
            '/sensors/camera/image_raw': (Image, image, 3, RELIABLE),
            '/odometry/filtered': (Odometry, odometry, 20, RELIABLE),
        }
        publishers = {topic: node.create_publisher(t, topic, qos)
                      for topic, (t, _, _, qos) in spec.items()}
        wait_for_subscribers([estop, *publishers.values()])
        sent = {'/safety/estop': [Bool(data=True)]}
        started = time.time_ns()
        # Images first, until delivered: a best-effort sample sent while a large image is
        # in flight can be dropped by the transport (nothing the recorder can change).
        image_topic = '/sensors/camera/image_raw'
        sent[image_topic] = [image(i) for i in range(spec[image_topic][2])]
        for msg in sent[image_topic]:
            publishers[image_topic].publish(msg)
        publishers[image_topic].wait_for_all_acked(Duration(seconds=5))
        for i in range(30):
            for topic, (_, make, count, _) in spec.items():
                if i < count and topic != image_topic:
                    sent.setdefault(topic, []).append(make(i))
                    publishers[topic].publish(sent[topic][-1])
            time.sleep(0.005)
        # A topic that appears after recording started is discovered and recorded too.
        late = node.create_publisher(DiagnosticArray, 'diagnostics', RELIABLE)
        wait_for_subscribers([late])
        sent['/diagnostics'] = [diagnostics(i) for i in range(4)]
        for msg in sent['/diagnostics']:
            late.publish(msg)
        for publisher in [*publishers.values(), late]:
            publisher.wait_for_all_acked(Duration(seconds=5))
        time.sleep(0.5)
        stopped = time.time_ns()
    finally:
        recorder.send_signal(signal.SIGINT)
        output, _ = recorder.communicate(timeout=20)
    assert recorder.returncode == 0, output
    assert f'into {bag}' in output

    info = bag_info(bag)
    assert {name: t['count'] for name, t in info['topics'].items()} == {
        topic: len(msgs) for topic, msgs in sent.items()}
    qos = {name: t['offered_qos_profiles'] for name, t in info['topics'].items()}
    assert qos['/safety/estop'][0].durability == QosDurability.TRANSIENT_LOCAL
    assert qos['/sensors/imu/data'][0].reliability == QosReliability.BEST_EFFORT
    assert qos['/odometry/filtered'][0].reliability == QosReliability.RELIABLE

    recorded = {}
    for message in read_messages(bag):
        recorded.setdefault(message.topic, []).append(message)
    for topic, msgs in sent.items():
        assert len(recorded[topic]) == len(msgs), topic
        for k, (original, message) in enumerate(zip(msgs, recorded[topic])):
            assert message.msgtype == info['topics'][topic]['type']
            assert_same(original, deserialize(message.msgtype, message.data), f'{topic}[{k}]')
            # Log time is the receive time on the system clock (the latched estop
            # arrives as soon as the recorder subscribes, before `started`).
            assert message.log_time_ns < stopped
            assert topic == '/safety/estop' or message.log_time_ns > started

    assert main(['bag', 'info', str(bag)]) == 0
    text = capsys.readouterr().out
    assert f"Messages:          {info['message_count']}" in text
    assert 'Storage id:        mcap' in text
    assert ('Topic: /sensors/camera/image_raw | Type: sensor_msgs/msg/Image | Count: 3 | '
            'Serialization Format: cdr') in text
    assert 'Topic: /diagnostics | Type: diagnostic_msgs/msg/DiagnosticArray | Count: 4' in text


def test_record_given_topics_with_sim_time(node, ros_env, tmp_path):
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import Float64

    bag = tmp_path / 'sim'
    recorder = subprocess.Popen(RECORD + ['thrust', '/clock', '-o', str(bag), '--use-sim-time'],
                                env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    try:
        clock = node.create_publisher(Clock, '/clock', RELIABLE)
        thrust = node.create_publisher(Float64, 'thrust', RELIABLE)
        ignored = node.create_publisher(Float64, 'not_recorded', RELIABLE)
        wait_for_subscribers([clock, thrust])
        end = time.monotonic() + 20
        while clock.get_subscription_count() < 2:  # the recorder's time source and recording
            assert time.monotonic() < end
            time.sleep(0.05)
        for i in range(10):
            stamp = Clock()
            stamp.clock.sec = 5000 + i
            clock.publish(stamp)
            time.sleep(0.05)  # the recorder's clock follows /clock before the next message
            thrust.publish(float64(i))
            ignored.publish(float64(i))
            time.sleep(0.02)
        for publisher in (clock, thrust):
            publisher.wait_for_all_acked(Duration(seconds=5))
        time.sleep(0.3)
    finally:
        recorder.send_signal(signal.SIGTERM)
        output, _ = recorder.communicate(timeout=20)
    assert recorder.returncode == 0, output
    messages = list(read_messages(bag, topics=['/thrust']))
    assert [deserialize(m.msgtype, m.data).data for m in messages] == \
        [float64(i).data for i in range(10)]
    # Stamped with ROS time from /clock: second i of the simulated clock.
    assert [m.log_time_ns // 1_000_000_000 for m in messages] == [5000 + i for i in range(10)]
    assert set(bag_info(bag)['topics']) == {'/thrust', '/clock'}


def test_record_stops_after_max_duration(ros_env, tmp_path):
    bag = tmp_path / 'short'
    started = time.monotonic()
    done = subprocess.run(RECORD + ['-a', '-o', str(bag), '--max-duration', '1'], env=ros_env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 15
    # A complete bag (metadata and MCAP summary written), whatever it holds.
    assert bag_info(bag)['storage_id'] == 'mcap'
