"""A headless simulated mission (``sim.headless``) written as a bag with the topics the ROS
graph records: the simulator's (``SimMessages``: sensors, ground truth, ``sim/faults``
labels) plus ``odometry/filtered`` and ``thrusters/*/thrust``. ``asv sim faults`` uses it
to make labelled datasets for the anomaly detector."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

from rclpy.serialization import serialize_message

from asv_autonomy import bagio
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros.bag_recorder import type_name
from asv_autonomy.ros.sim_messages import CLOCK, SimMessages
from asv_autonomy.sim.headless import MissionStep

ODOMETRY = 'odometry/filtered'
THRUSTERS = ('thrusters/left/thrust', 'thrusters/right/thrust')


def write_mission_bag(path: Path, steps: Iterable[MissionStep], messages: SimMessages,
                      map_frame: str = 'map', base_frame: str = 'base_link') -> Counter:
    """Write a new bag at ``path`` (must not exist); returns messages per topic.

    Topics are absolute (as ``asv bag record`` writes them); no ``/clock`` (players
    publish it from the log times).
    """
    counts: Counter = Counter()

    def records():
        first = True
        for mission_step in steps:
            step = mission_step.sim
            out = messages.static() if first else []
            first = False
            out += [(topic, msg) for topic, msg in messages.step(step) if topic != CLOCK]
            if mission_step.odometry is not None:
                out.append((ODOMETRY, cv.to_odometry(mission_step.odometry, map_frame,
                                                     base_frame)))
            if mission_step.thrust is not None:
                out += [(topic, cv.to_float64(value))
                        for topic, value in zip(THRUSTERS, mission_step.thrust)]
            stamp_ns = round(step.time * 1e9)
            for topic, msg in out:
                counts[topic] += 1
                yield (bagio.absolute_topic(topic), type_name(msg), stamp_ns,
                       serialize_message(msg))

    bagio.write_bag(path, records())
    return counts
