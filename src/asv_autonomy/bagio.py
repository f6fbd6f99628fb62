"""Read rosbag2 bags (MCAP or SQLite3) without rclpy, through the `rosbags` library.

Used by `asv bag info|play` and by evaluation code that computes statistics from a
recorded bag. A bag is a directory holding ``metadata.yaml`` and its storage files, or a
single ``.mcap`` / ``.db3`` file. Every problem with a bag (missing, not a bag, corrupt or
truncated metadata or storage) raises :class:`BagError` naming the path and the problem.

Topic names are kept exactly as recorded (`asv bag record` records absolute names such
as ``/odometry/filtered``); where this module takes topic names, a relative name
``odometry/filtered`` also matches the recorded ``/odometry/filtered``.
"""
from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from rosbags.interfaces import Qos
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_typestore

# Exceptions that rosbags lets through on malformed files (besides its ReaderError).
_CORRUPT = (ReaderError, SerdeError, struct.error, ValueError, KeyError, IndexError, TypeError,
            EOFError, OSError, AssertionError)


class BagError(Exception):
    """A bag that cannot be opened or read; the message names the path and the problem."""


def _reason(error: Exception) -> str:
    """First line of an error (YAML errors span several lines), for one-line messages."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class BagMessage(NamedTuple):
    """One recorded message: serialized CDR bytes received on `topic` at `log_time_ns`."""

    topic: str
    msgtype: str           # e.g. 'nav_msgs/msg/Odometry'
    log_time_ns: int       # [ns] receive time (system clock, or ROS time with --use-sim-time)
    data: bytes


@functools.lru_cache(maxsize=1)
def typestore():
    """The rosbags type store used to (de)serialize standard ROS 2 (Kilted) messages."""
    return get_typestore(Stores.ROS2_KILTED)


def deserialize(msgtype: str, data: bytes) -> Any:
    """Decode CDR bytes into a rosbags message object (fields named as in the .msg file).

    Raises:
        BagError: unknown message type or bytes that do not decode as `msgtype`.
    """
    store = typestore()
    if msgtype not in store.fielddefs:
        raise BagError(f'message type {msgtype!r} is not in the ROS 2 Kilted type store')
    try:
        return store.deserialize_cdr(data, msgtype)
    except _CORRUPT as error:
        raise BagError(f'cannot decode a {msgtype} message: {_reason(error)}') from error


def serialize(msg: Any, msgtype: str) -> bytes:
    """Encode a rosbags message object (``typestore().types[msgtype](...)``) as CDR bytes."""
    return bytes(typestore().serialize_cdr(msg, msgtype))


def write_bag(path: str | Path, messages: Iterable[tuple[str, str, int, bytes]],
              offered_qos: dict[str, list[Qos]] | None = None) -> None:
    """Write (topic, msgtype, log_time_ns, data) tuples into a new rosbag2 MCAP bag.

    Args:
        path: bag directory to create (must not exist).
        messages: as yielded by :func:`read_messages` (any order).
        offered_qos: publisher QoS to store per topic, for players to mirror.
    """
    offered_qos = offered_qos or {}
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        connections = {}
        for topic, msgtype, log_time_ns, data in messages:
            if (topic, msgtype) not in connections:
                connections[topic, msgtype] = writer.add_connection(
                    topic, msgtype, typestore=typestore(),
                    offered_qos_profiles=offered_qos.get(topic, ()))
            writer.write(connections[topic, msgtype], log_time_ns, data)
    finally:
        writer.close()


def _open(path: str | Path) -> Reader:
    """An opened rosbags Reader, or BagError saying why the path is not a readable bag."""
    path = Path(path)
    if not path.exists():
        raise BagError(f'{path}: no such bag (the path does not exist)')
    if path.is_dir() and not (path / 'metadata.yaml').is_file():
        hint = ('; is it still being recorded, or was its recorder killed?'
                if any(path.glob('*.mcap')) else '')
        raise BagError(f'{path}: not a rosbag2 bag (the directory has no metadata.yaml{hint})')
    if path.is_file() and path.suffix not in ('.mcap', '.db3'):
        raise BagError(f'{path}: not a rosbag2 bag (expected a directory, .mcap or .db3 file)')
    try:
        reader = Reader(path)
        reader.open()
    except _CORRUPT as error:
        raise BagError(f'{path}: corrupt or truncated bag: {_reason(error)}') from error
    return reader


def absolute_topic(name: str) -> str:
    """A topic name resolved from the root namespace ('thrust' -> '/thrust')."""
    return name if name.startswith('/') else '/' + name


def bag_info(path: str | Path) -> dict:
    """Summary of a bag, as `ros2 bag info` shows it.

    Returns:
        dict with ``path`` (str), ``storage_id`` ('mcap' or 'sqlite3'), ``files`` (list of
        ``{'path': str, 'size': int [bytes]}``), ``size`` [bytes], ``message_count``,
        ``start_ns`` / ``end_ns`` (log time of the first / last message [ns since epoch],
        0 for an empty bag), ``duration_ns`` (end - start [ns]), ``ros_distro`` and
        ``topics``: {name: {'type', 'count', 'serialization_format',
        'offered_qos_profiles' (list of rosbags ``Qos``)}} in name order.
    """
    path = Path(path)
    reader = _open(path)
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in ('.mcap', '.db3'))
        else:
            files = [path]
        count = reader.message_count
        start = reader.start_time if count else 0
        # rosbags reports end as one past the last message; ros2 bag info shows the last.
        end = reader.end_time - 1 if count else 0
        topics = {}
        for name, info in reader.topics.items():
            ext = info.connections[0].ext
            topics[name] = {
                'type': info.msgtype or ','.join(sorted({c.msgtype for c in info.connections})),
                'count': info.msgcount,
                'serialization_format': ext.serialization_format,
                'offered_qos_profiles': list(ext.offered_qos_profiles),
            }
        storage = {'.mcap': 'mcap', '.db3': 'sqlite3'}
        return {
            'path': str(path),
            'storage_id': storage.get(files[0].suffix, files[0].suffix) if files else '',
            'files': [{'path': str(f), 'size': f.stat().st_size} for f in files],
            'size': sum(f.stat().st_size for f in files),
            'message_count': count,
            'start_ns': start,
            'end_ns': end,
            'duration_ns': end - start,
            'ros_distro': reader.ros_distro,
            'topics': topics,
        }
    except _CORRUPT as error:
        raise BagError(f'{path}: corrupt or truncated bag: {_reason(error)}') from error
    finally:
        reader.close()


def read_messages(path: str | Path, topics: Iterable[str] | None = None,
                  start_ns: int | None = None, stop_ns: int | None = None,
                  ) -> Iterator[BagMessage]:
    """Messages of a bag in log-time order, optionally only on `topics`.

    Args:
        path: bag directory or storage file.
        topics: topic names to read (relative names match their absolute form); None = all.
        start_ns, stop_ns: only messages with start_ns <= log time < stop_ns [ns].

    Raises:
        BagError: when the bag cannot be opened or a record is corrupt (possibly after
            some messages were yielded).
    """
    reader = _open(path)
    try:
        wanted = None if topics is None else {absolute_topic(name) for name in topics}
        connections = [c for c in reader.connections
                       if wanted is None or absolute_topic(c.topic) in wanted]
        if not connections:
            return
        for connection, log_time, data in reader.messages(connections, start_ns, stop_ns):
            yield BagMessage(connection.topic, connection.msgtype, log_time, bytes(data))
    except _CORRUPT as error:
        raise BagError(f'{path}: corrupt or truncated bag: {_reason(error)}') from error
    finally:
        reader.close()
