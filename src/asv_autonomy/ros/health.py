"""Input health of a node: drop malformed input, count it, report it on `diagnostics`.

DESIGN.md §5: a node that receives malformed input (NaN, inf, wrong frame, out-of-order or
stale stamp, wrong image encoding or size) drops that message, counts it, reports it on
``diagnostics`` and keeps running. `InputHealth.guard` wraps each subscription callback to
do exactly that; `HealthReporter` publishes the counts once per period.
"""
from __future__ import annotations

import time
import traceback
from collections import Counter
from typing import Any, Callable, Mapping

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile

from asv_autonomy.measurements import InvalidInput
from asv_autonomy.ros.conversions import (ERROR, OK, WARN, diagnostic_array,
                                          diagnostic_status, from_time)

# `diagnostics` is reliable + volatile (as diagnostic_updater), so every subscriber matches.
DIAGNOSTICS_QOS = QoSProfile(depth=10)
# Reason counted when the core itself raises something other than InvalidInput.
INTERNAL_ERROR = 'internal_error'
# A clock this much earlier than before is a restart (bag loop, new simulation) [s].
_CLOCK_JUMP_BACK = 1.0


class InputHealth:
    """Received / dropped message counters of one node, and the guard that fills them.

    Args:
        node: the node (its clock stamps stale checks, its logger gets the warnings).
        log_period_s: at most one warning per (topic, reason) per this many wall seconds.
    """

    def __init__(self, node: Node, *, log_period_s: float = 5.0):
        self._node = node
        self._log_period_s = log_period_s
        self.received: Counter[str] = Counter()
        self.dropped: Counter[tuple[str, str]] = Counter()
        self._last_stamp: dict[str, float] = {}
        self._last_now = 0.0
        self._last_log: dict[tuple[str, str], float] = {}

    def guard(self, topic: str, convert: Callable[[Any], Any], handle: Callable[[Any], Any],
              *, stamp_check: bool = True,
              max_age: float | None = None) -> Callable[[Any], None]:
        """Subscription callback: convert the message, check it, pass the record to ``handle``.

        Dropped and counted under ``(topic, reason)``:
        * ``InvalidInput`` raised by ``convert`` or ``handle`` (its reason);
        * any other exception from ``convert`` ('malformed');
        * with ``stamp_check`` and a message ``header``: a stamp older than the last accepted
          one on this topic ('out_of_order'), or older than now - ``max_age`` [s] on the node
          clock ('stale'; only when ``max_age`` is given and the clock has started);
        * any other exception from ``handle`` ('internal_error', logged with its traceback):
          a bug, but no input may crash the node.

        Args:
            topic: name used in counters and diagnostics keys (the topic as subscribed).
            convert: message -> record, usually a ``conversions.from_*`` function.
            handle: record -> None, usually a core verb or a node method calling one.
        """
        def callback(msg: Any) -> None:
            self.received[topic] += 1
            try:
                stamp = self._check_stamp(topic, msg, max_age) if stamp_check else None
                record = convert(msg)
            except InvalidInput as err:
                self.drop(topic, err.reason, str(err))
                return
            except Exception as err:  # noqa: BLE001 - a malformed message must not crash us
                self.drop(topic, 'malformed', f'{type(err).__name__}: {err}')
                return
            try:
                handle(record)
            except InvalidInput as err:
                self.drop(topic, err.reason, str(err))
                return
            except Exception:  # noqa: BLE001
                self.drop(topic, INTERNAL_ERROR, traceback.format_exc())
                return
            if stamp is not None:
                self._last_stamp[topic] = stamp
        return callback

    def drop(self, topic: str, reason: str, detail: str = '') -> None:
        """Count one dropped message (also for drops a node decides itself)."""
        self.dropped[topic, reason] += 1
        now = time.monotonic()
        key = (topic, reason)
        if now - self._last_log.get(key, -float('inf')) >= self._log_period_s:
            self._last_log[key] = now
            text = (f'dropped {self.dropped[key]} message(s) on {topic} ({reason}) so far; '
                    f'latest: {detail}')
            # rclpy refuses two severities from one call site, hence two calls.
            if reason == INTERNAL_ERROR:
                self._node.get_logger().error(text)
            else:
                self._node.get_logger().warning(text)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def received_total(self) -> int:
        return sum(self.received.values())

    def _check_stamp(self, topic: str, msg: Any, max_age: float | None) -> float | None:
        header = getattr(msg, 'header', None)
        if header is None:
            return None
        stamp = from_time(header.stamp)
        now = self._node.get_clock().now().nanoseconds * 1e-9
        if now < self._last_now - _CLOCK_JUMP_BACK:
            self._last_stamp.clear()  # time restarted: old stamps say nothing about new ones
        self._last_now = now
        last = self._last_stamp.get(topic)
        if last is not None and stamp < last:
            raise InvalidInput('out_of_order', f'stamp {stamp:.3f} s < last {last:.3f} s')
        if max_age is not None and now > 0.0 and stamp < now - max_age:
            raise InvalidInput('stale', f'stamp {stamp:.3f} s is {now - stamp:.3f} s old '
                                        f'(max {max_age} s)')
        return stamp


class HealthReporter:
    """Publishes the node's health on ``diagnostics`` every ``period_s`` of the node clock.

    One DiagnosticStatus named after the node's fully qualified name; level OK, or WARN
    when messages were dropped during the last period (ERROR for internal errors, or the
    ``condition`` level when worse); values ``received_total``, ``dropped_total``,
    ``received/<topic>``, ``dropped/<topic>/<reason>`` and the node's ``extra`` values.
    With ``use_sim_time`` the timer follows simulated time.

    Args:
        node: the node.
        health: its input counters.
        period_s: [s] publication period on the node clock.
        extra: returns more key-values for the status (e.g. the localizer's state).
        condition: returns (level, message) of the node's own state, e.g.
            ``(WARN, 'no GNSS fix')``; the worse of it and the drop level is published.
        topic: diagnostics topic (relative, so it follows the namespace).
    """

    def __init__(self, node: Node, health: InputHealth, *, period_s: float = 1.0,
                 extra: Callable[[], Mapping[str, Any]] | None = None,
                 condition: Callable[[], tuple[int, str]] | None = None,
                 topic: str = 'diagnostics'):
        self._node = node
        self._health = health
        self._extra = extra
        self._condition = condition
        self._dropped_before: Counter[tuple[str, str]] = Counter()
        self._publisher = node.create_publisher(DiagnosticArray, topic, DIAGNOSTICS_QOS)
        self._timer = node.create_timer(period_s, self.publish)

    def publish(self) -> DiagnosticArray:
        """Publish (and return) the current status."""
        health = self._health
        recent = health.dropped - self._dropped_before
        self._dropped_before = Counter(health.dropped)
        if any(reason == INTERNAL_ERROR for _, reason in recent):
            level = ERROR
        elif recent:
            level = WARN
        else:
            level = OK
        message = ('ok' if not recent else 'dropped ' + ', '.join(
            f'{n} on {topic} ({reason})' for (topic, reason), n in sorted(recent.items())))
        if self._condition is not None:
            own_level, own_message = self._condition()
            level = max(level, int(own_level))
            if own_message:
                message = own_message if message == 'ok' else f'{own_message}; {message}'
        values: dict[str, Any] = {'received_total': health.received_total,
                                  'dropped_total': health.dropped_total}
        values.update({f'received/{t}': n for t, n in sorted(health.received.items())})
        values.update({f'dropped/{t}/{r}': n for (t, r), n in sorted(health.dropped.items())})
        if self._extra is not None:
            values.update(self._extra())
        now = self._node.get_clock().now().nanoseconds * 1e-9
        name = self._node.get_fully_qualified_name()
        msg = diagnostic_array(
            [diagnostic_status(name, level, message, hardware_id=name, values=values)], now)
        self._publisher.publish(msg)
        return msg
