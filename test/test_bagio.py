"""bagio: reading rosbag2 MCAP bags without rclpy, and its errors on broken bags."""
from pathlib import Path

import numpy as np
import pytest
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)

from asv_autonomy.bagio import (BagError, bag_info, deserialize, read_messages, serialize,
                                typestore, write_bag)

T0 = 1_700_000_000_000_000_000
LATCHED = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
              QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)


def float64(value):
    return serialize(typestore().types['std_msgs/msg/Float64'](data=value), 'std_msgs/msg/Float64')


def odometry(x):
    types = typestore().types
    stamp = types['builtin_interfaces/msg/Time'](sec=int(x), nanosec=0)
    pose = types['geometry_msgs/msg/PoseWithCovariance'](
        pose=types['geometry_msgs/msg/Pose'](
            position=types['geometry_msgs/msg/Point'](x=x, y=-x, z=0.0),
            orientation=types['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0)),
        covariance=np.arange(36, dtype=np.float64))
    vector = types['geometry_msgs/msg/Vector3']
    twist = types['geometry_msgs/msg/TwistWithCovariance'](
        twist=types['geometry_msgs/msg/Twist'](linear=vector(x=1.0, y=0.0, z=0.0),
                                               angular=vector(x=0.0, y=0.0, z=0.1)),
        covariance=np.zeros(36))
    msg = types['nav_msgs/msg/Odometry'](
        header=types['std_msgs/msg/Header'](stamp=stamp, frame_id='map'),
        child_frame_id='base_link', pose=pose, twist=twist)
    return serialize(msg, 'nav_msgs/msg/Odometry')


@pytest.fixture
def bag(tmp_path) -> Path:
    """Float64 at 10 Hz for 1 s on /thrust, Odometry at 2 Hz on /odom, one latched estop."""
    messages = [('/thrust', 'std_msgs/msg/Float64', T0 + i * 100_000_000, float64(i * 0.5))
                for i in range(11)]
    messages += [('/odom', 'nav_msgs/msg/Odometry', T0 + i * 500_000_000 + 1, odometry(float(i)))
                 for i in range(2)]
    bool_msg = typestore().types['std_msgs/msg/Bool'](data=True)
    messages.append(('/safety/estop', 'std_msgs/msg/Bool', T0 + 5,
                     serialize(bool_msg, 'std_msgs/msg/Bool')))
    path = tmp_path / 'bag'
    write_bag(path, messages, offered_qos={'/safety/estop': [LATCHED]})
    return path


def test_info_summarises_bag(bag):
    info = bag_info(bag)
    assert info['storage_id'] == 'mcap'
    assert info['message_count'] == 14
    assert info['start_ns'] == T0
    assert info['end_ns'] == T0 + 1_000_000_000
    assert info['duration_ns'] == 1_000_000_000
    assert [Path(f['path']).name for f in info['files']] == ['bag.mcap']
    assert info['size'] == (bag / 'bag.mcap').stat().st_size > 0
    assert set(info['topics']) == {'/thrust', '/odom', '/safety/estop'}
    assert info['topics']['/thrust'] == {'type': 'std_msgs/msg/Float64', 'count': 11,
                                         'serialization_format': 'cdr',
                                         'offered_qos_profiles': []}
    assert info['topics']['/safety/estop']['offered_qos_profiles'] == [LATCHED]


def test_info_of_mcap_file_alone(bag):
    info = bag_info(bag / 'bag.mcap')
    assert info['message_count'] == 14
    assert info['topics']['/odom']['count'] == 2


def test_read_messages_in_time_order_with_topic_filter(bag):
    messages = list(read_messages(bag))
    times = [m.log_time_ns for m in messages]
    assert times == sorted(times) and len(messages) == 14
    # Relative names match the recorded absolute ones.
    thrust = list(read_messages(bag, topics=['thrust']))
    assert [deserialize(m.msgtype, m.data).data for m in thrust] == [i * 0.5 for i in range(11)]
    assert {m.topic for m in thrust} == {'/thrust'}
    assert list(read_messages(bag, topics=['/nothing'])) == []
    window = list(read_messages(bag, topics=['/thrust'], start_ns=T0 + 200_000_000,
                                stop_ns=T0 + 500_000_000))
    assert [m.log_time_ns - T0 for m in window] == [200_000_000, 300_000_000, 400_000_000]


def test_deserialize_odometry_fields(bag):
    odom = [deserialize(m.msgtype, m.data) for m in read_messages(bag, topics=['/odom'])]
    assert [o.pose.pose.position.x for o in odom] == [0.0, 1.0]
    assert odom[1].pose.pose.position.y == -1.0
    assert odom[1].header.frame_id == 'map' and odom[1].child_frame_id == 'base_link'
    np.testing.assert_array_equal(odom[0].pose.covariance, np.arange(36))


def test_deserialize_errors():
    with pytest.raises(BagError, match='not in the ROS 2 Kilted type store'):
        deserialize('my_msgs/msg/Nope', b'')
    with pytest.raises(BagError, match='cannot decode a nav_msgs/msg/Odometry'):
        deserialize('nav_msgs/msg/Odometry', b'\x00\x01\x00\x00\x01')


def test_missing_path(tmp_path):
    with pytest.raises(BagError, match=f'{tmp_path / "nope"}: no such bag'):
        bag_info(tmp_path / 'nope')


def test_directory_that_is_not_a_bag(tmp_path):
    (tmp_path / 'notes.txt').write_text('hello')
    with pytest.raises(BagError, match='not a rosbag2 bag .*no metadata.yaml'):
        bag_info(tmp_path)
    with pytest.raises(BagError, match='not a rosbag2 bag'):
        bag_info(tmp_path / 'notes.txt')


@pytest.mark.parametrize('text', ['rosbag2_bagfile_information: {version: 9}\n',
                                  'just a string\n',
                                  'rosbag2_bagfile_information: [\n'])
def test_corrupt_metadata(bag, text):
    (bag / 'metadata.yaml').write_text(text)
    with pytest.raises(BagError, match=f'{bag}: corrupt or truncated bag'):
        bag_info(bag)
    with pytest.raises(BagError, match=f'{bag}: corrupt or truncated bag'):
        list(read_messages(bag))


@pytest.mark.parametrize('keep', [0, 8, 0.5])
def test_truncated_mcap(bag, keep):
    mcap = bag / 'bag.mcap'
    data = mcap.read_bytes()
    mcap.write_bytes(data[:int(len(data) * keep) if isinstance(keep, float) else keep])
    for path in (bag, mcap):
        with pytest.raises(BagError, match=f'{path}: corrupt or truncated bag'):
            bag_info(path)
        with pytest.raises(BagError, match=f'{path}: corrupt or truncated bag'):
            list(read_messages(path))


def test_corrupt_chunk_is_reported_while_reading(bag):
    mcap = bag / 'bag.mcap'
    data = bytearray(mcap.read_bytes())
    # The summary (at the end) stays valid; garble the first chunk's records.
    data[60:200] = b'\xff' * 140
    mcap.write_bytes(bytes(data))
    with pytest.raises(BagError, match=f'{bag}: '):
        list(read_messages(bag))
