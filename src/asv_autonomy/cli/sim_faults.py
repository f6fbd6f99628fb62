"""`asv sim faults --seeds A..B --out DIR`: labelled simulated missions for the anomaly
detector.

Each seed gives a world/sensor seed and a random fault schedule (``--faults-per-run``
faults of the chosen families, with random severities and onsets after a fault-free
warm-up); the closed loop runs headless (``sim.headless``, no ROS processes: a 600 s
mission in about a minute with the planner, seconds with the baseline), driven by the
controller the autonomy graph would run, configured from the same parameters file, and is
written to ``DIR/seed_<S>/``: ``bag/`` (sensors, odometry,
thrust, ground truth, ``sim/faults`` while a fault is active), ``faults.yaml`` (replayable
with ``asv sim run --faults``) and ``labels.json`` (each fault's family, channel, onset and
end on the bag's clock). A seed with ``--faults-per-run 0`` is a normal mission. The
controller starts a random 0 to ``--idle-start`` seconds after the simulator, as on the ROS
graph, where the planner is ready seconds after the simulator: the boat sets off from rest.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from asv_autonomy.cli.common import CliError
from asv_autonomy.sim.faults import FAMILIES, random_schedule


def register_faults(commands) -> None:
    parser = commands.add_parser('faults', help='labelled simulated missions with injected '
                                 'faults (datasets for the anomaly detector)',
                                 description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=_seed_range, required=True, metavar='A..B',
                        help='seeds A to B inclusive (or one seed)')
    parser.add_argument('--out', type=Path, required=True, metavar='DIR',
                        help='dataset folder (seed_<S>/ per seed)')
    parser.add_argument('--duration', type=float, default=600.0,
                        help='simulated seconds per mission (default: %(default)s)')
    parser.add_argument('--faults-per-run', type=int, default=2,
                        help='faults per mission, 0 for normal missions (default: %(default)s)')
    parser.add_argument('--families', default=','.join(FAMILIES),
                        help='comma-separated fault families (default: all: %(default)s)')
    parser.add_argument('--params', type=Path, default=None,
                        help='autonomy parameters (default: the package config/autonomy.yaml)')
    parser.add_argument('--controller', type=_controller_names, default=('planner',),
                        metavar='NAME[,NAME]',
                        help='who drives the boat: planner (the autonomy graph\'s default) or '
                        'baseline (lawnmower); with both, seed S uses the (S mod 2)-th '
                        '(default: planner)')
    parser.add_argument('--idle-start', type=float, default=IDLE_START_S, metavar='S',
                        help='the controller starts a random 0 to S seconds into each mission '
                        '(default: %(default)s)')
    parser.add_argument('--force', action='store_true',
                        help='replace existing seed folders')
    parser.set_defaults(func=run_faults)


def _seed_range(text: str) -> range:
    first, sep, last = text.partition('..')
    try:
        a, b = int(first), int(last if sep else first)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a seed or A..B range: {text!r}') from None
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError(f'need 0 <= A <= B, got {text!r}')
    return range(a, b + 1)


CONTROLLERS = ('planner', 'baseline')
# [s] The ROS graph's planner commands its first thrust ~9 s after the simulator starts.
IDLE_START_S = 15.0


def _controller_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(',') if n.strip())
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f'unknown controller {", ".join(unknown) or "(none)"}; choose from '
            f'{", ".join(CONTROLLERS)}')
    return names


class ControllerFactory:
    """Fresh controllers configured from the ``controller`` section of the autonomy
    parameters (the values the ROS graph uses, for either controller node)."""

    def __init__(self, params: Path | None):
        from asv_autonomy.cli.launch_xml import PACKAGE, find_package_share
        from asv_autonomy.params_file import ParamsFileError, node_parameters

        self.path = params or find_package_share(PACKAGE) / 'config' / 'autonomy.yaml'
        try:
            self.params = node_parameters(self.path, 'controller')
        except ParamsFileError as error:
            raise CliError(str(error)) from None
        from asv_autonomy.planning.vessel import VesselParams
        self.vessel = self._config(VesselParams, 'vessel')

    def _config(self, cls: type, prefix: str = ''):
        from asv_autonomy.params_file import ParamsFileError, config_from_parameters
        try:
            return config_from_parameters(cls, self.params, prefix, str(self.path))
        except ParamsFileError as error:
            raise CliError(str(error)) from None

    def headless_config(self, name: str, duration: float):
        """The loop's rates as the controller node ``name`` has them."""
        from asv_autonomy.ros.baseline_controller_node import ControllerNodeConfig
        from asv_autonomy.ros.planner_node import PlannerNodeConfig
        from asv_autonomy.sim.headless import HeadlessConfig
        node = self._config(PlannerNodeConfig if name == 'planner' else ControllerNodeConfig)
        return HeadlessConfig(duration=duration, control_rate=node.control_rate,
                              odometry_timeout=node.odometry_timeout)

    def make(self, name: str):
        """A fresh controller ``name`` ('planner' or 'baseline') for one mission."""
        if name == 'baseline':
            from asv_autonomy.planning.baseline import BaselineConfig, BaselineController
            return BaselineController(self._config(BaselineConfig), self.vessel)
        import dataclasses

        from asv_autonomy.planning.health import HealthMonitor, HealthMonitorConfig
        from asv_autonomy.planning.planner import PlannerConfig
        from asv_autonomy.ros.planner_node import PlannerNodeConfig, build_planner
        from asv_autonomy.sim.headless import PlannerLoop
        # Solves in the loop, not a worker thread: a seed always gives the same mission.
        planner_config = dataclasses.replace(self._config(PlannerConfig),
                                             background_solve=False)
        try:
            planner = build_planner(self._config(PlannerNodeConfig), planner_config,
                                    self.vessel)
        except (ValueError, OSError, RuntimeError) as error:
            raise CliError(f'planner from {self.path}: {error}') from None
        return PlannerLoop(planner, HealthMonitor(self._config(HealthMonitorConfig, 'health')))


def run_faults(args) -> int:
    from asv_autonomy.localization import LocalizationConfig, Localizer
    from asv_autonomy.ros.mission_bag import write_mission_bag
    from asv_autonomy.ros.sim_messages import SimMessages
    from asv_autonomy.ros.sim_node import SimNodeConfig
    from asv_autonomy.sim.headless import run_headless
    from asv_autonomy.sim.simulator import SimConfig, Simulator

    families = tuple(f for f in args.families.split(',') if f)
    controllers = ControllerFactory(args.params)
    try:
        loops = {name: controllers.headless_config(name, args.duration)
                 for name in args.controller}
        random_schedule(np.random.default_rng(0), args.duration, args.faults_per_run, families)
    except ValueError as error:
        raise CliError(str(error)) from None
    if args.faults_per_run < 0:
        raise CliError(f'--faults-per-run must be >= 0, got {args.faults_per_run}')
    if not (np.isfinite(args.idle_start) and 0.0 <= args.idle_start < args.duration):
        raise CliError(f'--idle-start must be in [0, --duration), got {args.idle_start}')
    node_config = SimNodeConfig()
    args.out.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(args.seeds, start=1):
        folder = args.out / f'seed_{seed:04d}'
        if folder.exists():
            if not args.force:
                raise CliError(f'{folder} exists (use --force to replace it)')
            shutil.rmtree(folder)
        folder.mkdir()
        started = time.monotonic()
        # The schedule's randomness is its own stream, so a seed's world does not change
        # with the number or kind of faults.
        schedule = random_schedule(np.random.default_rng([seed, 1]), args.duration,
                                   args.faults_per_run, families)
        schedule.to_yaml(folder / 'faults.yaml')
        sim = Simulator(SimConfig(seed=seed), schedule)
        localizer = Localizer(LocalizationConfig(datum=sim.config.datum))
        controller = args.controller[seed % len(args.controller)]
        idle = float(np.random.default_rng([seed, 2]).uniform(0.0, args.idle_start))
        loop = dataclasses.replace(loops[controller], idle_start=idle)
        steps = run_headless(sim, localizer, controllers.make(controller), loop)
        counts = write_mission_bag(folder / 'bag', steps,
                                   SimMessages(sim, node_config, camera=False))
        start = sim.config.start_time
        labels = {'seed': seed, 'controller': controller, 'duration_s': args.duration,
                  'start_time': start, 'idle_start_s': idle,
                  'faults': [{'type': f.kind, 'channel': f.channel, 'onset': start + f.onset,
                              'end': start + f.end,
                              'params': {k: list(v) if isinstance(v, tuple) else v
                                         for k, v in f.params.items()}}
                             for f in schedule.faults]}
        (folder / 'labels.json').write_text(json.dumps(labels, indent=2) + '\n')
        kinds = ', '.join(f'{f.kind} at {f.onset:.0f} s' for f in schedule.faults) or 'none'
        print(f'[asv sim faults] {index}/{len(args.seeds)} seed {seed} ({controller}): '
              f'{kinds}; '
              f'{sum(counts.values())} messages in {time.monotonic() - started:.1f} s',
              file=sys.stderr, flush=True)
    print(f'[asv sim faults] {len(args.seeds)} missions in {args.out}')
    return 0
