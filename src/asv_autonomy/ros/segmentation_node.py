"""Segmentation node: camera frames -> navigable-space polyline, mask and obstacle grid.

Inputs: ``sensors/camera/image_raw`` (rgb8 / bgr8 / mono8, any resolution), the latest
``sensors/camera/camera_info`` (intrinsics of the grid projection; an image whose size
differs from it is dropped as 'size_mismatch') and ``odometry/filtered`` (the camera pose
at the image stamp, interpolated). Outputs per frame:

* ``perception/navigable/polyline``: PolygonStamped, (u, v, 0) [px] of the waterline
  vertices in the image's frame (``header.frame_id`` of the image);
* ``perception/navigable/mask``: Image mono8 (255 = navigable) of the input's size;
* ``perception/navigable/grid``: OccupancyGrid in ``map_frame`` (0 free, 100 blocked,
  -1 unknown), only when camera_info and a pose at the stamp are known.

Unsupported encodings, size mismatches and malformed images are dropped and counted on
``diagnostics`` (DESIGN.md §5). The model is ``models/segmentation.pt`` of the package
share, or the ``model`` parameter; a bad checkpoint is a ConfigError (exit 2) naming it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from geometry_msgs.msg import PolygonStamped
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from asv_autonomy.mapping.pose_buffer import PoseBuffer, PoseBufferConfig
from asv_autonomy.measurements import InvalidInput
from asv_autonomy.perception.projection import ProjectionConfig, project_boundary
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import ConfigError, declare_config
from asv_autonomy.ros.spin import run_node, set_torch_threads

IMAGE_TOPIC = 'sensors/camera/image_raw'
INFO_TOPIC = 'sensors/camera/camera_info'
ODOMETRY_TOPIC = 'odometry/filtered'
MIN_SIZE = 16   # [px] smaller images are dropped ('size')


@dataclass(frozen=True)
class SegmentationNodeConfig:
    """Args:
        model: checkpoint file; '' = models/segmentation.pt of the package share.
        map_frame: frame of the odometry and of the published grid.
        publish_grid: project the waterline into ``perception/navigable/grid``.
        torch_threads: CPU threads of the network (1: a batch of one gains little from
            more, and the other nodes of the boat need the cores); 0 keeps torch's default.
    """

    model: str = ''
    map_frame: str = 'map'
    publish_grid: bool = True
    torch_threads: int = 1

    def __post_init__(self):
        if not self.map_frame:
            raise ValueError('map_frame must not be empty')
        if self.torch_threads < 0:
            raise ValueError(f'torch_threads must be >= 0, got {self.torch_threads}')


class Frame(NamedTuple):
    stamp: float
    frame_id: str
    rgb: np.ndarray


def load_segmenter(path: str):
    """The Segmenter of ``path`` ('' = the package's default); ConfigError('model', ...)
    naming the file when it cannot be used."""
    from asv_autonomy.perception.segmenter import CheckpointError, Segmenter
    if not path:
        from asv_autonomy.cli.launch_xml import LaunchError, find_package_share
        try:
            path = str(find_package_share('asv_autonomy') / 'models' / 'segmentation.pt')
        except LaunchError as error:
            raise ConfigError('model', f'no default checkpoint: {error}') from None
    try:
        return Segmenter.load(path)
    except CheckpointError as error:
        raise ConfigError('model', str(error)) from None


class SegmentationNode(Node):
    def __init__(self):
        super().__init__('segmentation')
        self.config = declare_config(self, SegmentationNodeConfig)
        self.projection = declare_config(self, ProjectionConfig, 'projection')
        self.poses = PoseBuffer(declare_config(self, PoseBufferConfig, 'pose'))
        set_torch_threads(self.config.torch_threads)
        self.segmenter = load_segmenter(self.config.model)
        self.health = InputHealth(self)
        self.intrinsics: cv.CameraIntrinsics | None = None
        self.frames = 0
        self.grids = 0
        self.grid_skipped: dict[str, int] = {}
        self.segment_ms = math.nan
        self.rate_hz = math.nan
        self._rate_mark = (time.monotonic(), 0)     # (wall time, frames) of the last status
        self.polyline_pub = self.create_publisher(PolygonStamped, 'perception/navigable/polyline',
                                                  10)
        self.mask_pub = self.create_publisher(Image, 'perception/navigable/mask', 10)
        self.grid_pub = self.create_publisher(OccupancyGrid, 'perception/navigable/grid',
                                              qos.LATCHED)
        self.create_subscription(Image, IMAGE_TOPIC, self.health.guard(
            IMAGE_TOPIC, self.read_image, self.on_image), qos.SENSOR)
        self.create_subscription(CameraInfo, INFO_TOPIC, self.health.guard(
            INFO_TOPIC, cv.from_camera_info, self.on_camera_info), qos.SENSOR)
        self.create_subscription(Odometry, ODOMETRY_TOPIC, self.health.guard(
            ODOMETRY_TOPIC, lambda m: cv.from_odometry(m, frame_id=self.config.map_frame),
            self.poses.add_pose), qos.SENSOR)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)

    def read_image(self, msg: Image) -> Frame:
        """Image message -> Frame; InvalidInput for images the node must drop."""
        rgb = cv.from_image(msg, 'rgb8')
        height, width = rgb.shape[:2]
        if height < MIN_SIZE or width < MIN_SIZE:
            raise InvalidInput('size', f'{width}x{height} px is below {MIN_SIZE}x{MIN_SIZE}')
        info = self.intrinsics
        if info is not None and (info.width, info.height) != (width, height):
            raise InvalidInput('size_mismatch', f'{width}x{height} px image, camera_info '
                                                f'says {info.width}x{info.height}')
        return Frame(cv.from_time(msg.header.stamp), msg.header.frame_id, rgb)

    def on_camera_info(self, intrinsics: cv.CameraIntrinsics) -> None:
        self.intrinsics = intrinsics

    def on_image(self, frame: Frame) -> None:
        start = time.perf_counter()
        seg = self.segmenter.segment(frame.rgb)
        self.segment_ms = 1e3 * (time.perf_counter() - start)
        polygon = cv.to_polygon_stamped(np.asarray(seg.polyline, dtype=np.float64),
                                        frame.stamp, frame.frame_id)
        self.polyline_pub.publish(polygon)
        self.mask_pub.publish(cv.to_image(np.ascontiguousarray(seg.mask), frame.stamp,
                                          frame.frame_id, 'mono8'))
        if self.config.publish_grid:
            self._publish_grid(frame, seg)
        self.frames += 1

    def _publish_grid(self, frame: Frame, seg) -> None:
        if self.intrinsics is None:
            self._skip_grid('no_camera_info')
            return
        try:
            pose = self.poses.pose_at(frame.stamp)
        except InvalidInput as error:
            self._skip_grid(error.reason)
            return
        i = self.intrinsics
        grid = project_boundary(np.asarray(seg.boundary_rows), (i.fx, i.fy, i.cx, i.cy),
                                tuple(float(v) for v in pose), self.projection)
        self.grid_pub.publish(cv.to_occupancy_grid(
            cv.GridArray(grid.data, grid.resolution, grid.origin_x, grid.origin_y,
                         grid.origin_yaw), frame.stamp, self.config.map_frame))
        self.grids += 1

    def _skip_grid(self, reason: str) -> None:
        self.grid_skipped[reason] = self.grid_skipped.get(reason, 0) + 1

    def status_values(self) -> dict:
        now, (then, frames) = time.monotonic(), self._rate_mark
        if now > then:
            self.rate_hz = (self.frames - frames) / (now - then)   # frames/s since last status
        self._rate_mark = (now, self.frames)
        values = {'frames': self.frames, 'grids': self.grids,
                  'segment_ms': round(self.segment_ms, 2), 'rate_hz': round(self.rate_hz, 2),
                  'camera_info': self.intrinsics is not None}
        values.update({f'grid_skipped/{k}': n for k, n in sorted(self.grid_skipped.items())})
        return values

    def condition(self) -> tuple[int, str]:
        if self.frames == 0:
            return cv.WARN, f'no image yet on {IMAGE_TOPIC}'
        if self.config.publish_grid and self.intrinsics is None:
            return cv.WARN, f'no {INFO_TOPIC}: no grid'
        return cv.OK, ''


def main(args=None):
    return run_node(SegmentationNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
