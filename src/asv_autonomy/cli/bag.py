"""`asv bag record|play|info|from-nmea`: rosbag2 MCAP bags without the ROS 2 command line tools.

  asv bag record -a [-o BAG] [--exclude REGEX] [--use-sim-time] [--max-duration S]
  asv bag record TOPIC [TOPIC ...] [-o BAG]
  asv bag play BAG [--rate R] [--loop] [--start S] [--topics T ...] [--remap FROM:=TO ...]
               [--clock-rate HZ] [--delay S] [--wait-for-subscribers]
  asv bag info BAG
  asv bag from-nmea LOG -o BAG [--date YYYY-MM-DD]

Record and play confine DDS discovery to this machine
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) unless the variable is already set.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

from asv_autonomy.bagio import BagError, bag_info
from asv_autonomy.cli.common import CliError, with_fastdds_profile


def register(subparsers) -> None:
    parser = subparsers.add_parser('bag', help='record, play and inspect rosbag2 MCAP bags',
                                   description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest='verb', required=True, metavar='VERB')

    record = verbs.add_parser('record', help='record topics into a new MCAP bag '
                              '(stop with Ctrl-C)')
    record.add_argument('topics', nargs='*', metavar='TOPIC', help='topics to record')
    record.add_argument('-a', '--all', action='store_true',
                        help='record every topic, including ones that appear later')
    record.add_argument('-o', '--output', help='bag directory to create (default '
                        'rosbag2_YYYY_MM_DD-HH_MM_SS); must not exist')
    record.add_argument('-e', '--exclude', default='', metavar='REGEX',
                        help='with -a: do not record topics matching this regular expression')
    record.add_argument('--include-hidden-topics', action='store_true',
                        help='with -a: also record hidden topics (a name part starting with _)')
    record.add_argument('--use-sim-time', action='store_true',
                        help='stamp messages with ROS time from /clock instead of system time')
    record.add_argument('--max-duration', type=float, default=0.0, metavar='S',
                        help='stop after S seconds (default: until Ctrl-C / SIGTERM)')
    record.set_defaults(func=run_record)

    play = verbs.add_parser('play', help='publish the messages of a bag')
    play.add_argument('bag', help='bag directory or .mcap file')
    play.add_argument('-r', '--rate', type=float, default=1.0, help='speed factor (default 1)')
    play.add_argument('-l', '--loop', action='store_true', help='play again and again')
    play.add_argument('--start', '--start-offset', dest='start', type=float, default=0.0,
                      metavar='S', help='start S seconds after the beginning of the bag')
    play.add_argument('--topics', nargs='+', default=[], metavar='TOPIC',
                      help='play only these topics (names as recorded)')
    play.add_argument('--remap', nargs='+', default=[], metavar='FROM:=TO',
                      help='publish recorded topic FROM on TO')
    play.add_argument('--clock-rate', type=float, default=100.0, metavar='HZ',
                      help='publish /clock following bag time at HZ (default 100; 0 = off, '
                           'then a recorded /clock is replayed)')
    play.add_argument('--delay', type=float, default=0.0, metavar='S',
                      help='wait S seconds after creating publishers before playing, so '
                           'that subscribers are discovered')
    play.add_argument('--wait-for-subscribers', action='store_true',
                      help='start only once every played topic (and /clock) has a '
                           'subscriber, so that none of its messages is lost to discovery')
    play.set_defaults(func=run_play)

    info = verbs.add_parser('info', help='summarise a bag')
    info.add_argument('bag', help='bag directory or .mcap file')
    info.set_defaults(func=run_info)

    from_nmea = verbs.add_parser(
        'from-nmea', help='convert an NMEA 0183 log into a bag on the contract topics',
        description='GGA/RMC/GLL -> sensors/gps/fix, DBT/DPT -> sensors/sonar/depth, MTW -> '
                    'sensors/water/temperature, stamped with the UTC time of the sentences, '
                    'so that the log replays with replay.launch.xml / asv replay.')
    from_nmea.add_argument('log', type=Path, help='NMEA 0183 log (one sentence per line)')
    from_nmea.add_argument('-o', '--out', type=Path, required=True,
                           help='bag directory to create (must not exist)')
    from_nmea.add_argument('--date', type=_iso_date, default=None, metavar='YYYY-MM-DD',
                           help='UTC date of a log whose sentences have only a time of day '
                                "(default: the log's first date, else 1970-01-01)")
    from_nmea.set_defaults(func=run_from_nmea)


def _iso_date(text: str):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a YYYY-MM-DD date: {text!r}') from None


def _size(size: int) -> str:
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if size < 1024 or unit == 'GiB':
            return f'{size:.1f} {unit}' if unit != 'B' else f'{size} B'
        size /= 1024


def _stamp(ns: int) -> str:
    when = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return (f'{when:%b %d %Y %H:%M:%S}.{ns % 1_000_000_000:09d} UTC '
            f'({ns // 1_000_000_000}.{ns % 1_000_000_000:09d})')


def format_info(info: dict) -> str:
    """`ros2 bag info`-like text for a bagio.bag_info() summary."""
    label = '{:<19}'.format
    files = [Path(f['path']).name for f in info['files']]
    lines = [label('Files:') + ('\n' + label('')).join(files),
             label('Bag size:') + _size(info['size']),
             label('Storage id:') + info['storage_id'],
             label('ROS Distro:') + str(info['ros_distro'] or 'unknown'),
             label('Duration:') + f"{info['duration_ns'] / 1e9:.9f}s"]
    if info['message_count']:
        lines += [label('Start:') + _stamp(info['start_ns']),
                  label('End:') + _stamp(info['end_ns'])]
    lines.append(label('Messages:') + str(info['message_count']))
    topics = [f"Topic: {name} | Type: {t['type']} | Count: {t['count']} | "
              f"Serialization Format: {t['serialization_format']}"
              for name, t in info['topics'].items()]
    lines.append(label('Topic information:') + ('\n' + label('')).join(topics))
    return '\n'.join(lines)


def run_info(args) -> int:
    try:
        print(format_info(bag_info(args.bag)))
    except BagError as error:
        raise CliError(str(error)) from None
    return 0


def _ros(stop: list):
    """rclpy for this process (discovery on localhost unless the user chose otherwise, the
    project's Fast DDS profile); signals only append to ``stop`` so bags always close."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    os.environ.update(with_fastdds_profile(dict(os.environ)))
    from asv_autonomy.ros.spin import rclpy_until_signal
    return rclpy_until_signal(stop)


def run_record(args) -> int:
    if bool(args.topics) == bool(args.all):
        raise CliError('give either topics to record or -a/--all (not both)')
    output = args.output or datetime.now().strftime('rosbag2_%Y_%m_%d-%H_%M_%S')
    from asv_autonomy.ros.bag_recorder import BagRecorder, RecorderConfig
    try:
        config = RecorderConfig(output=output, topics=tuple(args.topics), exclude=args.exclude,
                                include_hidden=args.include_hidden_topics,
                                use_sim_time=args.use_sim_time, max_duration=args.max_duration)
    except ValueError as error:
        raise CliError(str(error)) from None
    stop: list = []
    with _ros(stop):
        try:
            with BagRecorder(config) as recorder:
                recorder.spin(should_stop=lambda: bool(stop))
        except OSError as error:  # disk full, permissions: the bag is closed as far as possible
            raise CliError(f'cannot write bag {output}: {error}') from None
    total = sum(recorder.counts.values())
    print(f'recorded {total} messages on {len(recorder.counts)} topics into {output}')
    return 0


def run_from_nmea(args) -> int:
    from asv_autonomy.ros.nmea_bag import NmeaBagConfig, nmea_to_bag
    if args.out.exists():
        raise CliError(f'{args.out} already exists: choose a new bag directory')
    if not args.log.is_file():
        raise CliError(f'{args.log}: no such NMEA log')

    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:     # one line rewritten in place; a log file gets a line per step
            print(f'\r[asv bag from-nmea] {done}/{total} lines', end='' if done < total else '\n',
                  file=sys.stderr, flush=True)
        elif done == total or done % 50_000 == 0:
            print(f'[asv bag from-nmea] {done}/{total} lines', file=sys.stderr, flush=True)

    try:
        summary = nmea_to_bag(args.log, args.out, NmeaBagConfig(date=args.date),
                              progress=progress)
    except (OSError, BagError, ValueError) as error:
        raise CliError(str(error)) from None
    duration = summary['end_s'] - summary['start_s']
    print(f'wrote {sum(summary["messages"].values())} messages ({duration:.0f} s of log, '
          f'{summary["date"]}) into {args.out}: '
          + ', '.join(f'{topic} {n}' for topic, n in sorted(summary['messages'].items())))
    print('parser counts: ' + ', '.join(f'{k} {v}' for k, v in summary['parser'].items()))
    return 0


def run_play(args) -> int:
    from asv_autonomy.ros.bag_player import BagPlayer, PlayerConfig, check
    try:
        config = PlayerConfig(bag=args.bag, rate=args.rate, loop=args.loop,
                              start_offset=args.start, topics=tuple(args.topics),
                              remap=tuple(args.remap), clock_rate=args.clock_rate,
                              delay=args.delay,
                              wait_for_subscribers=args.wait_for_subscribers)
        info = check(config)
    except (BagError, ValueError) as error:
        raise CliError(str(error)) from None
    stop: list = []
    with _ros(stop):
        with BagPlayer(config, info) as player:
            started = time.monotonic()
            count = player.play(lambda: bool(stop))
    print(f'played {count} messages in {time.monotonic() - started:.2f} s')
    return 0
