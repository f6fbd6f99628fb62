"""Record ROS 2 topics into a rosbag2 MCAP bag (what `ros2 bag record` does), via rosbags.

Messages are taken serialized (raw subscriptions) and written as received, so any message
type whose Python package is importable and which the rosbags Kilted type store knows can
be recorded. Topics are discovered periodically, so topics that appear late are recorded
too. Subscription QoS adapts to the publishers: best effort if any publisher is best
effort, transient local when all publishers are (latched maps and estop are captured).
The publishers' QoS is stored as ``offered_qos_profiles`` so players can mirror it.
"""
from __future__ import annotations

import importlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, LivelinessPolicy, QoSProfile,
                       ReliabilityPolicy)
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)
from rosbags.rosbag2 import StoragePlugin, Writer

from asv_autonomy.bagio import absolute_topic, typestore

# Subscriber history depth: a backlog of this many messages per topic survives a stall
# of the recorder (a slow disk write) without losing data.
SUBSCRIPTION_DEPTH = 100


def message_class(msgtype: str) -> type:
    """The rclpy message class of a type name such as 'sensor_msgs/msg/Image'.

    Raises:
        ImportError: the package is not installed or has no such message.
    """
    parts = msgtype.split('/')
    if len(parts) != 3:
        raise ImportError(f'not a ROS 2 message type name: {msgtype!r}')
    package, kind, name = parts
    module = importlib.import_module(f'{package}.{kind}')
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImportError(f'{package}.{kind} has no message {name}') from None


def type_name(msg) -> str:
    """The type name of an rclpy message instance, e.g. 'sensor_msgs/msg/Imu' (the inverse
    of `message_class`), as bags store it."""
    package, kind = type(msg).__module__.split('.')[:2]
    return f'{package}/{kind}/{type(msg).__name__}'


def _qos_time(duration: Duration) -> QosTime:
    sec, nsec = divmod(duration.nanoseconds, 1_000_000_000)
    return QosTime(sec, nsec)


def to_bag_qos(profile: QoSProfile) -> Qos:
    """rclpy QoS -> rosbags QoS (the enum values are the rmw ones on both sides)."""
    return Qos(QosHistory(int(profile.history)), profile.depth,
               QosReliability(int(profile.reliability)), QosDurability(int(profile.durability)),
               _qos_time(profile.deadline), _qos_time(profile.lifespan),
               QosLiveliness(int(profile.liveliness)),
               _qos_time(profile.liveliness_lease_duration),
               profile.avoid_ros_namespace_conventions)


def subscription_qos(offered: list[QoSProfile]) -> QoSProfile:
    """QoS that matches every publisher in `offered` (like rosbag2's adaptive QoS)."""
    best_effort = any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
    latched = bool(offered) and all(
        q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=SUBSCRIPTION_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        liveliness=LivelinessPolicy.AUTOMATIC)


def _hidden(name: str) -> bool:
    return any(part.startswith('_') for part in name.split('/'))


@dataclass(frozen=True)
class RecorderConfig:
    """What to record and where.

    Topic names are resolved from '/' (the recorder runs in the root namespace).
    """

    output: str                      # bag directory to create (must not exist)
    topics: tuple[str, ...] = ()     # topics to record; empty = every topic (`-a`)
    exclude: str = ''                # regex; matching topics are not recorded (with `-a`)
    include_hidden: bool = False     # also record hidden topics (a name part starting '_')
    use_sim_time: bool = False       # log time from /clock instead of the system clock
    discovery_period: float = 0.5    # [s] how often new topics are looked for
    max_duration: float = 0.0        # [s] stop after this long; 0 = until interrupted

    def __post_init__(self):
        if not self.output:
            raise ValueError('output bag path is empty')
        if Path(self.output).exists():
            raise ValueError(f'output {self.output} exists already; choose a new bag path')
        if self.discovery_period <= 0:
            raise ValueError(f'discovery_period must be > 0 s, got {self.discovery_period}')
        if self.max_duration < 0:
            raise ValueError(f'max_duration must be >= 0 s, got {self.max_duration}')
        try:
            re.compile(self.exclude)
        except re.error as error:
            raise ValueError(f'bad --exclude regular expression {self.exclude!r}: {error}')


class BagRecorder:
    """A node that records topics into a new MCAP bag until :meth:`close`.

    Call :meth:`spin` (or spin ``recorder.node`` yourself) to receive messages; the bag's
    metadata.yaml and MCAP index are written by :meth:`close`, which must always run
    (use the recorder as a context manager).
    """

    def __init__(self, config: RecorderConfig, context: Context | None = None):
        self.config = config
        self._wanted = {absolute_topic(t) for t in config.topics}
        self._exclude = re.compile(config.exclude) if config.exclude else None
        self._subscriptions = {}
        self._ignored: set[str] = set()
        self.counts: dict[str, int] = {}
        self.node = Node('asv_bag_recorder', context=context, start_parameter_services=False,
                         parameter_overrides=[Parameter('use_sim_time',
                                                        value=config.use_sim_time)])
        self._writer = Writer(config.output, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._now_ns = (lambda: self.node.get_clock().now().nanoseconds) \
            if config.use_sim_time else time.time_ns
        # Discovery runs on the steady clock: with use_sim_time a ROS-time timer would
        # not fire before /clock arrives.
        self._discovery = self.node.create_timer(
            config.discovery_period, self.discover,
            clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.discover()

    def _selected(self, name: str) -> bool:
        if self._wanted:
            return name in self._wanted
        if _hidden(name) and not self.config.include_hidden:
            return False
        return not (self._exclude and self._exclude.search(name))

    def discover(self) -> None:
        """Subscribe to selected topics that have appeared since the last call."""
        for name, types in self.node.get_topic_names_and_types():
            if name in self._subscriptions or name in self._ignored or not self._selected(name):
                continue
            if len(types) != 1:
                self._ignore(name, f'it has several types {types}')
                continue
            msgtype = types[0]
            offered = [info.qos_profile
                       for info in self.node.get_publishers_info_by_topic(name)]
            if not offered:
                continue  # only subscribers so far: wait for a publisher to adapt QoS to
            if msgtype not in typestore().fielddefs:
                self._ignore(name, f'type {msgtype} is not in the rosbags type store')
                continue
            try:
                msg_class = message_class(msgtype)
            except ImportError as error:
                self._ignore(name, str(error))
                continue
            connection = self._writer.add_connection(
                name, msgtype, typestore=typestore(),
                offered_qos_profiles=[to_bag_qos(q) for q in offered])
            self.counts[name] = 0
            self._subscriptions[name] = self.node.create_subscription(
                msg_class, name, self._callback(name, connection), subscription_qos(offered),
                raw=True)
            self.node.get_logger().info(f'recording {name} [{msgtype}]')

    def _ignore(self, name: str, reason: str) -> None:
        self._ignored.add(name)
        self.node.get_logger().warning(f'not recording {name}: {reason}')

    def _callback(self, name, connection):
        write, now_ns, counts = self._writer.write, self._now_ns, self.counts

        def on_message(data: bytes) -> None:
            write(connection, now_ns(), data)
            counts[name] += 1
        return on_message

    def spin(self, executor=None, should_stop=lambda: False) -> None:
        """Receive and record until `should_stop()` or max_duration (checked every 0.1 s).

        The default executor is rclpy's EventsExecutor: 2-3x less CPU per message than the
        single-threaded one at the rates of a mission.
        """
        if executor is None:
            from rclpy.experimental import EventsExecutor
            executor = EventsExecutor()
        executor.add_node(self.node)
        end = (time.monotonic() + self.config.max_duration) if self.config.max_duration else None
        while not should_stop() and (end is None or time.monotonic() < end):
            executor.spin_once(timeout_sec=0.1)
        executor.remove_node(self.node)

    def close(self) -> None:
        """Write the MCAP index and metadata.yaml (first: it matters most), then leave.

        Messages arrive only while the node is spun, so none can come in meanwhile.
        """
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
        finally:
            self._subscriptions.clear()
            self.node.destroy_node()

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
