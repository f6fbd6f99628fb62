"""Mapping node: scalar readings + odometry -> one streaming GP map per field (DESIGN.md §1).

Each field (``bathymetry`` from ``sensors/sonar/depth``, ``temperature`` from
``sensors/water/temperature``, ...) is a stamped-scalar topic and a GP map with its own
tunables (parameters ``<field>.*``): a `GPMapper`, or for a field with
``temporal_timescale`` > 0 and ``static_background`` (the default) a
`DriftingFieldMapper` (static background + fading anomaly; `mapping.make_mapper`). A
reading is placed at the pose interpolated at its stamp from ``odometry/filtered`` plus
the sensor's lever arm (`PoseBuffer`); readings with NaN/inf, out-of-range values or no
pose within the tolerance are dropped and counted on ``diagnostics``. Placed readings are
folded into the field's model in small batches.
``map/<field>`` (PointCloud2: x, y, mean, std per grid cell) and ``map/<field>/uncertainty``
(OccupancyGrid, std scaled 0-100) are published, latched, at ``publish_rate`` on the node
clock. With ``snapshot_dir`` set, every model is saved there on shutdown, and restored on
start when ``restore`` is true, so a restarted node keeps its map.

Diagnostics values besides the input counts: ``held_readings`` (waiting for odometry),
``grid_cells``, and per field ``<field>/samples``, ``<field>/inducing_points``,
``<field>/update_ms_p50`` / ``_p95`` (model updates, the latest 1000) and
``<field>/predict_ms`` (the last map).
"""
from __future__ import annotations

import math
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2, Range, Temperature

from asv_autonomy.mapping.drifting import Mapper, load_mapper, make_mapper
from asv_autonomy.mapping.gp import GPMapperConfig
from asv_autonomy.mapping.grid import MapGrid, MapGridConfig
from asv_autonomy.mapping.pose_buffer import PoseBuffer, PoseBufferConfig
from asv_autonomy.measurements import InvalidInput
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros import qos
from asv_autonomy.ros.health import HealthReporter, InputHealth
from asv_autonomy.ros.params import ConfigError, declare_config
from asv_autonomy.ros.spin import run_node, set_torch_threads

# Message kind of a field's topic -> (message type, reader of a ScalarReading).
READERS = {
    'range': (Range, cv.from_range),
    'temperature': (Temperature, cv.from_temperature),
}
# The node works in bursts (a GP update, a publication) while readings and odometry keep
# coming (odometry at 200 msg/s wall at 10x real time).
INPUT_QOS = qos.SENSOR_BUFFERED
SNAPSHOT_SUFFIX = '.pt'
_TIMING_WINDOW = 1000     # latest updates whose p50/p95 diagnostics report
_NAME = re.compile(r'[a-z][a-z0-9_]*$')


@dataclass(frozen=True)
class MappingNodeConfig:
    """Args:
        map_frame: frame of odometry and of the published maps.
        field_names: the mapped fields; each also names its ``map/<field>`` topics and the
            parameter prefix of its GP (``<field>.kernel`` ...).
        field_topics: stamped-scalar topic of each field.
        field_kinds: message of each topic: 'range' (sensor_msgs/Range) or 'temperature'
            (sensor_msgs/Temperature).
        value_offsets: [field unit] added to each reading (bathymetry: the transducer's
            depth below the water line, so that depth below the transducer becomes depth).
        lever_arms: [m] sensor position (x forward, y left) in ``base_link``, flat, one pair
            per field.
        uncertainty_max: [field unit] posterior std shown as 100 on
            ``map/<field>/uncertainty``, one per field.
        publish_rate: [Hz] of the maps, on the node clock (simulated time with use_sim_time).
        max_publish_duty: largest share of wall time spent publishing maps: a publication
            is skipped until (1 / duty - 1) times its last cost has passed since it ended.
            A map of 20k cells costs ~0.15 s, so at 40x real time (a fast replay) the
            simulated-time rate alone would keep the node publishing while its input
            queues overflow.
        batch_size: placed readings of a field folded into its model at once (all pending
            ones also before each publication).
        threads: torch threads of this process (0: torch's default, one per core); one
            keeps a small computer's cores free for the other nodes, and is fastest for
            the mapper's small matrices.
        snapshot_dir: folder of the model snapshots (``<field>.pt``); '' = none.
        restore: start from the snapshots in ``snapshot_dir`` (a field without one starts
            empty; an unreadable one is a configuration error).
        pose: pairing readings with odometry.
        grid: cells of the published maps.
    """

    map_frame: str = 'map'
    field_names: tuple[str, ...] = ('bathymetry', 'temperature')
    field_topics: tuple[str, ...] = ('sensors/sonar/depth', 'sensors/water/temperature')
    field_kinds: tuple[str, ...] = ('range', 'temperature')
    value_offsets: tuple[float, ...] = (0.0, 0.0)
    lever_arms: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    uncertainty_max: tuple[float, ...] = (5.0, 1.0)
    publish_rate: float = 0.2
    max_publish_duty: float = 0.25
    batch_size: int = 1
    threads: int = 1
    snapshot_dir: str = ''
    restore: bool = False
    pose: PoseBufferConfig = PoseBufferConfig()
    grid: MapGridConfig = MapGridConfig()

    def __post_init__(self):
        n = len(self.field_names)
        for name in self.field_names:
            if not _NAME.match(name) or name in ('pose', 'grid'):
                raise ValueError(f'field_names: {name!r} must be lower_case_with_underscores '
                                 "and not 'pose' or 'grid'")
        if len(set(self.field_names)) != n:
            raise ValueError(f'field_names must be distinct, got {self.field_names}')
        for name, per_field in (('field_topics', 1), ('field_kinds', 1), ('value_offsets', 1),
                                ('lever_arms', 2), ('uncertainty_max', 1)):
            if len(getattr(self, name)) != per_field * n:
                raise ValueError(f'{name} needs {per_field * n} values ({per_field} per '
                                 f'field of field_names), got {len(getattr(self, name))}')
        for kind in self.field_kinds:
            if kind not in READERS:
                raise ValueError(f'field_kinds: {kind!r} is not one of {sorted(READERS)}')
        if not all(math.isfinite(v) for v in self.value_offsets + self.lever_arms):
            raise ValueError('value_offsets and lever_arms must be finite')
        if not all(math.isfinite(v) and v > 0.0 for v in self.uncertainty_max):
            raise ValueError(f'uncertainty_max must be > 0, got {self.uncertainty_max}')
        if not (math.isfinite(self.publish_rate) and self.publish_rate > 0.0):
            raise ValueError(f'publish_rate must be > 0 Hz, got {self.publish_rate}')
        if not 0.0 < self.max_publish_duty <= 1.0:
            raise ValueError(f'max_publish_duty must be in (0, 1], got {self.max_publish_duty}')
        if self.batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {self.batch_size}')
        if self.threads < 0:
            raise ValueError(f'threads must be >= 0, got {self.threads}')
        if self.restore and not self.snapshot_dir:
            raise ValueError('restore needs a snapshot_dir')


class Field:
    """One mapped field: its model, its pending batch and its publishers."""

    def __init__(self, node: Node, index: int, mapper: Mapper):
        cfg = node.config
        self.name = cfg.field_names[index]
        self.topic = cfg.field_topics[index]
        self.kind = cfg.field_kinds[index]
        self.offset = cfg.value_offsets[index]
        self.lever_arm = cfg.lever_arms[2 * index:2 * index + 2]
        self.uncertainty_max = cfg.uncertainty_max[index]
        self.mapper = mapper
        self.batch: list = []
        self.update_ms: deque[float] = deque(maxlen=_TIMING_WINDOW)
        self.predict_ms = math.nan
        self.map_pub = node.create_publisher(PointCloud2, f'map/{self.name}', qos.LATCHED)
        self.uncertainty_pub = node.create_publisher(
            OccupancyGrid, f'map/{self.name}/uncertainty', qos.LATCHED)


class MappingNode(Node):
    def __init__(self):
        super().__init__('mapping')
        self.config = cfg = declare_config(self, MappingNodeConfig)
        set_torch_threads(cfg.threads)
        self.poses = PoseBuffer(cfg.pose)
        self.grid = MapGrid(cfg.grid)
        self.health = InputHealth(self)
        self.fields: dict[str, Field] = {}
        for i, name in enumerate(cfg.field_names):
            mapper_config = declare_config(self, GPMapperConfig, name)
            self.fields[name] = Field(self, i, self._restore(name, mapper_config))
        self.create_subscription(Odometry, 'odometry/filtered', self.health.guard(
            'odometry/filtered', lambda m: cv.from_odometry(m, frame_id=cfg.map_frame),
            self.on_odometry), INPUT_QOS)
        for field in self.fields.values():
            message, reader = READERS[field.kind]
            self.create_subscription(message, field.topic, self.health.guard(
                field.topic, reader, lambda r, f=field: self.on_reading(f, r)), INPUT_QOS)
        self._next_publish_wall = -math.inf
        self.create_timer(1.0 / cfg.publish_rate, self.publish_maps)
        HealthReporter(self, self.health, extra=self.status_values, condition=self.condition)

    # ------------------------------------------------------------------ snapshots
    def _snapshot_path(self, name: str) -> Path:
        return Path(self.config.snapshot_dir) / f'{name}{SNAPSHOT_SUFFIX}'

    def _restore(self, name: str, mapper_config: GPMapperConfig) -> Mapper:
        if not self.config.restore:
            return make_mapper(mapper_config)
        path = self._snapshot_path(name)
        if not path.exists():
            self.get_logger().info(f'no snapshot {path}: {name} starts empty')
            return make_mapper(mapper_config)
        try:   # other parameters, or a snapshot of the other mapper class: refused
            mapper = load_mapper(path, mapper_config)
        except (OSError, ValueError) as error:
            raise ConfigError('snapshot_dir', f'cannot restore {name} from {path}: '
                                              f'{error}') from None
        self.grid.cover(mapper.inducing_points)
        self.get_logger().info(f'restored {name} from {path} ({mapper.num_samples} samples)')
        return mapper

    def save_snapshots(self) -> None:
        """Fold pending readings in and save every model to ``snapshot_dir``."""
        folder = Path(self.config.snapshot_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for field in self.fields.values():
            self._update(field)
            field.mapper.save(self._snapshot_path(field.name))   # atomic

    def destroy_node(self):
        if self.config.snapshot_dir:
            try:
                self.save_snapshots()
                self.get_logger().info(f'saved the maps to {self.config.snapshot_dir}')
            except Exception as error:  # noqa: BLE001 - still release the node's resources
                self.get_logger().error(f'could not save the maps to '
                                        f'{self.config.snapshot_dir}: {error}')
        for field in self.fields.values():   # no exit waits for a hyperparameter fit
            field.mapper.close()
        return super().destroy_node()

    # ------------------------------------------------------------------ inputs
    def on_odometry(self, odometry) -> None:
        self.poses.add_pose(odometry)
        self._take_placed()

    def on_reading(self, field: Field, reading) -> None:
        self.poses.hold(field.name, reading.stamp, reading.value + field.offset,
                        field.lever_arm)
        self._take_placed()

    def _take_placed(self) -> None:
        placed, refused = self.poses.release()
        for held, error in refused:
            field = self.fields[held.key]
            self.health.drop(field.topic, error.reason, str(error))
        for reading in placed:
            field = self.fields[reading.key]
            field.batch.append(reading)
            if len(field.batch) >= self.config.batch_size:
                self._update(field)

    def _update(self, field: Field) -> None:
        if not field.batch:
            return
        batch, field.batch = field.batch, []
        xy = np.array([(r.x, r.y) for r in batch])
        t = np.array([r.stamp for r in batch])
        y = np.array([r.value for r in batch])
        start = time.perf_counter()
        try:
            field.mapper.update(xy, t, y)
        except InvalidInput as error:
            for _ in batch:
                self.health.drop(field.topic, error.reason, str(error))
            return
        field.update_ms.append(1e3 * (time.perf_counter() - start))
        self.grid.cover(xy)

    # ------------------------------------------------------------------ outputs
    def publish_maps(self) -> None:
        start = time.monotonic()
        if start < self._next_publish_wall:
            return
        for field in self.fields.values():
            try:
                self._update(field)
                self._publish(field)
            except Exception as error:  # noqa: BLE001 - a failed map must not stop the node
                self.get_logger().error(f'map/{field.name} not published: '
                                        f'{type(error).__name__}: {error}',
                                        throttle_duration_sec=10.0)
        end = time.monotonic()
        duty = self.config.max_publish_duty
        self._next_publish_wall = end + (end - start) * (1.0 / duty - 1.0)

    def _publish(self, field: Field) -> None:
        cells = self.grid.cells()
        if cells is None or field.mapper.num_samples == 0:
            return
        start = time.perf_counter()
        mean, std = field.mapper.predict(cells.xy)
        field.predict_ms = 1e3 * (time.perf_counter() - start)
        now = self.get_clock().now().nanoseconds * 1e-9
        frame = self.config.map_frame
        field.map_pub.publish(cv.to_pointcloud2(
            {'x': cells.xy[:, 0], 'y': cells.xy[:, 1], 'mean': mean, 'std': std}, now, frame))
        occupancy = cv.occupancy_from_values(np.asarray(std).reshape(cells.shape), 0.0,
                                             field.uncertainty_max)
        field.uncertainty_pub.publish(cv.to_occupancy_grid(
            cv.GridArray(occupancy, cells.resolution, cells.origin_x, cells.origin_y),
            now, frame))

    # ------------------------------------------------------------------ health
    def status_values(self) -> dict:
        values = {'held_readings': self.poses.held}
        cells = self.grid.cells()
        values['grid_cells'] = 0 if cells is None else cells.shape[0] * cells.shape[1]
        for name, field in self.fields.items():
            values[f'{name}/samples'] = field.mapper.num_samples
            values[f'{name}/inducing_points'] = len(field.mapper.inducing_points)
            timings = np.array(field.update_ms)
            for q in (50, 95):
                values[f'{name}/update_ms_p{q}'] = (
                    round(float(np.percentile(timings, q)), 3) if len(timings) else math.nan)
            values[f'{name}/predict_ms'] = round(field.predict_ms, 3)
        return values

    def condition(self) -> tuple[int, str]:
        if self.poses.latest_stamp is None:
            return cv.WARN, 'waiting for odometry'
        empty = [name for name, f in self.fields.items() if f.mapper.num_samples == 0]
        if empty:
            return cv.WARN, f'no samples yet: {", ".join(empty)}'
        return cv.OK, ''


def main(args=None):
    return run_node(MappingNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
