"""Detector channels from a recorded bag (and labelled ``asv sim faults`` datasets).

Messages are read with :mod:`asv_autonomy.bagio` (rosbags, no rclpy), reduced to plain
samples stamped by their header (the thrust commands, which have none, by the ROS time
at which they were recorded: the newest ``/clock`` before them when the bag has one, as
the node stamps them by its clock at arrival; else the log time), and turned into
channels by
:class:`.channels.BoatChannelBuilder` - the same code the node runs. Ground truth comes
from ``labels.json`` next to the bag (``asv sim faults`` writes it) or, without one, from
the ``/sim/faults`` diagnostics the simulator publishes while a fault is active.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import bagio
from ..geodesy import Datum
from ..measurements import quaternion_to_yaw
from .channels import BOAT_CHANNELS, BoatChannelBuilder, ChannelConfig
from .series import AlignedSeries, align

__all__ = ['TOPICS', 'BagReport', 'FaultInterval', 'series_from_bag', 'series_from_dataset',
           'read_labels', 'label_series']

log = logging.getLogger(__name__)

TOPICS = {
    'gps': '/sensors/gps/fix',
    'imu': '/sensors/imu/data',
    'depth': '/sensors/sonar/depth',
    'odometry': '/odometry/filtered',
    'thrust_left': '/thrusters/left/thrust',
    'thrust_right': '/thrusters/right/thrust',
    'faults': '/sim/faults',
}
CLOCK_TOPIC = '/clock'


@dataclass(frozen=True)
class FaultInterval:
    """One labelled fault: family, label channel (group), onset and end [s] bag time."""

    kind: str
    channel: str
    onset: float
    end: float


@dataclass
class BagReport:
    """What reading a bag found: messages used per source, malformed ones dropped per
    source (undecodable, non-finite, bad stamps), and the labels used."""

    path: str
    messages: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    faults: list[FaultInterval] = field(default_factory=list)
    label_source: str = ''


def _stamp(msg) -> float:
    return msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec


def _add(builder: BoatChannelBuilder, source: str, msg, arrival_s: float) -> bool:
    """Feed one decoded message to the builder (False: dropped as malformed);
    ``arrival_s`` [s] ROS time it was received at (stamps the header-less thrust)."""
    if source == 'gps':
        return builder.add_gps(_stamp(msg), msg.latitude, msg.longitude, msg.status.status)
    if source == 'imu':
        o, w, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        return builder.add_imu(_stamp(msg), (o.x, o.y, o.z, o.w), (w.x, w.y, w.z),
                               (a.x, a.y, a.z))
    if source == 'depth':
        return builder.add_depth(_stamp(msg), msg.range)
    if source == 'odometry':
        p, o, tw = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
        return builder.add_odometry(_stamp(msg), p.x, p.y, tw.linear.x, tw.linear.y,
                                    tw.angular.z, quaternion_to_yaw((o.x, o.y, o.z, o.w)))
    # Float64 has no header: its arrival time is its stamp.
    return builder.add_thrust(source.removeprefix('thrust_'), arrival_s, msg.data)


def read_labels(path: str | Path) -> list[FaultInterval]:
    """The faults of an ``asv sim faults`` ``labels.json`` (ValueError when malformed)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        return [FaultInterval(str(f['type']), str(f['channel']), float(f['onset']),
                              float(f['end']) if f.get('end') is not None else math.inf)
                for f in doc['faults']]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f'{path}: not a labels file: {error}') from error


def _faults_from_diagnostics(arrays: list[tuple[float, list[tuple[str, str]]]]
                             ) -> list[FaultInterval]:
    """Fault intervals from ``/sim/faults`` messages: (stamp, [(family, channel)]) each.
    A fault is active from the first message naming it until the first later message
    that does not (the simulator sends an empty array when the last one ends)."""
    open_since: dict[tuple[str, str], float] = {}
    out = []
    for stamp, active in sorted(arrays, key=lambda item: item[0]):
        for key in set(open_since) - set(active):
            out.append(FaultInterval(*key, open_since.pop(key), stamp))
        for key in active:
            open_since.setdefault(key, stamp)
    out += [FaultInterval(*key, since, math.inf) for key, since in open_since.items()]
    return sorted(out, key=lambda f: f.onset)


def label_series(series: AlignedSeries, faults: list[FaultInterval]) -> AlignedSeries:
    """``series`` with anomaly/fault/fault_channel set from ``faults`` (a grid time is
    inside a fault when onset <= t < end; a later fault wins where two overlap)."""
    n = len(series)
    anomaly = np.zeros(n, dtype=bool)
    fault = np.full(n, '', dtype=object)
    channel = np.full(n, '', dtype=object)
    for f in faults:
        inside = (series.times >= f.onset) & (series.times < f.end)
        anomaly |= inside
        fault[inside] = f.kind
        channel[inside] = f.channel
    return AlignedSeries(series.times, series.values, series.channels, anomaly, fault, channel)


def series_from_bag(path: str | Path, rate_hz: float = 10.0, datum: Datum | None = None,
                    labels: str | Path | None = None, channels=BOAT_CHANNELS,
                    config: ChannelConfig = ChannelConfig(),
                    ) -> tuple[AlignedSeries, BagReport]:
    """The detector channels of a bag on a ``rate_hz`` grid, with ground truth.

    Args:
        path: bag directory or storage file.
        rate_hz: [Hz] grid rate.
        datum: map frame origin of the odometry (default: ``config.datum``, the
            localization's).
        labels: ``labels.json``; default the one next to the bag folder when present,
            else the bag's ``/sim/faults`` topic (no faults in it: all normal).
        channels: column order (channels the bag lacks are all missing).
        config: how channels are computed.

    Returns:
        (series, report). The grid spans the odometry (or, without it, all samples).

    Raises:
        bagio.BagError: the bag cannot be read. ValueError: a malformed labels file.
    """
    path = Path(path)
    if datum is not None:
        config = dataclasses.replace(config, datum=datum)
    builder = BoatChannelBuilder(config)
    report = BagReport(str(path))
    sources = {topic: source for source, topic in TOPICS.items()}
    diagnostics = []
    # A recorder on the system clock logs wall time while the stamps are simulated time:
    # the newest /clock then gives the ROS time of each arrival.
    ros_time = None
    for message in bagio.read_messages(path, [*TOPICS.values(), CLOCK_TOPIC]):
        topic = bagio.absolute_topic(message.topic)
        if topic == CLOCK_TOPIC:
            try:
                clock = bagio.deserialize(message.msgtype, message.data).clock
                ros_time = clock.sec + 1e-9 * clock.nanosec
            except (bagio.BagError, AttributeError):
                report.dropped['clock'] = report.dropped.get('clock', 0) + 1
            continue
        source = sources[topic]
        try:
            msg = bagio.deserialize(message.msgtype, message.data)
        except bagio.BagError:
            report.dropped[source] = report.dropped.get(source, 0) + 1
            continue
        report.messages[source] = report.messages.get(source, 0) + 1
        if source == 'faults':
            diagnostics.append((_stamp(msg), [(_value(s, 'fault'), s.hardware_id)
                                              for s in msg.status]))
        else:
            arrival = message.log_time_ns * 1e-9 if ros_time is None else ros_time
            _add(builder, source, msg, arrival)
    for source, count in builder.dropped.items():
        report.dropped[source] = report.dropped.get(source, 0) + count
    if report.dropped:
        log.warning('%s: dropped malformed messages %s', path, report.dropped)
    streams = builder.streams()
    if not streams.samples:
        raise bagio.BagError(f'{path}: no detector inputs (none of the topics '
                             f'{list(TOPICS.values())})')
    if 'odom_speed' in streams.samples:
        odom_times = streams.samples['odom_speed'][0]
        start, stop = float(odom_times.min()), float(odom_times.max())
    else:
        start, stop = streams.span()
    series = align(streams, rate_hz, start=start, stop=stop, channels=channels)
    labels_path = Path(labels) if labels is not None else path.parent / 'labels.json'
    if labels is not None or labels_path.is_file():
        report.faults, report.label_source = read_labels(labels_path), str(labels_path)
    else:
        report.faults = _faults_from_diagnostics(diagnostics)
        report.label_source = TOPICS['faults']
    return label_series(series, report.faults), report


def _value(status, key: str) -> str:
    """A DiagnosticStatus value by key ('' when absent)."""
    return next((kv.value for kv in status.values if kv.key == key), '')


def series_from_dataset(folder: str | Path, rate_hz: float = 10.0,
                        datum: Datum | None = None) -> list[AlignedSeries]:
    """Every mission of an ``asv sim faults`` folder (``seed_*/bag`` with its
    ``labels.json``), in seed order.

    Raises:
        ValueError: the folder has no ``seed_*/bag``.
    """
    folder = Path(folder)
    bags = sorted(p / 'bag' for p in folder.glob('seed_*') if (p / 'bag').exists())
    if not bags:
        raise ValueError(f'{folder}: no seed_*/bag missions (an `asv sim faults` folder?)')
    return [series_from_bag(bag, rate_hz, datum)[0] for bag in bags]
