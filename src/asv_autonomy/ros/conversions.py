"""ROS messages <-> measurement records and numpy arrays: the only such module.

Naming: ``to_<message>(...)`` builds a message, ``from_<message>(msg, ...)`` reads one.
Readers refuse inputs a node must drop (DESIGN.md §5) by raising
:class:`~asv_autonomy.measurements.InvalidInput` with a short reason (``'nan'``,
``'wrong_frame'``, ``'out_of_range'``, ``'encoding'``, ``'malformed'``...), which
`InputHealth.guard` counts; readers given ``frame_id=`` also check the header frame.
Writers raise ``ValueError`` for arguments that are a programming error (wrong shape/dtype).

Bulk data (point clouds, images, grids) is converted with numpy buffer views, never with a
Python loop over points or pixels.
"""
from __future__ import annotations

import array
import math
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point32, PolygonStamped, Pose, PoseStamped, Quaternion
from nav_msgs.msg import MapMetaData, OccupancyGrid, Odometry, Path
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import (CameraInfo, Image, Imu, NavSatFix, NavSatStatus, PointCloud2,
                             PointField, Range, Temperature)
from std_msgs.msg import Float64, Header

from asv_autonomy.measurements import (FIX_NONE, GnssFix, ImuSample, InvalidInput,
                                       PlanarOdometry, ScalarReading, quaternion_to_yaw,
                                       yaw_to_quaternion)

# DiagnosticStatus levels as plain ints (the message constants are bytes).
OK, WARN, ERROR, STALE = 0, 1, 2, 3

# Planar (x, y, yaw) / (u, v, r) -> rows of the 6x6 (x, y, z, roll, pitch, yaw) covariance.
_PLANAR_INDEX = np.array([0, 1, 5])

_NS = 1_000_000_000


# --- time, header, frames ------------------------------------------------------------------

def to_time(t: float) -> Time:
    """builtin_interfaces/Time of ``t`` [s] (>= 0), rounded to the nanosecond."""
    if not math.isfinite(t) or t < 0:
        raise ValueError(f'stamp {t} s cannot be a builtin_interfaces/Time')
    sec, nanosec = divmod(round(t * _NS), _NS)
    return Time(sec=int(sec), nanosec=int(nanosec))


def from_time(msg: Time) -> float:
    """[s] of a builtin_interfaces/Time."""
    return msg.sec + msg.nanosec * 1e-9


def to_header(stamp: float, frame_id: str) -> Header:
    """std_msgs/Header with ``stamp`` [s]."""
    return Header(stamp=to_time(stamp), frame_id=frame_id)


def to_clock(t: float) -> Clock:
    """rosgraph_msgs/Clock at ``t`` [s]."""
    return Clock(clock=to_time(t))


def expect_frame(header: Header, frame_id: str) -> None:
    """Raise InvalidInput('wrong_frame') unless ``header.frame_id`` is ``frame_id``.

    A leading '/' (a ROS 1 habit, ignored by tf2) does not count as a difference.
    """
    if header.frame_id.lstrip('/') != frame_id.lstrip('/'):
        raise InvalidInput('wrong_frame', f'{header.frame_id!r}, expected {frame_id!r}')


def _read_header(msg: Any, frame_id: str | None) -> float:
    if frame_id is not None:
        expect_frame(msg.header, frame_id)
    return from_time(msg.header.stamp)


def _finite(name: str, *values: float) -> None:
    if not np.all(np.isfinite(values)):
        raise InvalidInput('nan', f'{name} = {values}')


def _f64(values: Any, size: int) -> np.ndarray:
    """Fresh float64 array for a fixed-size message field (messages keep the reference)."""
    return np.array(values, dtype=np.float64).reshape(size)


# --- std_msgs/Float64 -----------------------------------------------------------------------

def to_float64(value: float) -> Float64:
    """std_msgs/Float64 (e.g. a thrust command [N])."""
    return Float64(data=float(value))


def from_float64(msg: Float64) -> float:
    """The value of a std_msgs/Float64; NaN/inf -> InvalidInput('nan')."""
    _finite('data', msg.data)
    return float(msg.data)


# --- sensor_msgs/NavSatFix <-> GnssFix ------------------------------------------------------

def to_navsatfix(fix: GnssFix, frame_id: str) -> NavSatFix:
    """sensor_msgs/NavSatFix of ``fix``; an all-NaN covariance is sent as UNKNOWN."""
    cov = np.asarray(fix.position_covariance, dtype=np.float64).reshape(3, 3)
    if np.isnan(cov).all():
        cov_type, cov = NavSatFix.COVARIANCE_TYPE_UNKNOWN, np.zeros((3, 3))
    elif np.count_nonzero(cov - np.diag(np.diag(cov))) == 0:
        cov_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
    else:
        cov_type = NavSatFix.COVARIANCE_TYPE_KNOWN
    return NavSatFix(
        header=to_header(fix.stamp, frame_id),
        status=NavSatStatus(status=int(fix.status), service=NavSatStatus.SERVICE_GPS),
        latitude=float(fix.latitude), longitude=float(fix.longitude),
        altitude=float(fix.altitude),
        position_covariance=_f64(cov, 9), position_covariance_type=cov_type)


def from_navsatfix(msg: NavSatFix, *, frame_id: str | None = None) -> GnssFix:
    """GnssFix of a sensor_msgs/NavSatFix.

    A NO_FIX message may carry NaN coordinates. A claimed fix with NaN/inf latitude or
    longitude, or an infinite altitude, is InvalidInput('nan') (NaN altitude means "unknown"
    in NavSatFix and is kept); coordinates outside the globe are InvalidInput('out_of_range').
    Covariance: UNKNOWN -> NaN; APPROXIMATED / DIAGONAL_KNOWN -> the diagonal; KNOWN -> all.
    """
    stamp = _read_header(msg, frame_id)
    status = int(msg.status.status)
    lat, lon, alt = float(msg.latitude), float(msg.longitude), float(msg.altitude)
    if status != FIX_NONE:
        _finite('latitude/longitude', lat, lon)
        if math.isinf(alt):
            raise InvalidInput('nan', f'altitude = {alt}')
        if abs(lat) > 90.0 or abs(lon) > 180.0:
            raise InvalidInput('out_of_range', f'latitude {lat}, longitude {lon}')
    cov = np.array(msg.position_covariance, dtype=np.float64).reshape(3, 3)
    cov_type = msg.position_covariance_type
    if cov_type == NavSatFix.COVARIANCE_TYPE_UNKNOWN:
        cov = np.full((3, 3), np.nan)
    else:
        if cov_type != NavSatFix.COVARIANCE_TYPE_KNOWN:
            cov = np.diag(np.diag(cov))
        if status != FIX_NONE:
            _finite('position_covariance', *cov.ravel())
    return GnssFix(stamp=stamp, latitude=lat, longitude=lon, altitude=alt, status=status,
                   position_covariance=cov)


# --- sensor_msgs/Imu <-> ImuSample ---------------------------------------------------------

_QUATERNION_TOLERANCE = 1e-2  # |q| may deviate this much from 1 (float32 sources); renormalised


def to_imu(sample: ImuSample, frame_id: str) -> Imu:
    """sensor_msgs/Imu of ``sample``.

    REP-145: a NaN vector is "not provided" (covariance[0] = -1); NaN variances are
    "unknown" (all-zero covariance); known variances go on the diagonal.
    """
    def vector_and_cov(values: np.ndarray, variance: np.ndarray):
        values = np.asarray(values, dtype=np.float64)
        cov = np.zeros((3, 3))
        if np.isnan(values).any():
            cov[0, 0] = -1.0
            values = np.zeros_like(values)
        elif not np.isnan(variance).all():
            cov = np.diag(np.nan_to_num(np.asarray(variance, dtype=np.float64)))
        return values, _f64(cov, 9)

    q, q_cov = vector_and_cov(sample.orientation, sample.orientation_variance)
    if q_cov[0] == -1.0:
        q = np.array([0.0, 0.0, 0.0, 1.0])
    w, w_cov = vector_and_cov(sample.angular_velocity, sample.angular_velocity_variance)
    a, a_cov = vector_and_cov(sample.linear_acceleration, sample.linear_acceleration_variance)
    msg = Imu(header=to_header(sample.stamp, frame_id),
              orientation_covariance=q_cov, angular_velocity_covariance=w_cov,
              linear_acceleration_covariance=a_cov)
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = map(float, q)
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = map(float, w)
    (msg.linear_acceleration.x, msg.linear_acceleration.y,
     msg.linear_acceleration.z) = map(float, a)
    return msg


def from_imu(msg: Imu, *, frame_id: str | None = None) -> ImuSample:
    """ImuSample of a sensor_msgs/Imu.

    REP-145: covariance[0] == -1 marks a vector as not provided -> NaN vector and variances.
    An all-zero covariance is "unknown" -> NaN variances. NaN/inf in a provided vector ->
    InvalidInput('nan'); an orientation quaternion whose norm is not ~1 (e.g. all zeros) ->
    InvalidInput('bad_orientation'); otherwise it is renormalised.
    """
    stamp = _read_header(msg, frame_id)

    def read(name: str, values: list[float], cov) -> tuple[np.ndarray, np.ndarray]:
        cov = np.asarray(cov, dtype=np.float64)
        if cov[0] == -1.0:
            return np.full(len(values), np.nan), np.full(3, np.nan)
        values = np.array(values, dtype=np.float64)
        _finite(name, *values)
        variance = np.diag(cov.reshape(3, 3)).copy()
        if not cov.any():
            variance[:] = np.nan
        return values, variance

    o, ang, acc = msg.orientation, msg.angular_velocity, msg.linear_acceleration
    q, q_var = read('orientation', [o.x, o.y, o.z, o.w], msg.orientation_covariance)
    if not np.isnan(q).any():
        norm = np.linalg.norm(q)
        if abs(norm - 1.0) > _QUATERNION_TOLERANCE:
            raise InvalidInput('bad_orientation', f'quaternion norm {norm:.3g}')
        q = q / norm
    w, w_var = read('angular_velocity', [ang.x, ang.y, ang.z], msg.angular_velocity_covariance)
    a, a_var = read('linear_acceleration', [acc.x, acc.y, acc.z],
                    msg.linear_acceleration_covariance)
    return ImuSample(stamp=stamp, orientation=q, angular_velocity=w, linear_acceleration=a,
                     orientation_variance=q_var, angular_velocity_variance=w_var,
                     linear_acceleration_variance=a_var)


# --- sensor_msgs/Range, Temperature <-> ScalarReading -----------------------------------------

def to_range(reading: ScalarReading, frame_id: str, min_range: float, max_range: float, *,
             field_of_view: float = 0.1, radiation_type: int = Range.ULTRASOUND) -> Range:
    """sensor_msgs/Range of a depth/range reading [m] (NaN variance -> 0 "unknown").

    ``reading.value`` may be -inf (too close) or +inf (no return), as in REP-117.
    """
    return Range(header=to_header(reading.stamp, frame_id), radiation_type=radiation_type,
                 field_of_view=float(field_of_view), min_range=float(min_range),
                 max_range=float(max_range), range=float(reading.value),
                 variance=_unknown_as_zero(reading.variance))


def from_range(msg: Range, *, frame_id: str | None = None,
               keep_out_of_range: bool = False) -> ScalarReading:
    """ScalarReading [m] of a sensor_msgs/Range.

    NaN -> InvalidInput('nan'). -inf (too close) / +inf (no return) (REP-117) and finite
    values outside [min_range, max_range] -> InvalidInput('out_of_range'), or, with
    ``keep_out_of_range``, a reading whose value is -inf (below) or +inf (beyond), so that
    e.g. an anomaly detector can see "no return". Limits are not checked when
    ``max_range <= 0`` (unset). Variance 0 ("unknown") -> NaN.
    """
    stamp = _read_header(msg, frame_id)
    value = float(msg.range)
    if math.isnan(value):
        raise InvalidInput('nan', 'range = nan')
    limits_set = msg.max_range > 0.0
    if math.isinf(value) or (limits_set and not msg.min_range <= value <= msg.max_range):
        if not keep_out_of_range:
            raise InvalidInput('out_of_range', f'range {value} not in '
                                               f'[{msg.min_range}, {msg.max_range}]')
        value = -math.inf if value < msg.min_range else math.inf
    return ScalarReading(stamp=stamp, value=value, variance=_zero_as_unknown(msg.variance))


def to_temperature(reading: ScalarReading, frame_id: str) -> Temperature:
    """sensor_msgs/Temperature [degC] (NaN variance -> 0 "unknown")."""
    return Temperature(header=to_header(reading.stamp, frame_id),
                       temperature=float(reading.value),
                       variance=_unknown_as_zero(reading.variance))


def from_temperature(msg: Temperature, *, frame_id: str | None = None) -> ScalarReading:
    """ScalarReading [degC] of a sensor_msgs/Temperature; NaN/inf -> InvalidInput('nan')."""
    stamp = _read_header(msg, frame_id)
    _finite('temperature', msg.temperature)
    return ScalarReading(stamp=stamp, value=float(msg.temperature),
                         variance=_zero_as_unknown(msg.variance))


def _unknown_as_zero(variance: float) -> float:
    return 0.0 if math.isnan(variance) else float(variance)


def _zero_as_unknown(variance: float) -> float:
    return math.nan if variance == 0.0 else float(variance)


# --- nav_msgs/Odometry <-> PlanarOdometry ----------------------------------------------------

def to_odometry(odom: PlanarOdometry, frame_id: str = 'map',
                child_frame_id: str = 'base_link') -> Odometry:
    """nav_msgs/Odometry: pose in ``frame_id``, twist in ``child_frame_id`` (REP-105).

    The (x, y, yaw) and (u, v, r) blocks of ``odom.covariance`` go to the rows/columns
    (x, y, yaw) of the pose and twist 6x6 covariances; z, roll, pitch (fixed for a boat) get 0.
    The pose-twist cross-covariance has no place in the message and is dropped.
    """
    msg = Odometry(header=to_header(odom.stamp, frame_id), child_frame_id=child_frame_id)
    msg.pose.pose = _pose(odom.x, odom.y, odom.yaw)
    msg.twist.twist.linear.x, msg.twist.twist.linear.y = float(odom.u), float(odom.v)
    msg.twist.twist.angular.z = float(odom.r)
    cov = np.asarray(odom.covariance, dtype=np.float64).reshape(6, 6)
    for block, target in ((cov[:3, :3], msg.pose), (cov[3:, 3:], msg.twist)):
        full = np.zeros((6, 6))
        full[np.ix_(_PLANAR_INDEX, _PLANAR_INDEX)] = block
        target.covariance = _f64(full, 36)
    return msg


def from_odometry(msg: Odometry, *, frame_id: str | None = None,
                  child_frame_id: str | None = None) -> PlanarOdometry:
    """PlanarOdometry of a nav_msgs/Odometry (yaw from the quaternion; NaN -> 'nan')."""
    stamp = _read_header(msg, frame_id)
    if child_frame_id is not None and msg.child_frame_id.lstrip('/') != child_frame_id:
        raise InvalidInput('wrong_frame',
                           f'child {msg.child_frame_id!r}, expected {child_frame_id!r}')
    x, y, yaw = _read_pose(msg.pose.pose)
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    _finite('twist', lin.x, lin.y, ang.z)
    cov = np.zeros((6, 6))
    idx = np.ix_(_PLANAR_INDEX, _PLANAR_INDEX)
    cov[:3, :3] = np.asarray(msg.pose.covariance, dtype=np.float64).reshape(6, 6)[idx]
    cov[3:, 3:] = np.asarray(msg.twist.covariance, dtype=np.float64).reshape(6, 6)[idx]
    return PlanarOdometry(stamp=stamp, x=x, y=y, yaw=yaw, u=float(lin.x), v=float(lin.y),
                          r=float(ang.z), covariance=cov)


# --- geometry_msgs/PoseStamped, PolygonStamped; nav_msgs/Path ------------------------------

def _pose(x: float, y: float, yaw: float) -> Pose:
    qx, qy, qz, qw = yaw_to_quaternion(yaw)
    pose = Pose()
    pose.position.x, pose.position.y = float(x), float(y)
    pose.orientation = Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw))
    return pose


def _read_pose(pose: Pose) -> tuple[float, float, float]:
    q = pose.orientation
    _finite('pose', pose.position.x, pose.position.y, q.x, q.y, q.z, q.w)
    if q.x == q.y == q.z == q.w == 0.0:
        raise InvalidInput('bad_orientation', 'all-zero quaternion')
    return (float(pose.position.x), float(pose.position.y),
            quaternion_to_yaw((q.x, q.y, q.z, q.w)))


def to_pose_stamped(x: float, y: float, yaw: float, stamp: float,
                    frame_id: str) -> PoseStamped:
    """geometry_msgs/PoseStamped at (x, y) [m] with heading ``yaw`` [rad]."""
    return PoseStamped(header=to_header(stamp, frame_id), pose=_pose(x, y, yaw))


def from_pose_stamped(msg: PoseStamped, *,
                      frame_id: str | None = None) -> tuple[float, float, float]:
    """(x [m], y [m], yaw [rad]) of a PoseStamped (e.g. RViz's goal_pose)."""
    _read_header(msg, frame_id)
    return _read_pose(msg.pose)


def to_path(waypoints: np.ndarray, stamp: float, frame_id: str,
            yaw: np.ndarray | None = None) -> Path:
    """nav_msgs/Path through ``waypoints`` (N, 2) [m].

    Each pose faces ``yaw`` (N,) [rad] or, by default, the next waypoint (the last one keeps
    the previous heading).
    """
    xy = np.asarray(waypoints, dtype=np.float64).reshape(-1, 2)
    if yaw is None:
        step = np.diff(xy, axis=0)
        yaw = np.arctan2(step[:, 1], step[:, 0]) if len(step) else np.zeros(0)
        yaw = np.append(yaw, yaw[-1] if len(yaw) else 0.0)
    header = to_header(stamp, frame_id)
    return Path(header=header, poses=[PoseStamped(header=header, pose=_pose(x, y, h))
                                      for (x, y), h in zip(xy, np.asarray(yaw))])


def from_path(msg: Path) -> np.ndarray:
    """(N, 3) [x, y, yaw] of a nav_msgs/Path."""
    return np.array([_read_pose(p.pose) for p in msg.poses], dtype=np.float64).reshape(-1, 3)


def to_polygon_stamped(points: np.ndarray, stamp: float, frame_id: str) -> PolygonStamped:
    """geometry_msgs/PolygonStamped of (N, 2) points (e.g. pixel coordinates)."""
    msg = PolygonStamped(header=to_header(stamp, frame_id))
    msg.polygon.points = [Point32(x=float(x), y=float(y))
                          for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2)]
    return msg


def from_polygon_stamped(msg: PolygonStamped) -> np.ndarray:
    """(N, 2) float64 points of a PolygonStamped."""
    return np.array([(p.x, p.y) for p in msg.polygon.points], dtype=np.float64).reshape(-1, 2)


# --- sensor_msgs/PointCloud2 <-> named columns ---------------------------------------------

_POINT_FIELD_DTYPES = {
    PointField.INT8: 'i1', PointField.UINT8: 'u1', PointField.INT16: 'i2',
    PointField.UINT16: 'u2', PointField.INT32: 'i4', PointField.UINT32: 'u4',
    PointField.FLOAT32: 'f4', PointField.FLOAT64: 'f8',
}


def to_pointcloud2(columns: Mapping[str, np.ndarray], stamp: float,
                   frame_id: str) -> PointCloud2:
    """Unorganised sensor_msgs/PointCloud2 with one float32 field per column.

    Args:
        columns: name -> (N,) values, e.g. ``{'x': ..., 'y': ..., 'mean': ..., 'std': ...}``
            (the ``map/<field>`` contract).
    """
    names = list(columns)
    if not names:
        raise ValueError('a point cloud needs at least one column')
    stacked = np.stack([np.asarray(columns[n], dtype='<f4').reshape(-1) for n in names], axis=1)
    n_points, point_step = stacked.shape[0], 4 * len(names)
    return PointCloud2(
        header=to_header(stamp, frame_id), height=1, width=n_points,
        fields=[PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                for i, n in enumerate(names)],
        is_bigendian=False, point_step=point_step, row_step=point_step * n_points,
        data=array.array('B', stacked.tobytes()), is_dense=bool(np.isfinite(stacked).all()))


def from_pointcloud2(msg: PointCloud2, fields: Sequence[str] | None = None, *,
                     frame_id: str | None = None) -> dict[str, np.ndarray]:
    """Columns of a sensor_msgs/PointCloud2 as (height * width,) native-endian arrays.

    Any layout is read (any scalar field type, padding, big-endian, organised clouds).
    A layout that does not add up (field past ``point_step``, overlapping fields, ``count``
    != 1, unknown type, ``row_step``/data size mismatch, a requested field missing) ->
    InvalidInput('malformed').

    Args:
        fields: names to return (all fields when None).
    """
    if frame_id is not None:
        expect_frame(msg.header, frame_id)
    order = '>' if msg.is_bigendian else '<'
    spans, names, formats, offsets = [], [], [], []
    for f in msg.fields:
        if f.datatype not in _POINT_FIELD_DTYPES or f.count != 1 or f.name in names:
            raise InvalidInput('malformed', f'field {f.name!r}: datatype {f.datatype}, '
                                            f'count {f.count}')
        dtype = np.dtype(order + _POINT_FIELD_DTYPES[f.datatype])
        spans.append((f.offset, f.offset + dtype.itemsize))
        names.append(f.name)
        formats.append(dtype)
        offsets.append(f.offset)
    spans.sort()
    if max((end for _, end in spans), default=0) > msg.point_step or any(
            end > start for (_, end), (start, _) in zip(spans, spans[1:])):
        raise InvalidInput('malformed', f'fields {spans} do not fit point_step '
                                        f'{msg.point_step} without overlap')
    wanted = names if fields is None else list(fields)
    missing = set(wanted) - set(names)
    if missing:
        raise InvalidInput('malformed', f'missing fields {sorted(missing)}')
    row_bytes = msg.point_step * msg.width
    if msg.point_step == 0 or msg.row_step < row_bytes or \
            len(msg.data) != msg.row_step * msg.height:
        raise InvalidInput('malformed', f'{len(msg.data)} bytes for {msg.height} rows of '
                                        f'{msg.row_step} (point_step {msg.point_step}, '
                                        f'width {msg.width})')
    dtype = np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                      'itemsize': msg.point_step})
    raw = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.row_step)
    points = np.ascontiguousarray(raw[:, :row_bytes]).view(dtype).reshape(-1)
    return {n: points[n].astype(points.dtype[n].newbyteorder('='), copy=True) for n in wanted}


# --- sensor_msgs/Image, CameraInfo ----------------------------------------------------------

_CHANNELS = {'rgb8': 3, 'bgr8': 3, 'mono8': 1}
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, for colour -> mono8


def to_image(image: np.ndarray, stamp: float, frame_id: str,
             encoding: str = 'rgb8') -> Image:
    """sensor_msgs/Image of a uint8 (H, W, 3) rgb8/bgr8 or (H, W) mono8 array."""
    image = np.asarray(image)
    channels = _CHANNELS.get(encoding)
    if channels is None:
        raise ValueError(f'encoding {encoding!r} is not one of {sorted(_CHANNELS)}')
    expected_ndim = 2 if channels == 1 else 3
    if image.dtype != np.uint8 or image.ndim != expected_ndim or (
            channels == 3 and image.shape[2] != 3):
        raise ValueError(f'{encoding} needs a uint8 array of {expected_ndim} dims, got '
                         f'{image.dtype} {image.shape}')
    height, width = image.shape[:2]
    return Image(header=to_header(stamp, frame_id), height=height, width=width,
                 encoding=encoding, is_bigendian=0, step=width * channels,
                 data=array.array('B', np.ascontiguousarray(image).tobytes()))


def from_image(msg: Image, encoding: str | None = None, *,
               frame_id: str | None = None) -> np.ndarray:
    """uint8 array of a sensor_msgs/Image: (H, W, 3) for rgb8/bgr8, (H, W) for mono8.

    Args:
        encoding: convert to this encoding ('rgb8', 'bgr8', 'mono8'); None keeps the
            message's own.

    Raises:
        InvalidInput: 'encoding' for another message encoding, 'malformed' when ``step``,
            the size or the data length do not agree.
    """
    if frame_id is not None:
        expect_frame(msg.header, frame_id)
    channels = _CHANNELS.get(msg.encoding)
    if channels is None:
        raise InvalidInput('encoding', f'{msg.encoding!r} is not one of {sorted(_CHANNELS)}')
    row_bytes = msg.width * channels
    if msg.width == 0 or msg.height == 0 or msg.step < row_bytes or \
            len(msg.data) != msg.step * msg.height:
        raise InvalidInput('malformed', f'{len(msg.data)} bytes for {msg.height}x{msg.width} '
                                        f'{msg.encoding} with step {msg.step}')
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
    image = rows[:, :row_bytes].reshape(msg.height, msg.width, channels)
    return _convert_encoding(image, msg.encoding, encoding or msg.encoding)


def _convert_encoding(image: np.ndarray, source: str, target: str) -> np.ndarray:
    """(H, W, C) view in ``source`` -> fresh array in ``target``."""
    if target not in _CHANNELS:
        raise ValueError(f'encoding {target!r} is not one of {sorted(_CHANNELS)}')
    if source == 'mono8':
        gray = image[:, :, 0]
        return gray.copy() if target == 'mono8' else np.repeat(gray[:, :, None], 3, axis=2)
    rgb = image if source == 'rgb8' else image[:, :, ::-1]
    if target == 'mono8':
        return np.clip(np.rint(rgb @ _LUMA), 0, 255).astype(np.uint8)
    return (rgb if target == 'rgb8' else rgb[:, :, ::-1]).copy()


class CameraIntrinsics(NamedTuple):
    """Pinhole intrinsics [px] of a CameraInfo."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float


def to_camera_info(width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                   stamp: float, frame_id: str) -> CameraInfo:
    """sensor_msgs/CameraInfo of an ideal (undistorted, plumb_bob d = 0) pinhole camera
    of ``width`` x ``height`` [px], focal lengths and principal point [px]."""
    k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return CameraInfo(header=to_header(stamp, frame_id), width=int(width), height=int(height),
                      distortion_model='plumb_bob', d=array.array('d', [0.0] * 5),
                      k=_f64(k, 9), r=_f64(np.eye(3), 9), p=_f64(p, 12))


def from_camera_info(msg: CameraInfo) -> CameraIntrinsics:
    """Intrinsics from K of a sensor_msgs/CameraInfo; an unset (zero) K -> 'malformed'."""
    k = np.asarray(msg.k, dtype=np.float64)
    _finite('k', *k)
    if k[0] <= 0.0 or k[4] <= 0.0 or msg.width == 0 or msg.height == 0:
        raise InvalidInput('malformed', f'camera_info without intrinsics: K = {k.tolist()}')
    return CameraIntrinsics(int(msg.width), int(msg.height), float(k[0]), float(k[4]),
                            float(k[2]), float(k[5]))


# --- nav_msgs/OccupancyGrid ------------------------------------------------------------------

class GridArray(NamedTuple):
    """An occupancy grid as an array; cell [row, col] covers x = origin_x + (col + 0.5) *
    resolution, y = origin_y + (row + 0.5) * resolution (for origin_yaw = 0)."""

    data: np.ndarray  # (H, W) int8: 0..100, -1 unknown
    resolution: float  # [m/cell]
    origin_x: float  # [m] corner of cell [0, 0] in frame_id
    origin_y: float  # [m]
    origin_yaw: float = 0.0  # [rad]


def occupancy_from_values(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """int8 occupancy of float ``values``: ``low`` -> 0, ``high`` -> 100, clipped; NaN -> -1.

    E.g. a map's posterior std scaled for ``map/<field>/uncertainty``.
    """
    if not high > low:
        raise ValueError(f'need high > low, got low={low}, high={high}')
    values = np.asarray(values, dtype=np.float64)
    scaled = np.clip(np.rint((values - low) * (100.0 / (high - low))), 0, 100)
    return np.where(np.isnan(values), -1, scaled).astype(np.int8)


def values_from_occupancy(data: np.ndarray, unknown: float = 1.0) -> np.ndarray:
    """float32 values 0..1 of occupancy ``data`` (0..100), the inverse of
    `occupancy_from_values` with low = 0, high = 1; unknown cells (-1) -> ``unknown``.

    E.g. the relative std of ``map/<field>/uncertainty``: unknown is as uncertain as it gets.
    """
    data = np.asarray(data)
    return np.where(data < 0, unknown, data / 100.0).astype(np.float32)


def to_occupancy_grid(grid: GridArray, stamp: float, frame_id: str) -> OccupancyGrid:
    """nav_msgs/OccupancyGrid of a (H, W) int8 array (row = y, column = x)."""
    data = np.asarray(grid.data)
    if data.ndim != 2 or data.dtype != np.int8:
        raise ValueError(f'grid data must be a 2-D int8 array, got {data.dtype} {data.shape}')
    if ((data < -1) | (data > 100)).any():
        raise ValueError('occupancy values must be -1 (unknown) or 0..100')
    header = to_header(stamp, frame_id)
    info = MapMetaData(map_load_time=header.stamp, resolution=float(grid.resolution),
                       width=data.shape[1], height=data.shape[0],
                       origin=_pose(grid.origin_x, grid.origin_y, grid.origin_yaw))
    return OccupancyGrid(header=header, info=info,
                         data=array.array('b', np.ascontiguousarray(data).tobytes()))


def from_occupancy_grid(msg: OccupancyGrid, *, frame_id: str | None = None) -> GridArray:
    """GridArray of a nav_msgs/OccupancyGrid; a size mismatch or bad resolution ->
    InvalidInput('malformed')."""
    if frame_id is not None:
        expect_frame(msg.header, frame_id)
    info = msg.info
    if len(msg.data) != info.width * info.height or not (
            math.isfinite(info.resolution) and info.resolution > 0.0):
        raise InvalidInput('malformed', f'{len(msg.data)} cells for {info.height}x'
                                        f'{info.width}, resolution {info.resolution}')
    x, y, yaw = _read_pose(info.origin)
    data = np.frombuffer(msg.data, dtype=np.int8).reshape(info.height, info.width).copy()
    return GridArray(data, float(info.resolution), x, y, yaw)


# --- diagnostic_msgs ------------------------------------------------------------------------

def diagnostic_status(name: str, level: int, message: str, hardware_id: str = '',
                      values: Mapping[str, Any] | None = None) -> DiagnosticStatus:
    """diagnostic_msgs/DiagnosticStatus; ``values`` become KeyValue strings (bools as
    'true'/'false', floats in round-trip precision)."""
    return DiagnosticStatus(
        level=bytes([int(level)]), name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=_format_value(v)) for k, v in (values or {}).items()])


def diagnostic_array(statuses: Iterable[DiagnosticStatus], stamp: float) -> DiagnosticArray:
    """diagnostic_msgs/DiagnosticArray stamped ``stamp`` [s]."""
    return DiagnosticArray(header=to_header(stamp, ''), status=list(statuses))


def read_diagnostics(msg: DiagnosticArray) -> list[dict[str, Any]]:
    """Statuses of a DiagnosticArray as dicts: name, level (int), message, hardware_id,
    values (key -> bool, int, float or str, parsed back from the strings)."""
    return [{'name': s.name, 'level': _level(s.level), 'message': s.message,
             'hardware_id': s.hardware_id,
             'values': {kv.key: _parse_value(kv.value) for kv in s.values}}
            for s in msg.status]


def _level(level: bytes | int) -> int:
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)


def _format_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return 'true' if value else 'false'
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _parse_value(text: str) -> Any:
    if text.lower() in ('true', 'false'):
        return text.lower() == 'true'
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
