"""Message <-> record conversions, through real CDR serialization (no DDS needed)."""
import math
import time

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image, Imu, NavSatFix, PointCloud2, PointField

from asv_autonomy.measurements import (FIX, FIX_NONE, GnssFix, ImuSample, InvalidInput,
                                       PlanarOdometry, ScalarReading, yaw_to_quaternion)
from asv_autonomy.ros import conversions as cv


def wire(msg):
    """The message as a subscriber receives it (serialized and deserialized)."""
    return deserialize_message(serialize_message(msg), type(msg))


def reason(excinfo) -> str:
    return excinfo.value.reason


# --- time and frames ------------------------------------------------------------------------

def test_time_round_trip_and_rounding():
    msg = wire(cv.to_time(12.25))
    assert (msg.sec, msg.nanosec) == (12, 250_000_000)
    assert cv.from_time(msg) == 12.25
    carry = cv.to_time(0.9999999999)  # rounds up into the next second, not nanosec = 1e9
    assert (carry.sec, carry.nanosec) == (1, 0)
    assert cv.from_time(wire(cv.to_clock(3.5)).clock) == 3.5
    with pytest.raises(ValueError):
        cv.to_time(-1.0)


def test_expect_frame():
    cv.expect_frame(cv.to_header(1.0, 'map'), 'map')
    cv.expect_frame(cv.to_header(1.0, '/map'), 'map')  # ROS 1 style leading slash
    with pytest.raises(InvalidInput) as err:
        cv.expect_frame(cv.to_header(1.0, 'odom'), 'map')
    assert reason(err) == 'wrong_frame'


def test_float64_refuses_nan():
    assert cv.from_float64(wire(cv.to_float64(12.5))) == 12.5
    with pytest.raises(InvalidInput) as err:
        cv.from_float64(cv.to_float64(math.nan))
    assert reason(err) == 'nan'


# --- NavSatFix --------------------------------------------------------------------------------

@pytest.mark.parametrize('cov, cov_type', [
    (np.diag([1.0, 2.0, 3.0]), NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN),
    (np.array([[1.0, 0.1, 0], [0.1, 2.0, 0], [0, 0, 3.0]]), NavSatFix.COVARIANCE_TYPE_KNOWN),
])
def test_navsatfix_round_trip(cov, cov_type):
    fix = GnssFix(stamp=100.5, latitude=59.9, longitude=10.7, altitude=42.0, status=FIX,
                  position_covariance=cov)
    msg = wire(cv.to_navsatfix(fix, 'gps_link'))
    assert msg.position_covariance_type == cov_type
    back = cv.from_navsatfix(msg, frame_id='gps_link')
    assert (back.stamp, back.latitude, back.longitude, back.altitude, back.status) == \
        (100.5, 59.9, 10.7, 42.0, FIX)
    np.testing.assert_array_equal(back.position_covariance, cov)


def test_navsatfix_unknown_and_approximated_covariance():
    msg = wire(cv.to_navsatfix(GnssFix(stamp=1.0, latitude=1.0, longitude=2.0), 'gps_link'))
    assert msg.position_covariance_type == NavSatFix.COVARIANCE_TYPE_UNKNOWN
    assert np.isnan(cv.from_navsatfix(msg).position_covariance).all()
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_APPROXIMATED
    msg.position_covariance = np.array([4.0, 9.9, 0, 9.9, 4.0, 0, 0, 0, 16.0])
    np.testing.assert_array_equal(cv.from_navsatfix(msg).position_covariance,
                                  np.diag([4.0, 4.0, 16.0]))  # off-diagonals ignored


def test_navsatfix_nan_allowed_only_without_fix():
    no_fix = GnssFix(stamp=1.0, latitude=math.nan, longitude=math.nan, altitude=math.nan,
                     status=FIX_NONE)
    back = cv.from_navsatfix(wire(cv.to_navsatfix(no_fix, 'gps_link')))
    assert back.status == FIX_NONE and math.isnan(back.latitude)
    claimed = GnssFix(stamp=1.0, latitude=math.nan, longitude=10.0, status=FIX)
    with pytest.raises(InvalidInput) as err:
        cv.from_navsatfix(cv.to_navsatfix(claimed, 'gps_link'))
    assert reason(err) == 'nan'
    # NaN altitude is NavSatFix's "no altitude": kept; an infinite one is refused.
    nan_alt = GnssFix(stamp=1.0, latitude=1.0, longitude=2.0, altitude=math.nan)
    assert math.isnan(cv.from_navsatfix(cv.to_navsatfix(nan_alt, 'gps_link')).altitude)
    inf_alt = GnssFix(stamp=1.0, latitude=1.0, longitude=2.0, altitude=math.inf)
    with pytest.raises(InvalidInput):
        cv.from_navsatfix(cv.to_navsatfix(inf_alt, 'gps_link'))
    nan_cov = GnssFix(stamp=1.0, latitude=1.0, longitude=2.0,
                      position_covariance=np.diag([1.0, np.nan, 1.0]))
    with pytest.raises(InvalidInput) as err:
        cv.from_navsatfix(cv.to_navsatfix(nan_cov, 'gps_link'))
    assert reason(err) == 'nan'


def test_navsatfix_out_of_range_and_frame():
    msg = cv.to_navsatfix(GnssFix(stamp=1.0, latitude=91.0, longitude=0.0), 'gps_link')
    with pytest.raises(InvalidInput) as err:
        cv.from_navsatfix(msg)
    assert reason(err) == 'out_of_range'
    msg = cv.to_navsatfix(GnssFix(stamp=1.0, latitude=1.0, longitude=0.0), 'imu_link')
    with pytest.raises(InvalidInput) as err:
        cv.from_navsatfix(msg, frame_id='gps_link')
    assert reason(err) == 'wrong_frame'


# --- Imu --------------------------------------------------------------------------------------

def imu_sample(**changes):
    values = dict(stamp=5.0, orientation=yaw_to_quaternion(0.7),
                  angular_velocity=np.array([0.01, -0.02, 0.3]),
                  linear_acceleration=np.array([0.1, 0.2, 9.81]),
                  orientation_variance=np.array([1e-4, 1e-4, 4e-4]),
                  angular_velocity_variance=np.array([1e-6, 1e-6, 2e-6]),
                  linear_acceleration_variance=np.array([1e-3, 1e-3, 2e-3]))
    values.update(changes)
    return ImuSample(**values)


def test_imu_round_trip():
    sample = imu_sample()
    back = cv.from_imu(wire(cv.to_imu(sample, 'imu_link')), frame_id='imu_link')
    assert back.stamp == 5.0
    for name in ('orientation', 'angular_velocity', 'linear_acceleration',
                 'orientation_variance', 'angular_velocity_variance',
                 'linear_acceleration_variance'):
        np.testing.assert_allclose(getattr(back, name), getattr(sample, name), err_msg=name)


def test_imu_rep145_missing_orientation_and_unknown_covariance():
    sample = imu_sample(orientation=np.full(4, np.nan),
                        angular_velocity_variance=np.full(3, np.nan))
    msg = wire(cv.to_imu(sample, 'imu_link'))
    assert msg.orientation_covariance[0] == -1.0  # REP-145 "not provided"
    assert not np.any(msg.angular_velocity_covariance)  # all zero = "unknown"
    back = cv.from_imu(msg)
    assert np.isnan(back.orientation).all() and np.isnan(back.orientation_variance).all()
    assert np.isnan(back.angular_velocity_variance).all()
    np.testing.assert_allclose(back.angular_velocity, sample.angular_velocity)


def test_imu_refuses_nan_and_bad_quaternion():
    zero_quaternion = Imu(header=cv.to_header(1.0, 'imu_link'))
    zero_quaternion.orientation.w = 0.0  # a driver that "forgot" orientation without REP-145
    with pytest.raises(InvalidInput) as err:
        cv.from_imu(zero_quaternion)
    assert reason(err) == 'bad_orientation'
    msg = cv.to_imu(imu_sample(), 'imu_link')
    msg.angular_velocity.z = math.nan
    with pytest.raises(InvalidInput) as err:
        cv.from_imu(msg)
    assert reason(err) == 'nan'
    msg = cv.to_imu(imu_sample(), 'imu_link')
    msg.orientation.w *= 1.004  # float32-grade error: accepted and renormalised
    assert np.linalg.norm(cv.from_imu(msg).orientation) == pytest.approx(1.0)


# --- Range, Temperature ----------------------------------------------------------------------

def test_range_round_trip_and_rep117():
    reading = ScalarReading(stamp=2.0, value=12.5, variance=0.04)
    msg = wire(cv.to_range(reading, 'sonar_link', 0.3, 100.0))
    back = cv.from_range(msg, frame_id='sonar_link')
    assert back.stamp == 2.0 and back.value == 12.5
    assert back.variance == pytest.approx(0.04)  # float32 on the wire
    unknown = cv.from_range(cv.to_range(ScalarReading(2.0, 5.0), 'sonar_link', 0.3, 100.0))
    assert math.isnan(unknown.variance)
    for value, kept in ((math.inf, math.inf), (-math.inf, -math.inf), (150.0, math.inf),
                        (0.1, -math.inf)):
        msg = cv.to_range(ScalarReading(2.0, value), 'sonar_link', 0.3, 100.0)
        with pytest.raises(InvalidInput) as err:
            cv.from_range(msg)
        assert reason(err) == 'out_of_range'
        assert cv.from_range(msg, keep_out_of_range=True).value == kept
    with pytest.raises(InvalidInput) as err:
        cv.from_range(cv.to_range(ScalarReading(2.0, math.nan), 'sonar_link', 0.3, 100.0))
    assert reason(err) == 'nan'


def test_temperature_round_trip_and_nan():
    back = cv.from_temperature(wire(cv.to_temperature(ScalarReading(3.0, 17.25, 0.01), 'w')))
    assert (back.stamp, back.value, back.variance) == (3.0, 17.25, 0.01)
    with pytest.raises(InvalidInput) as err:
        cv.from_temperature(cv.to_temperature(ScalarReading(3.0, math.inf), 'w'))
    assert reason(err) == 'nan'


# --- Odometry, poses, paths --------------------------------------------------------------------

def test_odometry_round_trip_and_covariance_layout():
    cov = np.arange(36, dtype=float).reshape(6, 6)
    cov[:3, 3:] = cov[3:, :3] = 0.0  # the message has no pose-twist cross-covariance
    odom = PlanarOdometry(stamp=7.0, x=10.0, y=-4.0, yaw=2.5, u=1.2, v=-0.1, r=0.05,
                          covariance=cov)
    msg = wire(cv.to_odometry(odom, 'map', 'base_link'))
    assert (msg.header.frame_id, msg.child_frame_id) == ('map', 'base_link')
    pose_cov = np.asarray(msg.pose.covariance).reshape(6, 6)
    twist_cov = np.asarray(msg.twist.covariance).reshape(6, 6)
    assert pose_cov[5, 5] == cov[2, 2] and pose_cov[0, 5] == cov[0, 2]  # yaw row/col = 5
    assert twist_cov[5, 1] == cov[5, 4] and twist_cov[2, 2] == 0.0
    assert msg.pose.pose.orientation.z == pytest.approx(math.sin(1.25))
    back = cv.from_odometry(msg, frame_id='map', child_frame_id='base_link')
    assert (back.stamp, back.x, back.y, back.u, back.v, back.r) == (7.0, 10.0, -4.0, 1.2,
                                                                    -0.1, 0.05)
    assert back.yaw == pytest.approx(2.5)
    np.testing.assert_array_equal(back.covariance, cov)
    with pytest.raises(InvalidInput) as err:
        cv.from_odometry(msg, child_frame_id='gps_link')
    assert reason(err) == 'wrong_frame'
    msg.twist.twist.linear.x = math.nan
    with pytest.raises(InvalidInput) as err:
        cv.from_odometry(msg)
    assert reason(err) == 'nan'


def test_pose_stamped_path_polygon():
    pose = wire(cv.to_pose_stamped(3.0, 4.0, -1.0, 9.0, 'map'))
    x, y, yaw = cv.from_pose_stamped(pose, frame_id='map')
    assert (x, y) == (3.0, 4.0) and yaw == pytest.approx(-1.0)
    with pytest.raises(InvalidInput):
        cv.from_pose_stamped(pose, frame_id='base_link')
    waypoints = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    path = wire(cv.to_path(waypoints, 9.0, 'map'))
    assert path.header.frame_id == 'map' and len(path.poses) == 3
    back = cv.from_path(path)
    np.testing.assert_allclose(back[:, :2], waypoints)
    np.testing.assert_allclose(back[:, 2], [0.0, math.pi / 2, math.pi / 2])  # faces next
    assert cv.from_path(cv.to_path(np.zeros((0, 2)), 9.0, 'map')).shape == (0, 3)
    polygon = np.array([[0.0, 10.0], [511.0, 10.0], [511.0, 383.0]])
    np.testing.assert_array_equal(
        cv.from_polygon_stamped(wire(cv.to_polygon_stamped(polygon, 1.0, 'camera_link'))),
        polygon)


# --- PointCloud2 ----------------------------------------------------------------------------

def best_time(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_pointcloud2_round_trip_100k_points_is_vectorised():
    rng = np.random.default_rng(0)
    columns = {name: rng.normal(size=100_000).astype(np.float32)
               for name in ('x', 'y', 'mean', 'std')}
    msg = wire(cv.to_pointcloud2(columns, 4.0, 'map'))
    assert [f.name for f in msg.fields] == ['x', 'y', 'mean', 'std']
    assert (msg.width, msg.height, msg.point_step, msg.is_dense) == (100_000, 1, 16, True)
    back = cv.from_pointcloud2(msg, frame_id='map')
    for name, values in columns.items():
        np.testing.assert_array_equal(back[name], values)
    assert set(cv.from_pointcloud2(msg, ['mean'])) == {'mean'}
    # ~0.5 ms vectorised; a Python loop over 100k points takes far longer.
    assert best_time(lambda: cv.to_pointcloud2(columns, 4.0, 'map')) < 0.01
    assert best_time(lambda: cv.from_pointcloud2(msg)) < 0.01
    columns['std'][3] = np.nan
    assert not cv.to_pointcloud2(columns, 4.0, 'map').is_dense


def test_pointcloud2_reads_foreign_layouts():
    """Padding, mixed types, big-endian, an organised cloud with row padding."""
    dtype = np.dtype({'names': ['intensity', 'x', 'ring'], 'formats': ['>f8', '>f4', 'u1'],
                      'offsets': [0, 8, 12], 'itemsize': 16})
    points = np.zeros((2, 3), dtype=dtype)
    points['x'] = np.arange(6).reshape(2, 3)
    points['intensity'] = 0.5
    points['ring'] = 7
    row = points.tobytes()
    rows = np.frombuffer(row, np.uint8).reshape(2, 48)
    padded = np.concatenate([rows, np.zeros((2, 4), np.uint8)], axis=1)  # row_step 52
    fields = [PointField(name='intensity', offset=0, datatype=PointField.FLOAT64, count=1),
              PointField(name='x', offset=8, datatype=PointField.FLOAT32, count=1),
              PointField(name='ring', offset=12, datatype=PointField.UINT8, count=1)]
    msg = wire(PointCloud2(header=cv.to_header(1.0, 'map'), height=2, width=3, fields=fields,
                           is_bigendian=True, point_step=16, row_step=52,
                           data=padded.tobytes()))
    back = cv.from_pointcloud2(msg)
    np.testing.assert_array_equal(back['x'], np.arange(6))
    assert back['x'].dtype == np.float32 and back['x'].dtype.isnative
    np.testing.assert_array_equal(back['intensity'], 0.5)
    np.testing.assert_array_equal(back['ring'], 7)
    empty = cv.from_pointcloud2(wire(cv.to_pointcloud2({'x': [], 'y': []}, 1.0, 'map')))
    assert empty['x'].shape == (0,)


@pytest.mark.parametrize('breakage', [
    'field_past_point_step', 'overlap', 'duplicate', 'count', 'datatype', 'short_data',
    'row_step', 'missing_field'])
def test_pointcloud2_malformed(breakage):
    msg = cv.to_pointcloud2({'x': [1.0, 2.0], 'y': [3.0, 4.0]}, 1.0, 'map')
    wanted = None
    if breakage == 'field_past_point_step':
        msg.fields[1].offset = 14
    elif breakage == 'overlap':
        msg.fields[1].offset = 2
    elif breakage == 'duplicate':
        msg.fields[1].name = 'x'
    elif breakage == 'count':
        msg.fields[1].count = 2
    elif breakage == 'datatype':
        msg.fields[1].datatype = 42
    elif breakage == 'short_data':
        msg.data = msg.data[:-1]
    elif breakage == 'row_step':
        msg.row_step = 8
    else:
        wanted = ['x', 'mean']
    with pytest.raises(InvalidInput) as err:
        cv.from_pointcloud2(msg, wanted)
    assert reason(err) == 'malformed'


def test_pointcloud2_wrong_frame():
    with pytest.raises(InvalidInput) as err:
        cv.from_pointcloud2(cv.to_pointcloud2({'x': [1.0]}, 1.0, 'odom'), frame_id='map')
    assert reason(err) == 'wrong_frame'


# --- Image, CameraInfo -------------------------------------------------------------------------

def test_image_round_trips_and_encoding_conversion():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(384, 512, 3), dtype=np.uint8)
    msg = wire(cv.to_image(rgb, 1.0, 'camera_link', 'rgb8'))
    assert (msg.height, msg.width, msg.step, msg.encoding) == (384, 512, 1536, 'rgb8')
    back = cv.from_image(msg, frame_id='camera_link')
    np.testing.assert_array_equal(back, rgb)
    back[0, 0] = 0  # a fresh, writable array, not a view of the message buffer
    bgr_msg = wire(cv.to_image(rgb[:, :, ::-1], 1.0, 'camera_link', 'bgr8'))
    np.testing.assert_array_equal(cv.from_image(bgr_msg, 'rgb8'), rgb)
    np.testing.assert_array_equal(cv.from_image(msg, 'bgr8'), rgb[:, :, ::-1])
    gray = cv.from_image(msg, 'mono8')
    assert gray.shape == (384, 512)
    assert gray[5, 7] == round(float(rgb[5, 7] @ np.array([0.299, 0.587, 0.114])))
    mask = (rng.random((384, 512)) > 0.5).astype(np.uint8) * 255
    mono = wire(cv.to_image(mask, 1.0, 'camera_link', 'mono8'))
    np.testing.assert_array_equal(cv.from_image(mono), mask)
    np.testing.assert_array_equal(cv.from_image(mono, 'rgb8')[:, :, 2], mask)
    assert best_time(lambda: cv.from_image(msg)) < 0.005
    assert best_time(lambda: cv.to_image(rgb, 1.0, 'camera_link')) < 0.005


def test_image_with_row_padding():
    mono = np.arange(12, dtype=np.uint8).reshape(3, 4)
    padded = np.concatenate([mono, np.full((3, 2), 99, np.uint8)], axis=1)
    msg = Image(header=cv.to_header(1.0, 'c'), height=3, width=4, encoding='mono8', step=6,
                data=padded.tobytes())
    np.testing.assert_array_equal(cv.from_image(wire(msg)), mono)


@pytest.mark.parametrize('change, expected', [
    (dict(encoding='rgba8'), 'encoding'), (dict(encoding='16UC1'), 'encoding'),
    (dict(height=5), 'malformed'), (dict(step=3), 'malformed'), (dict(width=0), 'malformed'),
])
def test_image_malformed(change, expected):
    msg = cv.to_image(np.zeros((4, 6, 3), np.uint8), 1.0, 'c', 'rgb8')
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(InvalidInput) as err:
        cv.from_image(msg)
    assert reason(err) == expected


def test_to_image_refuses_wrong_array():
    with pytest.raises(ValueError):
        cv.to_image(np.zeros((4, 6), np.uint8), 1.0, 'c', 'rgb8')
    with pytest.raises(ValueError):
        cv.to_image(np.zeros((4, 6, 3), np.float32), 1.0, 'c', 'rgb8')


def test_camera_info():
    msg = wire(cv.to_camera_info(512, 384, 400.0, 401.0, 255.5, 191.5, 1.0, 'camera_link'))
    assert msg.header.frame_id == 'camera_link' and msg.distortion_model == 'plumb_bob'
    assert list(msg.p[:4]) == [400.0, 0.0, 255.5, 0.0]
    assert cv.from_camera_info(msg) == cv.CameraIntrinsics(512, 384, 400.0, 401.0, 255.5, 191.5)
    with pytest.raises(InvalidInput) as err:
        cv.from_camera_info(type(msg)())
    assert reason(err) == 'malformed'


# --- OccupancyGrid -------------------------------------------------------------------------

def test_occupancy_grid_round_trip():
    data = np.array([[0, 100, -1], [50, 0, 0]], dtype=np.int8)
    grid = cv.GridArray(data, 0.5, -10.0, 20.0)
    msg = wire(cv.to_occupancy_grid(grid, 6.0, 'map'))
    assert (msg.info.width, msg.info.height, msg.info.resolution) == (3, 2, 0.5)
    assert list(msg.data) == [0, 100, -1, 50, 0, 0]  # row-major from the origin cell
    back = cv.from_occupancy_grid(msg, frame_id='map')
    np.testing.assert_array_equal(back.data, data)
    assert back[1:] == (0.5, -10.0, 20.0, 0.0)
    msg.data = msg.data[:-1]
    with pytest.raises(InvalidInput) as err:
        cv.from_occupancy_grid(msg)
    assert reason(err) == 'malformed'
    with pytest.raises(ValueError):
        cv.to_occupancy_grid(cv.GridArray(np.full((2, 2), 101, np.int8), 1.0, 0, 0), 1.0, 'map')


def test_occupancy_from_values():
    values = np.array([[0.0, 0.5, 1.0], [2.0, -1.0, np.nan]])
    np.testing.assert_array_equal(cv.occupancy_from_values(values, 0.0, 1.0),
                                  [[0, 50, 100], [100, 0, -1]])


def test_values_from_occupancy_inverts_it_and_fills_unknown_cells():
    values = np.array([[0.0, 0.25], [1.0, np.nan]])
    back = cv.values_from_occupancy(cv.occupancy_from_values(values, 0.0, 1.0))
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, [[0.0, 0.25], [1.0, 1.0]])     # unknown -> 1
    assert cv.values_from_occupancy(np.array([-1], np.int8), unknown=0.5)[0] == 0.5


# --- diagnostics -----------------------------------------------------------------------------

def test_diagnostics_build_and_read():
    status = cv.diagnostic_status('/asv1/mapper', cv.WARN, 'dropped', 'mapper',
                                  {'dropped_total': 3, 'score': 0.125, 'ok': True,
                                   'state': 'tracking', 'np': np.float32(2.5)})
    array = wire(cv.diagnostic_array([status], 11.0))
    assert cv.from_time(array.header.stamp) == 11.0
    (read,) = cv.read_diagnostics(array)
    assert read == {'name': '/asv1/mapper', 'level': cv.WARN, 'message': 'dropped',
                    'hardware_id': 'mapper',
                    'values': {'dropped_total': 3, 'score': 0.125, 'ok': True,
                               'state': 'tracking', 'np': 2.5}}
    assert isinstance(read['values']['dropped_total'], int)
