"""`asv sim run`: the simulated mission end to end (what `make sim` runs).

Records every topic of ``sim.launch.xml`` into ``runs/<UTC timestamp>/bag`` while the
simulator, localization and controller run as separate ROS 2 processes, then writes
``summary.json`` and ``report.png`` there and points ``runs/latest`` at it.
"""
from __future__ import annotations

import json
from pathlib import Path

from asv_autonomy.cli.common import CliError
from asv_autonomy.cli.launch import LaunchSupervisor
from asv_autonomy.cli.launch_xml import (ParamFile, load_launch, parse_cli_arguments,
                                         resolve_launch_file)
from asv_autonomy.cli.report import LawnmowerReference, write_report
from asv_autonomy.cli.runs import new_run_dir, point_latest, run_recorded
from asv_autonomy.cli.sim_faults import register_faults
from asv_autonomy.params_file import ParamsFileError, config_from_parameters, node_parameters
from asv_autonomy.sim.faults import FaultSchedule

def register(subparsers) -> None:
    parser = subparsers.add_parser('sim', help='built-in simulator missions')
    commands = parser.add_subparsers(dest='sim_command', required=True, metavar='COMMAND')
    run_parser = commands.add_parser(
        'run', help='run the simulated mission headless, record it, report it',
        description=__doc__.splitlines()[0])
    run_parser.add_argument('--duration', type=float, default=None,
                            help="simulated seconds (default: sim.launch.xml's)")
    run_parser.add_argument('--rtf', type=float, default=None,
                            help="real-time factor (default: sim.launch.xml's)")
    run_parser.add_argument('--seed', type=int, default=0, help='world and sensor seed')
    run_parser.add_argument('--faults', type=Path, default=None,
                            help='fault schedule YAML (see config/faults_example.yaml)')
    run_parser.add_argument('--out', type=Path, default=Path('runs'),
                            help='folder of the runs (default: %(default)s)')
    run_parser.add_argument('launch_args', nargs='*', metavar='NAME:=VALUE',
                            help='more arguments of sim.launch.xml (e.g. namespace:=asv1)')
    run_parser.set_defaults(func=run)
    register_render(commands)
    register_faults(commands)


def _check(args) -> dict:
    """Validate everything before anything is written; return the launch arguments."""
    if args.duration is not None and not args.duration > 0.0:
        raise CliError(f'--duration must be > 0 simulated seconds, got {args.duration}')
    if args.rtf is not None and not args.rtf > 0.0:
        raise CliError(f'--rtf must be > 0, got {args.rtf}')
    launch_args = parse_cli_arguments(args.launch_args)
    for name in ('duration', 'rtf', 'seed', 'fault_schedule'):
        if name in launch_args:
            raise CliError(f'set {name} with its option (--{name.split("_")[0]}), '
                           f'not as {name}:=')
    launch_args['seed'] = str(args.seed)
    for name in ('duration', 'rtf'):
        if getattr(args, name) is not None:
            launch_args[name] = str(getattr(args, name))
    if args.faults is not None:
        try:
            FaultSchedule.from_yaml(args.faults)
        except (OSError, ValueError) as error:
            raise CliError(f'fault schedule {args.faults}: {error}') from error
        launch_args['fault_schedule'] = str(args.faults.resolve())
    return launch_args


def run(args) -> int:
    launch_args = _check(args)
    plan = load_launch(resolve_launch_file('sim'), launch_args)
    supervisor = LaunchSupervisor(plan.nodes)   # resolves executables before any output
    run_dir = new_run_dir(args.out)
    print(f'[asv sim] run folder: {run_dir}', flush=True)
    nodes, wall = run_recorded(supervisor, run_dir / 'bag')
    lawnmower = lawnmower_reference(plan)
    if lawnmower is not None:
        print('[asv sim] report: replaying the lawnmower over the same distance for '
              'survey_vs_lawnmower (headless, ~10 s)', flush=True)
    summary = write_report(run_dir, nodes=nodes, wall_duration_s=wall,
                           namespace=plan.arguments.get('namespace') or '/',
                           lawnmower=lawnmower)
    point_latest(args.out, run_dir)
    print(json.dumps({key: summary[key] for key in (
        'sim_duration_s', 'wall_duration_s', 'real_time_factor', 'distance_m',
        'localization_rmse_m', 'survey_visited_fraction', 'map_rmse', 'map_update_ms_p95',
        'segmentation_iou', 'goal_reached', 'collisions', 'energy_J',
        'survey_vs_lawnmower', 'nodes',
        'dropped_inputs')},
        indent=2))
    print(f'[asv sim] results: {run_dir}/summary.json, {run_dir}/report.png, {run_dir}/bag '
          f'(also {args.out / "latest"})', flush=True)
    return 0 if all(code == 0 for code in nodes.values()) else 1


def lawnmower_reference(plan) -> LawnmowerReference | None:
    """The lawnmower counterpart of a survey mission of the planner (None for a goto
    mission, the baseline controller, or a graph without the simulator, the controller
    or the mapping node): the polygon and line spacing of the ``controller`` section, the
    mapping node's bathymetry GP and the ``sim`` node's simulator, as the nodes read them.

    Raises:
        CliError: a parameter the configs refuse.
    """
    from asv_autonomy.mapping.gp import GPMapperConfig
    from asv_autonomy.planning.baseline import BaselineConfig
    from asv_autonomy.planning.planner import PlannerConfig
    from asv_autonomy.planning.survey_benchmark import SurveySettings
    from asv_autonomy.sim.simulator import SimConfig

    nodes = {node.name: node for node in plan.nodes}
    if not {'sim', 'controller', 'mapping'} <= nodes.keys() or plan.arguments.get('goal'):
        return None
    if nodes['controller'].executable != 'planner_node':
        return None
    try:
        controller = _node_parameters(nodes['controller'])
        planner = config_from_parameters(PlannerConfig, controller)
        if planner.mode != 'survey':
            return None
        baseline = config_from_parameters(BaselineConfig, controller)
        mapper = config_from_parameters(GPMapperConfig, _node_parameters(nodes['mapping']),
                                        'bathymetry')
        sim_config = config_from_parameters(SimConfig, _node_parameters(nodes['sim']), 'sim')
    except ParamsFileError as error:
        raise CliError(f'survey_vs_lawnmower: {error}') from None
    settings = SurveySettings(polygon=planner.survey_polygon,
                              line_spacing=baseline.line_spacing, mapper=mapper)
    return LawnmowerReference(settings, sim_config)


def _node_parameters(node) -> dict:
    """A launch node's parameters as it gets them: its files' sections, then its
    ``<param name value>`` overrides, in order."""
    params: dict = {}
    for item in node.parameters:
        if isinstance(item, ParamFile):
            params.update(node_parameters(Path(item.path), node.name))
        else:
            params[item.name] = item.value
    return params


# --- asv sim render (issue 6) --------------------------------------------------------------

def register_render(commands) -> None:
    """`asv sim render --seed S --frames N --out DIR`: frames + ground-truth masks."""
    parser = commands.add_parser(
        'render', help='render simulated camera frames and their ground-truth water masks',
        description='Write DIR/images/<stem>.png (camera frames at varied poses on the '
                    'water: open water, near shores, facing obstacles) and DIR/masks/'
                    '<stem>.png (255 = navigable water) for look/pose seed S. Seeds 0-99 '
                    'are held out for evaluation; training uses 1000+.')
    parser.add_argument('--seed', type=int, default=0, help='look and pose seed')
    parser.add_argument('--frames', type=int, default=100, help='number of frames')
    parser.add_argument('--out', type=Path, required=True, metavar='DIR',
                        help='dataset folder (images/ and masks/ are created in it)')
    parser.set_defaults(func=run_render)


def run_render(args) -> int:
    import sys

    from asv_autonomy.sim.render import render_dataset
    if args.frames < 1:
        raise CliError(f'--frames must be >= 1, got {args.frames}')
    if args.out.exists() and not args.out.is_dir():
        raise CliError(f'--out {args.out} exists and is not a folder')

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            print(f'[asv sim render] {done}/{total} frames', file=sys.stderr, flush=True)

    try:
        stems = render_dataset(args.seed, args.frames, args.out, progress=progress)
    except OSError as error:
        raise CliError(f'cannot write the dataset under {args.out}: {error}') from None
    print(f'[asv sim render] {len(stems)} frames of seed {args.seed}: {args.out / "images"}, '
          f'{args.out / "masks"}')
    return 0
