"""`asv replay BAG`: replay a recorded mission through the autonomy graph, record it, report it.

Runs ``replay.launch.xml`` (bag player on bag time + localization, mapping, controller on
``use_sim_time``) while recording into ``runs/<UTC>/bag``, then writes ``summary.json`` and
``report.png`` (track and maps) there. The map datum is the bag's first GNSS fix unless
``--datum`` or the params file sets one, so a log from any site replays as recorded.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from asv_autonomy import bagio
from asv_autonomy.cli.common import CliError
from asv_autonomy.cli.launch import LaunchSupervisor
from asv_autonomy.cli.launch_xml import (PACKAGE, find_package_share, load_launch,
                                         parse_cli_arguments, resolve_launch_file)
from asv_autonomy.cli.report import write_report
from asv_autonomy.cli.runs import new_run_dir, point_latest, run_recorded

NAVSATFIX = 'sensor_msgs/msg/NavSatFix'
LOCALIZATION_KEY = '/**/localization'


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'replay', help='replay a bag through the autonomy graph, record it, report it',
        description=__doc__.splitlines()[0])
    parser.add_argument('bag', type=Path, help='bag directory or .mcap file (e.g. from '
                        '`asv bag from-nmea`)')
    parser.add_argument('--rate', type=float, default=20.0,
                        help='playback speed factor (default: %(default)s)')
    parser.add_argument('--datum', default=None, metavar='LAT,LON',
                        help="map origin [deg] (default: the params file's, else the bag's "
                             'first fix)')
    parser.add_argument('--params', type=Path, default=None,
                        help='autonomy parameters (default: the package config/autonomy.yaml)')
    parser.add_argument('--out', type=Path, default=Path('runs'),
                        help='folder of the runs (default: %(default)s)')
    parser.add_argument('launch_args', nargs='*', metavar='NAME:=VALUE',
                        help='more arguments of replay.launch.xml (e.g. start_offset:=60)')
    parser.set_defaults(func=run)


def first_fix(bag: Path) -> tuple[float, float] | None:
    """(latitude, longitude) [deg] of the bag's first NavSatFix with a fix."""
    topics = [name for name, info in bagio.bag_info(bag)['topics'].items()
              if info['type'] == NAVSATFIX]
    for message in bagio.read_messages(bag, topics):
        fix = bagio.deserialize(message.msgtype, message.data)
        if fix.status.status >= 0 and math.isfinite(fix.latitude) \
                and math.isfinite(fix.longitude):
            return fix.latitude, fix.longitude
    return None


def _parse_datum(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(v) for v in text.split(','))
    except ValueError:
        raise CliError(f'--datum must be LAT,LON in degrees, got {text!r}') from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 360.0):
        raise CliError(f'--datum {text}: latitude or longitude out of range')
    return lat, lon


def replay_params(params: Path, datum: tuple[float, float] | None, bag: Path) -> dict:
    """The autonomy parameters with the localization datum set: ``datum`` if given, the
    params file's if it has one, else the bag's first fix."""
    try:
        content = yaml.safe_load(params.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CliError(f'params file {params}: {error}') from None
    section = content.setdefault(LOCALIZATION_KEY, {}).setdefault('ros__parameters', {})
    if datum is None and 'datum' in section:
        return content
    if datum is None:
        datum = first_fix(bag)
        if datum is None:
            raise CliError(f'{bag} has no GNSS fix to place the map datum: pass --datum LAT,LON')
        print(f'[asv replay] map datum = first fix of the bag: {datum[0]:.6f}, {datum[1]:.6f}')
    section['datum'] = {'latitude': float(datum[0]), 'longitude': float(datum[1])}
    return content


def run(args) -> int:
    if not args.rate > 0.0:
        raise CliError(f'--rate must be > 0, got {args.rate}')
    bag = args.bag.resolve()
    try:
        info = bagio.bag_info(bag)
    except bagio.BagError as error:
        raise CliError(str(error)) from None
    launch_args = parse_cli_arguments(args.launch_args)
    for name in ('bag', 'rate', 'params_file'):
        if name in launch_args:
            raise CliError(f'set {name} with its option, not as {name}:=')
    datum = _parse_datum(args.datum) if args.datum else None
    params = args.params or find_package_share(PACKAGE) / 'config' / 'autonomy.yaml'
    content = replay_params(params, datum, bag)
    run_dir = new_run_dir(args.out)
    params_file = run_dir / 'params.yaml'
    params_file.write_text(yaml.safe_dump(content, sort_keys=False))
    launch_args.update(bag=str(bag), rate=str(args.rate), params_file=str(params_file))
    plan = load_launch(resolve_launch_file('replay'), launch_args)
    supervisor = LaunchSupervisor(plan.nodes)
    print(f'[asv replay] {bag} ({info["duration_ns"] / 1e9:.0f} s) at {args.rate}x; '
          f'run folder: {run_dir}', flush=True)
    nodes, wall = run_recorded(supervisor, run_dir / 'bag')
    summary = write_report(run_dir, nodes=nodes, wall_duration_s=wall,
                           namespace=plan.arguments.get('namespace') or '/')
    point_latest(args.out, run_dir)
    print(json.dumps({key: summary[key] for key in (
        'sim_duration_s', 'wall_duration_s', 'real_time_factor', 'nodes', 'dropped_inputs',
        'map_update_ms_p95')}, indent=2))
    print(f'[asv replay] results: {run_dir}/summary.json, {run_dir}/report.png, '
          f'{run_dir}/bag', flush=True)
    return 0 if all(code == 0 for code in nodes.values()) else 1
