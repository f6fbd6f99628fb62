"""`asv report RUN_DIR`: summary.json and report.png of a recorded mission.

Everything is computed from the run's bag (so a report can be regenerated, or made for a
bag recorded elsewhere); what the bag cannot know (node exit codes, the wall time of the
whole command) comes from the mission runner and is kept when a report is regenerated.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asv_autonomy import bagio
from asv_autonomy.anomaly.mission import faults_from_reports, mission_anomalies
from asv_autonomy.cli.common import CliError
from asv_autonomy.mapping.grid import SURVEYED_RADIUS_M

if TYPE_CHECKING:   # imported lazily at run time: they pull in torch
    from asv_autonomy.planning.survey_benchmark import SurveySettings
    from asv_autonomy.sim.simulator import SimConfig

GROUND_TRUTH_ODOMETRY = 'sim/ground_truth/odometry'
FILTERED_ODOMETRY = 'odometry/filtered'
PLAN_PATH = 'plan/path'
GOAL_POSE = 'goal_pose'
# The simulator's own diagnostics status (energy, contacts).
SIM_STATUS = 'sim'
# A goto mission reached its goal when the true track came this close [m].
GOAL_RADIUS_M = 5.0
DIAGNOSTICS = 'diagnostics'
CLOCK = 'clock'
GROUND_TRUTH_PREFIX = 'sim/ground_truth/'
NAVIGABLE_MASK = 'perception/navigable/mask'
TRUE_NAVIGABLE_MASK = 'sim/ground_truth/navigable_mask'
# [s] a true mask waits this long (bag time) for the segmentation of the same frame.
MASK_PAIRING_WINDOW_S = 10.0
MAP_PREFIX = 'map/'
# A survey waypoint counts as visited when the true track passed this close [m].
VISIT_RADIUS_M = 5.0
UPDATE_P95_SUFFIX = '/update_ms_p95'
# The contract topic each default map field is built from (raw readings shown when the bag
# has no truth, e.g. a replayed real log).
FIELD_TOPICS = {'sensors/sonar/depth': 'bathymetry', 'sensors/water/temperature': 'temperature'}
# The anomaly node's statuses on `diagnostics` (ros/anomaly_node.py): its overall one per
# scored window, and its own health status (named after the node).
ANOMALY_OVERALL = 'anomaly: overall'
ANOMALY_NODE = 'anomaly'
# The simulator's injected faults (ros/sim_messages.py): one status per active fault.
SIM_FAULTS = 'sim/faults'
WARN_LEVEL = 1


@dataclass
class RunData:
    """Arrays extracted from one mission bag (topic names without namespace prefix)."""

    messages: dict = field(default_factory=dict)          # topic -> count
    clock: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (N, 2) wall [s], sim [s]
    truth: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (N, 3) t, x, y
    estimate: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # (N, 3) t, x, y
    plan: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))   # (N, 2) x, y
    dropped: dict = field(default_factory=dict)            # node -> dropped_total
    fields: dict = field(default_factory=dict)             # name -> (x, y, value) arrays
    maps: dict = field(default_factory=dict)               # name -> (x, y, mean, std), final
    map_update_ms_p95: dict = field(default_factory=dict)  # name -> [ms], last diagnostics
    readings: dict = field(default_factory=dict)           # field -> (N, 2) t, value
    segmentation_iou: list = field(default_factory=list)   # water IoU per segmented frame
    goal: np.ndarray | None = None                         # (2,) last goal_pose x, y
    sim_values: dict = field(default_factory=dict)         # last values of the sim's status
    # `anomaly: overall` statuses: (N, 4) t [s], alarm (0/1), score, threshold; the group
    # each names ('' when none); whether the anomaly node's own status was seen.
    anomaly: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    anomaly_groups: list = field(default_factory=list)
    anomaly_node: bool = False
    # sim/faults messages: (t [s], [(type, channel, onset [s] | None, duration [s] | None)])
    fault_reports: list = field(default_factory=list)

    @property
    def track(self) -> np.ndarray:
        """(N, 3) t, x, y of the boat: the truth when the bag has it, else the estimate."""
        return self.truth if len(self.truth) else self.estimate


def _relative(topic: str, namespace: str) -> str:
    prefix = namespace.rstrip('/') + '/'
    return topic[len(prefix):] if topic.startswith(prefix) else topic.lstrip('/')


def _stamp(header) -> float:
    return header.stamp.sec + 1e-9 * header.stamp.nanosec


def _pointcloud_columns(msg) -> dict:
    """Float32 columns of a PointCloud2 (as deserialized by rosbags) by field name."""
    dtype = np.dtype({'names': [f.name for f in msg.fields],
                      'formats': ['<f4'] * len(msg.fields),
                      'offsets': [f.offset for f in msg.fields],
                      'itemsize': msg.point_step})
    points = np.frombuffer(np.asarray(msg.data, np.uint8).tobytes(), dtype=dtype)
    return {name: points[name].astype(float) for name in dtype.names}


def _is_map(name: str) -> bool:
    """``map/<field>`` (a mean/std cloud), not ``map/<field>/uncertainty``."""
    return name.startswith(MAP_PREFIX) and name.count('/') == 1


def load_run(bag_path: Path, namespace: str = '/') -> RunData:
    """Read what the report needs from a mission bag (only the topics it uses; of the
    field truths and maps only the last message, which is all the report shows)."""
    run = RunData()
    topics = bagio.bag_info(bag_path)['topics']
    run.messages = {_relative(t, namespace): info['count'] for t, info in topics.items()}
    wanted = [t for t in topics if _relative(t, namespace) in (
        CLOCK, GROUND_TRUTH_ODOMETRY, FILTERED_ODOMETRY, PLAN_PATH, GOAL_POSE, DIAGNOSTICS,
        SIM_FAULTS, *FIELD_TOPICS,
        NAVIGABLE_MASK, TRUE_NAVIGABLE_MASK)
        or (topics[t]['type'] == 'sensor_msgs/msg/PointCloud2' and (
            _relative(t, namespace).startswith(GROUND_TRUTH_PREFIX)
            or _is_map(_relative(t, namespace))))]
    clock, truth, estimate, anomaly = [], [], [], []
    readings = {name: [] for name in FIELD_TOPICS.values()}
    true_masks: dict = {}   # stamp -> bool mask, until its segmentation arrives
    last_cloud = {}     # relative topic -> (msgtype, raw) of its last message
    for topic, msgtype, log_time_ns, raw in bagio.read_messages(bag_path, wanted):
        name = _relative(topic, namespace)
        if name == CLOCK:
            msg = bagio.deserialize(msgtype, raw)
            clock.append((log_time_ns * 1e-9, msg.clock.sec + 1e-9 * msg.clock.nanosec))
        elif name in (GROUND_TRUTH_ODOMETRY, FILTERED_ODOMETRY):
            msg = bagio.deserialize(msgtype, raw)
            p = msg.pose.pose.position
            (truth if name == GROUND_TRUTH_ODOMETRY else estimate).append(
                (_stamp(msg.header), p.x, p.y))
        elif name in (NAVIGABLE_MASK, TRUE_NAVIGABLE_MASK):
            msg = bagio.deserialize(msgtype, raw)
            t = _stamp(msg.header)
            mask = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :msg.width] > 0
            if name == TRUE_NAVIGABLE_MASK:
                true_masks[t] = mask
                for old in [s for s in true_masks if s < t - MASK_PAIRING_WINDOW_S]:
                    del true_masks[old]
            elif t in true_masks and true_masks[t].shape == mask.shape:
                true_mask = true_masks.pop(t)
                union = np.logical_or(true_mask, mask).sum()
                run.segmentation_iou.append(
                    float(np.logical_and(true_mask, mask).sum() / union) if union else 1.0)
        elif name in FIELD_TOPICS:
            msg = bagio.deserialize(msgtype, raw)
            value = msg.range if hasattr(msg, 'range') else msg.temperature
            readings[FIELD_TOPICS[name]].append((_stamp(msg.header), value))
        elif name == PLAN_PATH:
            msg = bagio.deserialize(msgtype, raw)
            if msg.poses:
                run.plan = np.array([(p.pose.position.x, p.pose.position.y) for p in msg.poses])
        elif name == GOAL_POSE:
            p = bagio.deserialize(msgtype, raw).pose.position
            run.goal = np.array([p.x, p.y])
        elif name == SIM_FAULTS:
            msg = bagio.deserialize(msgtype, raw)
            run.fault_reports.append((_stamp(msg.header), [_fault_of(s) for s in msg.status]))
        elif name == DIAGNOSTICS:
            msg = bagio.deserialize(msgtype, raw)
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                short_name = status.name.rsplit('/', 1)[-1]
                if short_name == SIM_STATUS:
                    run.sim_values = values
                elif short_name == ANOMALY_NODE:
                    run.anomaly_node = True
                elif short_name == ANOMALY_OVERALL:
                    anomaly.append((_stamp(msg.header), float(_level(status) >= WARN_LEVEL),
                                    _float(values.get('score')),
                                    _float(values.get('threshold'))))
                    run.anomaly_groups.append(values.get('group', '') or '')
                if 'dropped_total' in values:
                    run.dropped[status.name.lstrip('/')] = int(values['dropped_total'])
                for key, value in values.items():
                    if key.endswith(UPDATE_P95_SUFFIX):
                        run.map_update_ms_p95[key[:-len(UPDATE_P95_SUFFIX)]] = float(value)
        else:
            last_cloud[name] = (msgtype, raw)
    for name, (msgtype, raw) in last_cloud.items():
        columns = _pointcloud_columns(bagio.deserialize(msgtype, raw))
        field_name = name.rsplit('/', 1)[1]
        if name.startswith(GROUND_TRUTH_PREFIX):
            run.fields[field_name] = (columns['x'], columns['y'], columns['value'])
        else:
            run.maps[field_name] = (columns['x'], columns['y'], columns['mean'], columns['std'])
    run.clock = np.array(clock).reshape(-1, 2)
    run.truth = np.array(truth).reshape(-1, 3)
    run.readings = {name: np.array(values).reshape(-1, 2) for name, values in readings.items()
                    if values}
    run.estimate = np.array(estimate).reshape(-1, 3)
    run.anomaly = np.array(anomaly).reshape(-1, 4)
    return run


def _level(status) -> int:
    """A DiagnosticStatus level as an int (rosbags gives an int; bytes tolerated)."""
    level = status.level
    return level[0] if isinstance(level, (bytes, bytearray)) else int(level)


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float('nan')


def _fault_of(status) -> tuple:
    """(type, channel, onset [s] | None, duration [s] | None) of a sim/faults status."""
    values = {kv.key: kv.value for kv in status.values}
    channel = status.hardware_id or status.name.rsplit('/', 1)[-1]
    onset, duration = _float(values.get('onset')), _float(values.get('duration'))
    return (values.get('fault') or 'unknown', channel,
            onset if np.isfinite(onset) else None, duration if np.isfinite(duration) else None)


def _track_length(track: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(track[:, 1:3], axis=0), axis=1).sum()) if len(track) > 1 else 0.0


def _localization_rmse(run: RunData) -> float | None:
    if len(run.truth) < 2 or len(run.estimate) < 1:
        return None
    order = np.argsort(run.truth[:, 0])
    t, x, y = run.truth[order].T
    inside = (run.estimate[:, 0] >= t[0]) & (run.estimate[:, 0] <= t[-1])
    if not inside.any():
        return None
    est = run.estimate[inside]
    err = np.hypot(est[:, 1] - np.interp(est[:, 0], t, x), est[:, 2] - np.interp(est[:, 0], t, y))
    return float(np.sqrt(np.mean(err ** 2)))


def _survey_visited_fraction(run: RunData) -> float | None:
    """Fraction of the planned path (resampled every metre) the true track came near."""
    if len(run.plan) < 2 or len(run.truth) == 0:
        return None
    points = []
    for a, b in zip(run.plan[:-1], run.plan[1:]):
        n = max(int(np.ceil(np.linalg.norm(b - a))), 1)
        points.append(a + np.linspace(0.0, 1.0, n, endpoint=False)[:, None] * (b - a))
    points = np.vstack(points + [run.plan[-1:]])
    track = run.truth[:, 1:3]
    visited = np.zeros(len(points), bool)
    for chunk in range(0, len(track), 2000):  # bounded memory for long missions
        d = np.linalg.norm(points[:, None, :] - track[None, chunk:chunk + 2000, :], axis=2)
        visited |= d.min(axis=1) <= VISIT_RADIUS_M
    return float(visited.mean())


def _map_at(map_columns: tuple, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Map mean interpolated (bilinear) at points (x, y); NaN outside the map's grid."""
    from scipy.interpolate import RegularGridInterpolator

    xs, ys, mean = _to_grid(*map_columns[:3])
    if len(xs) < 2 or len(ys) < 2:
        return np.full(len(x), np.nan)
    interpolate = RegularGridInterpolator((ys, xs), mean, bounds_error=False,
                                          fill_value=np.nan)
    return interpolate(np.column_stack([y, x]))


def _surveyed(run: RunData, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points within SURVEYED_RADIUS_M of the true track."""
    from scipy.spatial import cKDTree

    if len(run.truth) == 0:
        return np.zeros(len(x), bool)
    distance, _ = cKDTree(run.truth[:, 1:3]).query(np.column_stack([x, y]),
                                                   distance_upper_bound=SURVEYED_RADIUS_M)
    return np.isfinite(distance)


def _map_rmse(run: RunData) -> dict:
    """Field -> RMSE of the final map's mean against the (last published) truth, at the
    truth's grid points within SURVEYED_RADIUS_M of the true track (water only)."""
    result = {}
    for name, columns in sorted(run.maps.items()):
        if name not in run.fields:
            continue
        x, y, truth = run.fields[name]
        estimate = _map_at(columns, x, y)
        use = np.isfinite(truth) & np.isfinite(estimate) & _surveyed(run, x, y)
        if use.any():
            result[name] = round(float(np.sqrt(np.mean((estimate[use] - truth[use]) ** 2))), 4)
    return result


@dataclass(frozen=True)
class LawnmowerReference:
    """A survey mission's lawnmower counterpart, replayed headless for summary.json's
    ``survey_vs_lawnmower`` (see `survey_vs_lawnmower`).

    settings: `planning.survey_benchmark.SurveySettings` (the mission's survey polygon,
    the baseline's line spacing, the mapping node's GP of ``field``); sim_config: the
    simulator's `SimConfig` (seed, faults); field: the sonar-mapped field.
    """

    settings: 'SurveySettings'
    sim_config: 'SimConfig'
    field: str = 'bathymetry'


def survey_vs_lawnmower(run: RunData, reference: LawnmowerReference) -> dict | None:
    """The mission's final map against the lawnmower's after the same distance.

    The lawnmower (`planning.baseline.BaselineController`, the same polygon, world, seed
    and GP configuration) runs headless until it has travelled the mission's distance,
    every sonar reading mapped at its true position (the mission maps at its estimated
    poses: the comparison favours the lawnmower). Both maps are scored against the
    published truth at the same points: the truth's grid points inside the survey polygon,
    in water, where the mission's map has a value. None without a map or truth of the field.
    """
    from asv_autonomy.planning.survey_benchmark import inside_polygon, survey_map

    name = reference.field
    if name not in run.maps or name not in run.fields or len(run.track) < 2:
        return None
    x, y, truth = run.fields[name]
    polygon = np.asarray(reference.settings.polygon, float).reshape(-1, 2)
    keep = np.isfinite(truth) & (truth > reference.sim_config.vessel.draft) & \
        inside_polygon(np.column_stack([x, y]), polygon)
    estimate = _map_at(run.maps[name], x[keep], y[keep])
    scored = np.isfinite(estimate)
    if not scored.any():
        return None
    points = np.column_stack([x[keep], y[keep]])[scored]
    truth, estimate = truth[keep][scored], estimate[scored]
    distance = _track_length(run.track)
    mapper, travelled = survey_map('baseline', reference.sim_config.seed, distance,
                                   reference.settings, reference.sim_config)
    lawnmower, _ = mapper.predict(points)
    return {
        'field': name,
        'distance_m': round(distance, 2),
        'map_rmse': round(float(np.sqrt(np.mean((estimate - truth) ** 2))), 4),
        'lawnmower_map_rmse': round(float(np.sqrt(np.mean((lawnmower - truth) ** 2))), 4),
        # less than distance_m when the lawnmower finished its pattern first
        'lawnmower_distance_m': round(travelled, 2),
        'points': int(len(points)),
        # of the truth's points in the polygon: the rest lie outside the mission's map
        'points_fraction': round(float(scored.mean()), 4),
    }


def summarize(run: RunData, nodes: dict | None = None,
              wall_duration_s: float | None = None,
              lawnmower: LawnmowerReference | None = None) -> dict:
    """summary.json content (see the README for each key); ``survey_vs_lawnmower`` only
    with a ``lawnmower`` reference (else null)."""
    sim_span = float(run.clock[-1, 1] - run.clock[0, 1]) if len(run.clock) > 1 else 0.0
    wall_span = float(run.clock[-1, 0] - run.clock[0, 0]) if len(run.clock) > 1 else 0.0
    rmse = _localization_rmse(run)
    visited = _survey_visited_fraction(run)
    return {
        'sim_duration_s': round(sim_span, 3),
        'wall_duration_s': round(wall_duration_s if wall_duration_s is not None else wall_span, 3),
        # Simulated seconds per wall second while the simulator ran (startup excluded).
        'real_time_factor': round(sim_span / wall_span, 3) if wall_span > 0 else None,
        'distance_m': round(_track_length(run.track), 2),
        'nodes': dict(nodes or {}),
        'messages': dict(sorted(run.messages.items())),
        'dropped_inputs': dict(sorted(run.dropped.items())),
        'localization_rmse_m': None if rmse is None else round(rmse, 3),
        'survey_visited_fraction': None if visited is None else round(visited, 4),
        # Field -> RMSE [field unit] of the final map/<field> mean over the surveyed area.
        'map_rmse': _map_rmse(run),
        # Field -> p95 [ms] of the mapping node's model updates (its last diagnostics).
        # Mean water IoU of perception/navigable/mask against the simulator's true mask of
        # the same frames (null without both).
        'segmentation_iou': (round(float(np.mean(run.segmentation_iou)), 4)
                             if run.segmentation_iou else None),
        'segmentation_frames': len(run.segmentation_iou),
        # (null for a field that got no reading: strict JSON has no NaN)
        'map_update_ms_p95': {name: value if np.isfinite(value) else None
                              for name, value in sorted(run.map_update_ms_p95.items())},
        # Goto missions (a goal_pose in the bag): the true track came within GOAL_RADIUS_M
        # of the last goal (null without a goal).
        'goal_reached': _goal_reached(run),
        # From the simulator's last status: contacts (aground or against an obstacle, one
        # per contact) and the thrusters' electrical energy [J] (null without it).
        'collisions': _sim_value(run, 'contacts', int),
        'energy_J': _sim_value(run, 'energy_J', float),
        # Survey missions of the planner: its final map against the lawnmower's after the
        # same distance (see survey_vs_lawnmower).
        'survey_vs_lawnmower': (None if lawnmower is None
                                else survey_vs_lawnmower(run, lawnmower)),
        # The anomaly detector against the simulator's injected faults (null when no
        # anomaly node ran); see anomaly/mission.py for each key.
        'anomalies': _anomalies(run),
    }


def _origin(run: RunData) -> float:
    """[s] bag time of the mission start: the first /clock, else the earliest stamp of the
    track, the anomaly statuses and the fault reports (a bag without /clock)."""
    if len(run.clock):
        return float(run.clock[0, 1])
    stamps = [float(series[:, 0].min()) for series in (run.truth, run.estimate, run.anomaly)
              if len(series)] + [stamp for stamp, _ in run.fault_reports]
    return min(stamps) if stamps else 0.0


def _anomalies(run: RunData) -> dict | None:
    if not len(run.anomaly) and not run.anomaly_node:
        return None
    return mission_anomalies(run.anomaly[:, 0], run.anomaly[:, 1] > 0.5, run.anomaly_groups,
                             faults_from_reports(run.fault_reports), origin_s=_origin(run))


def _goal_reached(run: RunData) -> bool | None:
    if run.goal is None or len(run.truth) == 0:
        return None
    return bool(np.hypot(*(run.truth[:, 1:3] - run.goal).T).min() <= GOAL_RADIUS_M)


def _sim_value(run: RunData, key: str, kind):
    try:
        return kind(float(run.sim_values[key]))
    except (KeyError, ValueError):
        return None


def _to_grid(x: np.ndarray, y: np.ndarray, value: np.ndarray):
    """Scattered points of a regular grid -> (xs (nx,), ys (ny,), values (ny, nx), NaN gaps)."""
    xs, ys = np.unique(x), np.unique(y)
    grid = np.full((len(ys), len(xs)), np.nan)
    grid[np.searchsorted(ys, y), np.searchsorted(xs, x)] = value
    return xs, ys, grid


# Colour maps of a field's mean/truth panels (others: viridis).
_FIELD_CMAPS = {'bathymetry': 'viridis_r', 'temperature': 'inferno'}


def plot(run: RunData, summary: dict, path: Path) -> None:
    """Trajectory over the true bathymetry and land, with the plan and the estimate; below,
    per mapped field, the final map's mean and std beside the truth; at the bottom, when an
    anomaly node ran, its overall score against the injected faults."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    mapped = sorted(run.maps)
    anomalies = summary.get('anomalies')
    extra = [0.6] if anomalies is not None else []
    fig = plt.figure(figsize=(13, 8 + 3.6 * len(mapped) + 2.2 * len(extra)), dpi=100)
    grid = fig.add_gridspec(1 + len(mapped) + len(extra), 3,
                            height_ratios=[2.3] + [1.0] * len(mapped) + extra)
    _plot_trajectory(fig, fig.add_subplot(grid[0, :]), run, summary)
    for row, name in enumerate(mapped, start=1):
        axes = [fig.add_subplot(grid[row, col]) for col in range(3)]
        _plot_field(fig, axes, run, name, summary.get('map_rmse', {}).get(name))
    if anomalies is not None:
        _plot_anomalies(fig.add_subplot(grid[-1, :]), run, anomalies)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_trajectory(fig, ax, run: RunData, summary: dict) -> None:
    if 'bathymetry' in run.fields:
        xs, ys, depth = _to_grid(*run.fields['bathymetry'])
        art = ax.pcolormesh(xs, ys, np.ma.masked_invalid(depth), cmap=_land_cmap('Blues'),
                            shading='nearest')
        fig.colorbar(art, ax=ax, shrink=0.7, label='true depth [m] (brown: land)')
    if 'temperature' in run.fields:
        xs, ys, temperature = _to_grid(*run.fields['temperature'])
        lines = ax.contour(xs, ys, temperature, levels=8, cmap='autumn', linewidths=0.8)
        ax.clabel(lines, fontsize=6, fmt='%.1f°C')
    if len(run.plan) and len(run.truth):   # (a replay's plan is not what the boat did)
        ax.plot(run.plan[:, 0], run.plan[:, 1], '--', c='0.3', lw=0.8, label='survey plan')
    if len(run.truth):
        ax.plot(run.truth[:, 1], run.truth[:, 2], c='crimson', lw=1.4, label='true track')
        ax.plot(*run.truth[0, 1:3], 'o', c='crimson', label='start')
    if len(run.estimate):
        ax.plot(run.estimate[:, 1], run.estimate[:, 2], c='gold', lw=0.7,
                label='odometry/filtered')
    track = run.track
    if len(track):
        pad = 150.0
        ax.set_xlim(track[:, 1].min() - pad, track[:, 1].max() + pad)
        ax.set_ylim(track[:, 2].min() - pad, track[:, 2].max() + pad)
    ax.set_aspect('equal')
    ax.set_xlabel('east [m]')
    ax.set_ylabel('north [m]')
    rmse = summary.get('localization_rmse_m')
    how = 'simulated' if len(run.truth) else 'of bag time replayed'
    ax.set_title(f"{summary['sim_duration_s']:.0f} s {how} at {summary['real_time_factor']}x, "
                 f"{summary['distance_m']:.0f} m travelled"
                 + (f', localization RMSE {rmse:.2f} m' if rmse is not None else ''), fontsize=9)
    ax.legend(loc='upper right', fontsize=7)


def _plot_anomalies(ax, run: RunData, anomalies: dict) -> None:
    """Overall anomaly score and threshold over mission time, alarms in red, the injected
    faults shaded (green when detected, grey when missed)."""
    origin = _origin(run)
    end = float(run.clock[-1, 1] - origin) if len(run.clock) else None
    for fault in anomalies['faults']:
        stop = fault['end_s'] if fault['end_s'] is not None else end
        if stop is None:
            stop = float(run.anomaly[:, 0].max() - origin) if len(run.anomaly) else fault['onset_s']
        ax.axvspan(fault['onset_s'], stop, color='tab:green' if fault['detected'] else '0.6',
                   alpha=0.25, lw=0)
        label = f"{fault['type']} ({fault['channel']})"
        if fault['detected']:
            label += (f", {fault['detection_delay_s']:.1f} s"
                      + (f" -> {fault['attributed_channel']}"
                         if fault['attributed_channel'] else ''))
        else:
            label += ', missed'
        ax.text(fault['onset_s'], 0.03, ' ' + label, transform=ax.get_xaxis_transform(),
                fontsize=6, va='bottom', clip_on=True)
    if len(run.anomaly):
        t, alarm, score, threshold = run.anomaly[np.argsort(run.anomaly[:, 0], kind='stable')].T
        t, alarm = t - origin, alarm > 0.5
        ax.plot(t, score, c='tab:blue', lw=0.7, label='overall score')
        ax.plot(t, threshold, '--', c='0.2', lw=0.8, label='threshold')
        ax.plot(t[alarm], score[alarm], '.', c='crimson', ms=3, label='alarm')
        finite = score[np.isfinite(score)]
        if finite.size and finite.min() > 0.0 and finite.max() > 50.0 * finite.min():
            ax.set_yscale('log')
        ax.legend(loc='upper right', fontsize=7)
    ax.set_xlabel('mission time [s]')
    ax.set_ylabel('anomaly score')
    detected = sum(f['detected'] for f in anomalies['faults'])
    rate = anomalies['false_alarms_per_hour']
    ax.set_title(
        f"anomaly detector: {detected}/{len(anomalies['faults'])} injected faults detected, "
        f"{anomalies['false_alarms']} false alarm(s)"
        + (f' ({rate:.1f}/h)' if rate is not None else '')
        + ('' if anomalies['detector_running'] else ' - no window scored'), fontsize=9)
    ax.tick_params(labelsize=7)


def _plot_field(fig, axes, run: RunData, name: str, rmse: float | None) -> None:
    """Mean, std and truth of one field over the map's extent, with the true track."""
    x, y, mean, std = run.maps[name]
    xs, ys, mean_grid = _to_grid(x, y, mean)
    std_grid = _to_grid(x, y, std)[2]
    cmap = _FIELD_CMAPS.get(name, 'viridis')
    truth = run.fields.get(name)
    low, high = np.nanmin(mean_grid), np.nanmax(mean_grid)
    if truth is not None:
        inside = ((truth[0] >= xs[0]) & (truth[0] <= xs[-1]) & (truth[1] >= ys[0])
                  & (truth[1] <= ys[-1]) & np.isfinite(truth[2]))
        if inside.any():   # one colour scale for mean and truth: the truth's
            low, high = np.min(truth[2][inside]), np.max(truth[2][inside])
    elif name in run.readings and len(run.readings[name]):   # or the readings'
        low, high = np.percentile(run.readings[name][:, 1], [1.0, 99.0])
    # Cells the data did not reach (std at the prior's) are left blank.
    mean_grid = np.where(std_grid < 0.95 * np.nanmax(std_grid), mean_grid, np.nan)
    panels = [(mean_grid, cmap, (low, high), f'{name}: map mean'
               + (f' (RMSE {rmse:.3g} near the track)' if rmse is not None else '')),
              (std_grid, 'magma', (0.0, np.nanmax(std_grid)), f'{name}: map std')]
    for ax, (values, colours, (vmin, vmax), title) in zip(axes, panels):
        art = ax.pcolormesh(xs, ys, values, cmap=colours, vmin=vmin, vmax=vmax,
                            shading='nearest')
        fig.colorbar(art, ax=ax, shrink=0.85)
        ax.set_title(title, fontsize=8)
    truth_ax = axes[2]
    if truth is not None:
        txs, tys, truth_grid = _to_grid(*truth)
        art = truth_ax.pcolormesh(txs, tys, np.ma.masked_invalid(truth_grid),
                                  cmap=_land_cmap(cmap),
                                  vmin=low, vmax=high, shading='nearest')
        fig.colorbar(art, ax=truth_ax, shrink=0.85)
        truth_ax.set_title(f'{name}: truth (sim/ground_truth/{name}, last)', fontsize=8)
    elif name in run.readings and len(run.estimate) > 1:
        # No truth (a real log): the raw readings where the estimate put the boat.
        t, value = run.readings[name].T
        inside = (t >= run.estimate[0, 0]) & (t <= run.estimate[-1, 0])
        order = np.argsort(run.estimate[:, 0])
        x = np.interp(t[inside], run.estimate[order, 0], run.estimate[order, 1])
        y = np.interp(t[inside], run.estimate[order, 0], run.estimate[order, 2])
        art = truth_ax.scatter(x, y, c=value[inside], s=3, cmap=cmap, vmin=low, vmax=high)
        fig.colorbar(art, ax=truth_ax, shrink=0.85)
        truth_ax.set_title(f'{name}: the {int(inside.sum())} raw readings (no truth)',
                           fontsize=8)
    else:
        truth_ax.set_title(f'{name}: no truth in the bag', fontsize=8)
    half = 0.5 * (xs[1] - xs[0]) if len(xs) > 1 else 1.0
    for ax in axes if len(run.truth) else axes[:2]:
        if len(run.track):
            ax.plot(run.track[:, 1], run.track[:, 2], c='w', lw=0.5, alpha=0.8)
    for ax in axes:
        ax.set_xlim(xs[0] - half, xs[-1] + half)
        ax.set_ylim(ys[0] - half, ys[-1] + half)
        ax.set_aspect('equal')
        ax.tick_params(labelsize=7)


def _land_cmap(name: str):
    """Colour map ``name`` with NaN (land) in tan."""
    import matplotlib

    cmap = matplotlib.colormaps[name].copy()
    cmap.set_bad('#b5a27a')
    return cmap


def write_report(run_dir: Path, nodes: dict | None = None,
                 wall_duration_s: float | None = None, namespace: str = '/',
                 lawnmower: LawnmowerReference | None = None) -> dict:
    """Write RUN_DIR/summary.json and RUN_DIR/report.png from RUN_DIR/bag. Without
    ``nodes`` (`asv report` of an earlier run) the figures that only the run knew (node
    exit codes, wall time, the lawnmower comparison) are kept from its summary.json."""
    bag = run_dir / 'bag'
    previous = run_dir / 'summary.json'
    kept = None
    if nodes is None and previous.is_file():
        old = json.loads(previous.read_text())
        nodes, wall_duration_s = old.get('nodes'), old.get('wall_duration_s')
        kept = old.get('survey_vs_lawnmower')
    try:
        run = load_run(bag, namespace)
    except bagio.BagError as error:
        raise CliError(str(error)) from error
    summary = summarize(run, nodes, wall_duration_s, lawnmower)
    if lawnmower is None and kept is not None:
        summary['survey_vs_lawnmower'] = kept
    tmp = run_dir / 'summary.json.tmp'
    tmp.write_text(json.dumps(summary, indent=2) + '\n')
    tmp.replace(previous)
    plot(run, summary, run_dir / 'report.png')
    return summary


def register(subparsers) -> None:
    parser = subparsers.add_parser('report', help='summary.json and report.png of a mission run')
    parser.add_argument('run_dir', type=Path, help='a runs/<timestamp> folder (with bag/)')
    parser.add_argument('--namespace', default='/', help='namespace the boat ran in')
    parser.set_defaults(func=run)


def run(args) -> int:
    if not (args.run_dir / 'bag').exists():
        raise CliError(f'{args.run_dir} has no bag/ folder: not a mission run')
    summary = write_report(args.run_dir, namespace=args.namespace)
    print(json.dumps(summary, indent=2))
    print(f'wrote {args.run_dir / "summary.json"} and {args.run_dir / "report.png"}')
    return 0
