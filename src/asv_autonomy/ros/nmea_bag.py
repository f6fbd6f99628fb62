"""NMEA 0183 log -> rosbag2 MCAP on the contract topics (``asv bag from-nmea``), so a real
boat's log becomes a replayable mission (``replay.launch.xml``)."""
from __future__ import annotations

import datetime
import math
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rclpy.serialization import serialize_message

from asv_autonomy import bagio
from asv_autonomy.drivers.nmea import NmeaConfig
from asv_autonomy.drivers.nmea_log import first_date, stamped_records
from asv_autonomy.ros import conversions as cv
from asv_autonomy.ros.bag_recorder import type_name


@dataclass(frozen=True)
class NmeaBagConfig:
    """Args:
        gps_topic, depth_topic, temperature_topic: contract topics written.
        gps_frame, sonar_frame, temperature_frame: frame ids of the messages.
        min_depth, max_depth: [m] range limits written into each ``Range``.
        date: UTC date for logs whose sentences carry only a time of day (None: the
            log's first date, else 1970-01-01).
    """

    gps_topic: str = '/sensors/gps/fix'
    depth_topic: str = '/sensors/sonar/depth'
    temperature_topic: str = '/sensors/water/temperature'
    gps_frame: str = 'gps_link'
    sonar_frame: str = 'sonar_link'
    temperature_frame: str = 'base_link'
    min_depth: float = 0.0
    max_depth: float = 1000.0
    date: datetime.date | None = None

    def __post_init__(self):
        if not (math.isfinite(self.max_depth) and 0.0 <= self.min_depth < self.max_depth):
            raise ValueError(f'need 0 <= min_depth < max_depth [m], got {self.min_depth}, '
                             f'{self.max_depth}')


def nmea_to_bag(log: Path, bag: Path, config: NmeaBagConfig = NmeaBagConfig(),
                parser_config: NmeaConfig = NmeaConfig(), progress=None) -> dict:
    """Convert NMEA log ``log`` into a new bag ``bag`` (must not exist).

    Args:
        progress: optional callable(lines_done, lines_total) for long logs.

    Returns:
        Summary: messages per topic, parser counts, first and last stamp [s], the date used.

    Raises:
        OSError: the log cannot be read. bagio.BagError / OSError: the bag cannot be written.
        ValueError: the log holds no usable measurement.
    """
    lines = log.read_text(encoding='latin-1').splitlines()
    date = config.date or first_date(lines, parser_config)
    counts: Counter = Counter()
    written: Counter = Counter()
    span = [math.inf, -math.inf]
    topics = {'fix': config.gps_topic, 'depth': config.depth_topic,
              'temperature': config.temperature_topic}

    def convert(record):
        m = record.measurement
        if record.kind == 'fix':
            return cv.to_navsatfix(m, config.gps_frame)
        if record.kind == 'depth':
            return cv.to_range(m, config.sonar_frame, config.min_depth, config.max_depth)
        return cv.to_temperature(m, config.temperature_frame)

    def reported(every: int = 5000):
        for index, line in enumerate(lines):
            if progress is not None and index % every == 0:
                progress(index, len(lines))
            yield line
        if progress is not None:
            progress(len(lines), len(lines))

    def messages():
        for record in stamped_records(reported(), parser_config, date, counts):
            t = record.measurement.stamp
            span[0], span[1] = min(span[0], t), max(span[1], t)
            written[topics[record.kind]] += 1
            msg = convert(record)
            yield (topics[record.kind], type_name(msg), round(t * 1e9), serialize_message(msg))

    bagio.write_bag(bag, messages())
    if not written:
        shutil.rmtree(bag, ignore_errors=True)
        raise ValueError(f'{log}: no fix, depth or temperature sentence could be stamped '
                         f'({dict(counts)})')
    return {'messages': dict(written), 'parser': dict(sorted(counts.items())),
            'start_s': span[0], 'end_s': span[1],
            'date': (date or datetime.date(1970, 1, 1)).isoformat()}
