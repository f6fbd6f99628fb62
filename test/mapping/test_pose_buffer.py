"""PoseBuffer: readings placed at the pose interpolated at their stamp."""
import math

import numpy as np
import pytest

from asv_autonomy.mapping.pose_buffer import PoseBuffer, PoseBufferConfig
from asv_autonomy.measurements import InvalidInput, PlanarOdometry


def odom(t, x=0.0, y=0.0, yaw=0.0):
    return PlanarOdometry(stamp=t, x=x, y=y, yaw=yaw)


def buffer_with(*poses, **config):
    buffer = PoseBuffer(PoseBufferConfig(**config))
    for pose in poses:
        buffer.add_pose(pose)
    return buffer


def test_position_is_linear_between_poses():
    buffer = buffer_with(odom(10.0, 0.0, 0.0), odom(10.1, 1.0, -2.0))
    np.testing.assert_allclose(buffer.pose_at(10.025), [0.25, -0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(buffer.pose_at(10.1), [1.0, -2.0, 0.0])


def test_yaw_is_interpolated_the_short_way_across_pi():
    buffer = buffer_with(odom(0.0, yaw=math.pi - 0.1), odom(0.1, yaw=-math.pi + 0.1))
    yaw = buffer.pose_at(0.05)[2]
    assert abs(abs(yaw) - math.pi) < 1e-9          # through pi, not through 0
    quarter = buffer.pose_at(0.025)[2]
    assert quarter == pytest.approx(math.pi - 0.05)
    three_quarters = buffer.pose_at(0.075)[2]
    assert three_quarters == pytest.approx(-math.pi + 0.05)


def test_lever_arm_is_rotated_by_the_heading():
    buffer = buffer_with(odom(0.0, 10.0, 20.0, yaw=math.pi / 2),
                         odom(0.1, 10.0, 20.0, yaw=math.pi / 2))
    buffer.hold('sonar', 0.05, 3.0, lever_arm=(1.0, 0.5))   # 1 m forward, 0.5 m left
    (placed,), refused = buffer.release()
    assert not refused
    # Facing north: forward is +y, left is -x.
    assert (placed.key, placed.stamp, placed.value) == ('sonar', 0.05, 3.0)
    assert placed.x == pytest.approx(9.5) and placed.y == pytest.approx(21.0)


def test_reading_ahead_of_odometry_waits_for_its_pose():
    buffer = buffer_with(odom(1.0, 0.0, 0.0), max_wait=0.5)
    buffer.hold('t', 1.04, 15.0)
    assert buffer.release() == ([], []) and buffer.held == 1
    buffer.add_pose(odom(1.02, 2.0, 0.0))            # not yet at the reading's stamp
    assert buffer.release() == ([], [])
    buffer.add_pose(odom(1.06, 6.0, 0.0))
    (placed,), refused = buffer.release()
    assert not refused and buffer.held == 0
    assert placed.x == pytest.approx(4.0)


def test_held_reading_in_an_odometry_gap_is_refused_when_the_pose_comes():
    buffer = buffer_with(odom(1.0), tolerance=0.1, max_gap=0.5, max_wait=2.0)
    buffer.hold('t', 1.5, 15.0)
    buffer.add_pose(odom(2.0))
    placed, ((reading, error),) = buffer.release()
    assert not placed and reading.stamp == 1.5 and error.reason == 'no_pose'


@pytest.mark.parametrize('stamp, why', [
    (3.0, 'ahead'),            # newer than the latest pose by more than max_wait
    (0.5, 'older'),            # older than the history
    (1.55, 'nearest pose'),    # in the gap between 1.2 and 1.9
])
def test_readings_without_a_pose_are_refused(stamp, why):
    buffer = buffer_with(odom(0.9), odom(1.0), odom(1.2), odom(1.9), history=0.5,
                         tolerance=0.1, max_gap=0.3, max_wait=0.5)
    with pytest.raises(InvalidInput) as error:
        buffer.hold('t', stamp, 1.0)
    assert error.value.reason == 'no_pose' and why in str(error.value)
    assert buffer.release() == ([], [])


def test_slow_odometry_still_places_readings_between_its_poses():
    # Odometry paced by 0.5 Hz fixes (a replayed NMEA log): a reading 1 s from both poses
    # is interpolated; past the last pose only the tolerance counts.
    buffer = buffer_with(odom(10.0, 0.0), odom(12.0, 6.0))
    np.testing.assert_allclose(buffer.pose_at(11.0)[:2], [3.0, 0.0])
    with pytest.raises(InvalidInput, match='nearest pose'):
        buffer.pose_at(13.0)
    gappy = buffer_with(odom(10.0), odom(14.0))   # 4 s apart: a gap (max_gap 3 s)
    with pytest.raises(InvalidInput, match='nearest pose'):
        gappy.pose_at(12.0)


def test_readings_before_the_first_pose_wait_for_it():
    buffer = PoseBuffer(PoseBufferConfig(tolerance=0.1))
    buffer.hold('t', 0.5, 1.0)      # long before the first pose: refused when it comes
    buffer.hold('t', 0.95, 2.0)     # within the tolerance of the first pose: placed
    buffer.hold('t', 1.05, 3.0)     # after it: still waiting
    assert buffer.release() == ([], []) and buffer.held == 3
    buffer.add_pose(odom(1.0, 7.0))
    (placed,), ((refused, error),) = buffer.release()
    assert (placed.value, placed.x) == (2.0, 7.0)
    assert refused.value == 1.0 and error.reason == 'no_pose'
    assert buffer.held == 1


def test_without_odometry_the_oldest_held_readings_are_refused():
    buffer = PoseBuffer(PoseBufferConfig(max_held=3))
    for k in range(5):
        buffer.hold('t', float(k), float(k))
    placed, refused = buffer.release()
    assert not placed and [r.value for r, _ in refused] == [0.0, 1.0]
    assert all(e.reason == 'no_pose' for _, e in refused) and buffer.held == 3


def test_just_outside_the_history_ends_within_tolerance_uses_the_end_pose():
    buffer = buffer_with(odom(1.0, 1.0), odom(1.1, 2.0), tolerance=0.1)
    np.testing.assert_allclose(buffer.pose_at(0.95), [1.0, 0.0, 0.0])
    with pytest.raises(InvalidInput):
        buffer.pose_at(0.85)


def test_nan_reading_and_nan_pose_are_refused():
    buffer = buffer_with(odom(1.0))
    with pytest.raises(InvalidInput) as error:
        buffer.hold('t', 1.0, math.nan)
    assert error.value.reason == 'nan'
    with pytest.raises(InvalidInput) as error:
        buffer.add_pose(odom(1.1, x=math.inf))
    assert error.value.reason == 'nan'


def test_pose_out_of_order_is_refused_but_a_restart_clears_the_history():
    buffer = buffer_with(odom(100.0), odom(100.1), restart_jump=1.0)
    with pytest.raises(InvalidInput) as error:
        buffer.add_pose(odom(99.9))
    assert error.value.reason == 'out_of_order'
    buffer.hold('t', 100.2, 1.0)                    # held across the restart: dropped
    buffer.add_pose(odom(0.1, 5.0))                 # time went back 100 s: a new run
    assert buffer.latest_stamp == 0.1 and buffer.held == 0
    np.testing.assert_allclose(buffer.pose_at(0.1), [5.0, 0.0, 0.0])


def test_history_is_bounded_and_old_readings_refused():
    buffer = PoseBuffer(PoseBufferConfig(history=1.0, max_gap=0.5))
    for k in range(2000):
        buffer.add_pose(odom(k * 0.05, x=k))
    assert len(buffer._stamps) < 100
    with pytest.raises(InvalidInput, match='older'):
        buffer.hold('t', 50.0, 1.0)
    buffer.hold('t', 1999 * 0.05 - 0.5, 1.0)
    (placed,), _ = buffer.release()
    assert placed.x == pytest.approx(1989.0)


def test_interleaved_fields_keep_their_keys_and_order():
    buffer = buffer_with(odom(0.0, 0.0), max_wait=1.0)
    buffer.hold('depth', 0.1, 5.0)
    buffer.hold('temperature', 0.2, 15.0)
    buffer.hold('depth', 0.3, 6.0)
    buffer.add_pose(odom(0.25, 2.5))
    placed, _ = buffer.release()
    assert [(p.key, p.value) for p in placed] == [('depth', 5.0), ('temperature', 15.0)]
    buffer.add_pose(odom(0.35, 3.5))
    (last,), _ = buffer.release()
    assert (last.key, last.x) == ('depth', pytest.approx(3.0))


@pytest.mark.parametrize('kwargs', [dict(history=0.0), dict(tolerance=-1.0),
                                    dict(max_wait=math.nan), dict(history=0.1, tolerance=0.2),
                                    dict(max_held=-1)])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ValueError):
        PoseBufferConfig(**kwargs)
