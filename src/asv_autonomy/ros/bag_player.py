"""Play a rosbag2 bag (what `ros2 bag play --clock` does): serialized messages through rclpy.

Messages are published as recorded bytes, paced by their log time (scaled by `rate`),
on publishers whose QoS mirrors the bag's ``offered_qos_profiles`` (reliable, volatile,
depth 10 when the bag has none), so latched (transient local) topics stay latched.
``/clock`` follows bag time so that nodes with ``use_sim_time`` run on the bag's time; the
bag's own ``/clock`` messages are then not replayed (``clock_rate=0`` replays them).

Topic names are kept as recorded: absolute names (what `asv bag record` writes) ignore the
player's namespace; a relative name in a bag resolves from '/'. Select and remap topics by
recorded name (a relative selector ``sensors/imu/data`` matches ``/sensors/imu/data``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from builtin_interfaces.msg import Time
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.exceptions import InvalidTopicNameException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.validate_topic_name import validate_topic_name
from rosbags.interfaces import QosDurability, QosHistory, QosReliability
from rosgraph_msgs.msg import Clock

from asv_autonomy.bagio import absolute_topic, bag_info, read_messages
from asv_autonomy.ros.bag_recorder import message_class

DEFAULT_DEPTH = 10
CLOCK_TOPIC = '/clock'
LINGER = 0.2  # [s] after the last message, before leaving


def publisher_qos(offered: list) -> QoSProfile:
    """Publisher QoS mirroring a topic's recorded publishers (rosbags ``Qos`` list)."""
    if not offered:
        return QoSProfile(depth=DEFAULT_DEPTH)
    best_effort = all(q.reliability == QosReliability.BEST_EFFORT for q in offered)
    latched = all(q.durability == QosDurability.TRANSIENT_LOCAL for q in offered)
    depth = max([DEFAULT_DEPTH] + [q.depth for q in offered if q.history == QosHistory.KEEP_LAST])
    return QoSProfile(
        depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def parse_remap(rule: str) -> tuple[str, str]:
    """'from:=to' -> (absolute from, to); ValueError for anything else."""
    source, sep, target = rule.partition(':=')
    if not sep or not source or not target:
        raise ValueError(f'bad remap {rule!r}: expected FROM:=TO, e.g. /odom:=/odometry/filtered')
    for name in (source, target):
        try:
            validate_topic_name(name)
        except InvalidTopicNameException as error:
            reason = str(error).splitlines()[0].rstrip(':')
            raise ValueError(f'bad remap {rule!r}: {name!r} is not a valid topic name '
                             f'({reason})') from None
    return absolute_topic(source), target


@dataclass(frozen=True)
class PlayerConfig:
    """What to play and how."""

    bag: str = ''                  # bag directory or .mcap file
    rate: float = 1.0              # playback speed factor (2 = twice as fast)
    loop: bool = False             # start again at the end, until interrupted
    start_offset: float = 0.0      # [s] skip this much of the bag from its start
    topics: tuple[str, ...] = ()   # recorded topic names to play; empty = all
    remap: tuple[str, ...] = ()    # 'from:=to' rules on recorded topic names
    clock_rate: float = 100.0      # [Hz] /clock publishing rate; 0 = no /clock
    delay: float = 0.0             # [s] pause before playing (after wait_for_subscribers)
    wait_for_subscribers: bool = False  # start once every played topic has a subscriber

    def __post_init__(self):
        if not self.bag:
            raise ValueError('bag must name a bag directory or .mcap file')
        if not self.rate > 0:
            raise ValueError(f'rate must be > 0, got {self.rate}')
        if not self.start_offset >= 0:
            raise ValueError(f'start offset must be >= 0 s, got {self.start_offset}')
        if not self.clock_rate >= 0:
            raise ValueError(f'clock rate must be >= 0 Hz, got {self.clock_rate}')
        if not self.delay >= 0:
            raise ValueError(f'delay must be >= 0 s, got {self.delay}')
        for rule in self.remap:
            parse_remap(rule)


def check(config: PlayerConfig) -> dict:
    """The bag's summary (bagio.bag_info) once `config` is known to fit the bag.

    Raises:
        BagError: the bag cannot be read.
        ValueError: a requested topic or remap source is not in the bag, or the start
            offset is past the bag's end.
    """
    info = bag_info(config.bag)
    recorded = {absolute_topic(name) for name in info['topics']}
    for name in config.topics:
        if absolute_topic(name) not in recorded:
            raise ValueError(f'topic {name} is not in bag {config.bag} '
                             f'(it has {", ".join(sorted(recorded)) or "no topics"})')
    for source, _ in map(parse_remap, config.remap):
        if source not in recorded:
            raise ValueError(f'remap source {source} is not a topic of bag {config.bag}')
    duration_s = info['duration_ns'] / 1e9
    if config.start_offset > duration_s:
        raise ValueError(f'start offset {config.start_offset} s is past the end of the bag '
                         f'({duration_s:.3f} s long)')
    return info


class BagPlayer:
    """Publishes a bag's messages in log-time order, paced in real time / rate.

    Args:
        config: what to play.
        info: ``check(config)``, which validates the config against the bag.
        context: rclpy context (default: the global one).
        node: publish through this node (a launched player node) instead of a new one;
            the caller then owns it.
    """

    def __init__(self, config: PlayerConfig, info: dict, context: Context | None = None,
                 node: Node | None = None):
        self.config = config
        self.info = info
        recorded = {absolute_topic(name): name for name in info['topics']}
        remaps = dict(map(parse_remap, config.remap))
        wanted = {absolute_topic(t) for t in config.topics} or set(recorded)
        self._own_node = node is None
        self.node = node or Node('asv_bag_player', context=context,
                                 start_parameter_services=False)
        log = self.node.get_logger()
        self._publishers = {}
        for name in sorted(recorded[t] for t in wanted):
            topic = self.info['topics'][name]
            if config.clock_rate > 0 and absolute_topic(name) == CLOCK_TOPIC:
                log.info('not replaying the recorded /clock: /clock follows bag time '
                         '(use a clock rate of 0 to replay it)')
                continue
            try:
                msg_class = message_class(topic['type'])
            except ImportError as error:
                log.warning(f'not playing {name}: {error}')
                continue
            self._publishers[name] = self.node.create_publisher(
                msg_class, remaps.get(absolute_topic(name), name),
                publisher_qos(topic['offered_qos_profiles']))
        self._clock = (self.node.create_publisher(Clock, CLOCK_TOPIC, 10)
                       if config.clock_rate > 0 else None)
        self.published = 0

    def _publish_clock(self, bag_time_ns: int) -> None:
        sec, nanosec = divmod(bag_time_ns, 1_000_000_000)
        self._clock.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))

    def play(self, should_stop=lambda: False) -> int:
        """Publish the bag (again and again with loop); returns the messages published."""
        config = self.config
        start_ns = self.info['start_ns'] + round(config.start_offset * 1e9)
        if config.wait_for_subscribers and not self._wait_for_subscribers(should_stop):
            return self.published
        # After the subscribers are there: the nodes that subscribed are up now, and the
        # delay lets others (a recorder) discover what those nodes publish.
        time.sleep(config.delay)
        while not should_stop():
            before = self.published
            finished = self._play_once(start_ns, should_stop)
            if not finished or not config.loop or self.published == before:
                break  # (a loop over nothing would spin)
        self._flush()
        return self.published

    def _wait_for_subscribers(self, should_stop) -> bool:
        """Wait until every publisher has matched a subscription; False when stopped."""
        publishers = list(self._publishers.values()) + ([self._clock] if self._clock else [])
        report = time.monotonic() + 2.0
        while not should_stop():
            waiting = [p.topic_name for p in publishers if p.get_subscription_count() == 0]
            if not waiting:
                return True
            if time.monotonic() > report:
                self.node.get_logger().info(f'waiting for subscribers on {", ".join(waiting)}')
                report += 5.0
            time.sleep(0.02)
        return False

    def _play_once(self, start_ns: int, should_stop) -> bool:
        """One pass over the bag; False when stopped early."""
        rate = self.config.rate
        t0 = time.monotonic()
        # Next /clock publication time (never, without a clock).
        tick = 1.0 / self.config.clock_rate if self._clock else 0.0
        next_tick = t0 if self._clock else float('inf')

        def bag_time(now: float) -> int:
            return start_ns + round((now - t0) * rate * 1e9)

        for message in read_messages(self.config.bag, self._publishers, start_ns=start_ns):
            due = t0 + (message.log_time_ns - start_ns) / 1e9 / rate
            while True:
                now = time.monotonic()
                if now >= next_tick:
                    self._publish_clock(bag_time(now))
                    next_tick += tick
                    if next_tick <= now:  # fell behind (a slow publish): skip missed ticks
                        next_tick = now + tick
                if should_stop():
                    return False
                if now >= due:
                    break
                time.sleep(min(due, next_tick, now + 0.1) - now)
            self._publishers[message.topic].publish(message.data)
            self.published += 1
        return True

    def _flush(self) -> None:
        """Give subscribers a moment to take the last messages before the node goes: a
        best-effort sample still in flight is dropped once this participant has left."""
        for publisher in self._publishers.values():
            publisher.wait_for_all_acked(Duration(seconds=1))
        time.sleep(LINGER)

    def close(self) -> None:
        if self._own_node:
            self.node.destroy_node()

    def __enter__(self) -> BagPlayer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
