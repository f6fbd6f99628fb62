"""`asv bench mapping`: the mapping models scored on a real field.

  asv bench mapping --field PATH [--n 300,1000,...] [--order random|track]
                    [--models asv,asv-stationary,exact-rbf,sgpr,pypolo-ak] [--seeds K]
                    [--inducing M] [--iters I] [--batch B] [--max-eval E]
                    [--cell-size M] [--key NAME] [--threads T] --json OUT [--plot OUT.png]

For each seed and n every model is trained on the same first n samples of the order and
scored on the held-out samples (see asv_autonomy.mapping.benchmark for the protocol).
The JSON is rewritten after every run, so an interrupted benchmark keeps what it measured;
figures that do not apply (the update latency of a batch model, a skipped model) are NaN.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

from asv_autonomy.cli.common import CliError

DEFAULT_N = '300,1000,3000'


def register(subparsers) -> None:
    from asv_autonomy.mapping.benchmark import MODELS, ORDERS, BenchSettings
    defaults = BenchSettings()
    parser = subparsers.add_parser('bench', help='benchmarks', description=__doc__.splitlines()[0])
    targets = parser.add_subparsers(dest='bench_target', required=True, metavar='TARGET')
    mapping = targets.add_parser(
        'mapping', help='score the mapping models on a field file',
        description=__doc__.split('\n\n', 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mapping.add_argument('--field', type=Path, required=True, metavar='PATH',
                         help='.npy / .npz grid, or .csv / .csv.xz samples')
    mapping.add_argument('--n', default=DEFAULT_N, metavar='N,N,...',
                         help='training set sizes (default %(default)s)')
    mapping.add_argument('--order', choices=ORDERS, default='random',
                         help='random: seeded shuffle; track: file order of scattered '
                              'samples, a lawnmower path over a grid (default %(default)s)')
    mapping.add_argument('--models', default=','.join(MODELS), metavar='NAME,...',
                         help='models to run (default %(default)s)')
    mapping.add_argument('--seeds', type=int, default=1, metavar='K',
                         help='seeds 0..K-1 (default %(default)s)')
    mapping.add_argument('--inducing', type=int, default=defaults.inducing, metavar='M',
                         help='inducing points of sgpr and the streaming mappers '
                              '(default %(default)s)')
    mapping.add_argument('--iters', type=int, default=defaults.iters, metavar='I',
                         help='Adam steps of exact-rbf / sgpr; pypolo-ak takes 10x at its '
                              'own 10x smaller learning rate (default %(default)s)')
    mapping.add_argument('--batch', type=int, default=defaults.batch, metavar='B',
                         help='samples per update call of the streaming mappers '
                              '(default %(default)s)')
    mapping.add_argument('--max-eval', type=int, default=defaults.max_eval, metavar='E',
                         help='held-out samples scored per run, random subset above this '
                              '(default %(default)s)')
    mapping.add_argument('--cell-size', type=float, default=1.0, metavar='M',
                         help='[m] grid spacing of grids without longitude/latitude '
                              '(default %(default)s)')
    mapping.add_argument('--threads', type=int, default=0, metavar='T',
                         help="CPU threads of every model (default 0: torch's default, one "
                              "per core, for the peers; one for the streaming mappers)")
    mapping.add_argument('--adapt-in-background', action='store_true',
                         help='streaming mappers fit their hyperparameters in a worker '
                              'thread, as the mapping node does (default: inside the update, '
                              'reproducible); see GPMapperConfig.adapt_in_background')
    mapping.add_argument('--key', default=None, metavar='NAME',
                         help='array of an .npz / value column of a CSV when there are '
                              'several')
    mapping.add_argument('--json', type=Path, required=True, metavar='OUT',
                         help='results file to write')
    mapping.add_argument('--plot', type=Path, default=None, metavar='OUT.png',
                         help='figure comparing the models')
    mapping.set_defaults(func=run_mapping)
    register_segmentation(targets)
    register_planning(targets)
    register_plume(targets)
    from asv_autonomy.cli.bench_anomaly import register_anomaly
    register_anomaly(targets)


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(',') if part.strip()})
    except ValueError:
        raise CliError(f'--n must be comma-separated whole numbers, got {text!r}') from None
    if not sizes or sizes[0] < 3:
        raise CliError(f'--n needs sizes >= 3, got {text!r}')
    return sizes


def _models(text: str) -> list[str]:
    from asv_autonomy.mapping.benchmark import MODELS
    return _names(text, tuple(MODELS), 'model')


def run_mapping(args) -> int:
    from tqdm import tqdm

    from asv_autonomy.mapping import benchmark as bench

    sizes, models = _sizes(args.n), _models(args.models)
    if args.seeds < 1:
        raise CliError(f'--seeds must be >= 1, got {args.seeds}')
    if args.threads < 0:
        raise CliError(f'--threads must be >= 0, got {args.threads}')
    try:
        settings = bench.BenchSettings(inducing=args.inducing, iters=args.iters,
                                       batch=args.batch, max_eval=args.max_eval,
                                       threads=args.threads,
                                       adapt_in_background=args.adapt_in_background)
    except ValueError as error:
        raise CliError(str(error)) from None
    try:
        dataset = bench.load_field(args.field, cell_size=args.cell_size, key=args.key)
    except bench.FieldFileError as error:
        raise CliError(str(error)) from None
    if sizes[-1] >= len(dataset):
        raise CliError(f'--n {sizes[-1]} leaves no held-out sample: {args.field} has '
                       f'{len(dataset)} samples')
    _check_outputs(args, dataset.name, bench)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f'{dataset.name}: {len(dataset)} samples'
          f'{" on a %d x %d grid" % dataset.grid.shape if dataset.grid else ""}, '
          f'order {args.order}, n {sizes}, seeds {args.seeds}, '
          f'{torch.get_num_threads()} torch threads, {settings}', file=sys.stderr)
    map_model = 'asv' if 'asv' in models else models[0]
    map_index = bench.map_samples(dataset) if args.plot else None
    for model in models:
        bench.warm_up(model, settings)
    results, snapshot = [], None
    with tqdm(total=args.seeds * len(sizes) * len(models), file=sys.stderr, unit='run',
              dynamic_ncols=True) as progress:
        for seed in range(args.seeds):
            for n in sizes:
                train, heldout = bench.split(dataset, args.order, n, seed, settings.max_eval)
                for model in models:
                    progress.set_description(f'{model} n={n} seed={seed}')
                    wants_map = (map_index is not None
                                 and (model, n, seed) == (map_model, sizes[-1], 0))
                    result, prediction = bench.run_one(
                        dataset, model, n, seed, train, heldout, settings,
                        map_points=dataset.xy[map_index] if wants_map else None)
                    snapshot = prediction or snapshot
                    if 'note' in result:
                        progress.write(f'{model} n={n} seed={seed}: {result["note"]}',
                                       file=sys.stderr)
                    results.append(result)
                    bench.write_json(args.json, dataset.name, results)
                    progress.update()
    if args.plot:
        bench.plot(args.plot, dataset, results, snapshot, map_index)
    _print_table(results)
    return 0


def _check_outputs(args, dataset_name: str, bench) -> None:
    """Fail now rather than after hours of benchmarking: a known image type, writable
    folders, and an (empty) results file."""
    if args.plot is not None:
        from matplotlib.backend_bases import FigureCanvasBase
        formats = FigureCanvasBase.get_supported_filetypes()
        if args.plot.suffix.lstrip('.').lower() not in formats:
            raise CliError(f'--plot {args.plot}: unknown image type (use one of '
                           f'{", ".join("." + f for f in sorted(formats))})')
    try:
        for path in (args.json, args.plot):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        bench.write_json(args.json, dataset_name, [])
    except OSError as error:
        raise CliError(f'cannot write {error.filename}: {error.strerror}') from None


def _print_table(results: list[dict]) -> None:
    """Mean over seeds per (model, n), to stdout."""
    columns = ('rmse', 'mae', 'nlpd', 'coverage95', 'fit_s', 'update_ms_p50',
               'update_ms_p95', 'predict_ms_10k', 'peak_rss_mb')
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r['model'], r['n']), []).append(r)
    print(f'{"model":<15}{"n":>7}{"seeds":>6}' + ''.join(f'{c:>15}' for c in columns))
    for (model, n), rows in groups.items():
        cells = []
        for c in columns:
            values = [r[c] for r in rows if math.isfinite(r[c])]
            cells.append(f'{np.mean(values):>15.4g}' if values else f'{"nan":>15}')
        print(f'{model:<15}{n:>7}{len(rows):>6}' + ''.join(cells))


# --- asv bench segmentation (issue 6) ------------------------------------------------------

SEGMENTATION_HELP = """\
  asv bench segmentation --images DIR [--masks DIR [--masked-only]] [--model PATH]
                         [--methods asv,classical,unet-supervised] [--unet PATH]
                         [--unet-steps N] [--limit N] [--examples N] [--overlays DIR]
                         [--threads T] --json OUT [--plot OUT.png]

Every method segments every frame of DIR. With --masks (PNG files with the images' stems,
non-zero = navigable water, e.g. from `asv sim render`) it reports water IoU and the mean
absolute boundary error [px rows per column]; without, only frames per second (and the
pictures: the real river frames); --masked-only scores just the frames that have a mask
(bench/labels/river/test: six hand-labelled frames of ../shared/data/camera). --unet
PATH: the supervised U-Net checkpoint; trained on simulated labels of training seeds 1000+
and saved there when the file does not exist (without --unet it is trained in memory).
JSON: {"results": [{"dataset", "method", "iou", "boundary_err_px", "fps", ...}]},
rewritten after each method.
"""


def register_segmentation(targets) -> None:
    from asv_autonomy.perception.benchmark import METHODS
    parser = targets.add_parser(
        'segmentation', help='score navigable-space segmenters on frames (+ masks)',
        description=SEGMENTATION_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', type=Path, required=True, metavar='DIR',
                        help='folder of frames (.png/.jpg, any size)')
    parser.add_argument('--masks', type=Path, default=None, metavar='DIR',
                        help='ground-truth masks with the same stems (non-zero = water)')
    parser.add_argument('--masked-only', action='store_true',
                        help='score only the frames of DIR that have a mask (a sequence with '
                        'a few labelled frames); otherwise every frame needs one')
    parser.add_argument('--model', type=Path, default=None, metavar='PATH',
                        help='asv checkpoint (default: models/segmentation.pt of the package)')
    parser.add_argument('--methods', default=','.join(METHODS), metavar='NAME,...',
                        help='methods to run (default %(default)s)')
    parser.add_argument('--unet', type=Path, default=None, metavar='PATH',
                        help='U-Net checkpoint: loaded when it exists, else trained and '
                             'saved there')
    parser.add_argument('--unet-steps', type=int, default=None, metavar='N',
                        help='training steps of a U-Net trained here (default: '
                             'UNetTraining.steps)')
    parser.add_argument('--limit', type=int, default=None, metavar='N',
                        help='only the first N frames (by name)')
    parser.add_argument('--examples', type=int, default=4, metavar='N',
                        help='frames shown in --plot (default %(default)s)')
    parser.add_argument('--overlays', type=Path, default=None, metavar='DIR',
                        help='also write one picture per frame and method here')
    parser.add_argument('--threads', type=int, default=0, metavar='T',
                        help="torch CPU threads (default 0: torch's default)")
    parser.add_argument('--json', type=Path, required=True, metavar='OUT',
                        help='results file to write')
    parser.add_argument('--plot', type=Path, default=None, metavar='OUT.png',
                        help='grid of examples: polylines over frames, one column per method')
    parser.set_defaults(func=run_segmentation)


def run_segmentation(args) -> int:
    from tqdm import tqdm

    from asv_autonomy.perception import benchmark as bench
    from asv_autonomy.perception.baselines import UNetCheckpointError, UNetTraining
    from asv_autonomy.perception.segmenter import CheckpointError

    methods = list(dict.fromkeys(m.strip() for m in args.methods.split(',') if m.strip()))
    unknown = [m for m in methods if m not in bench.METHODS]
    if unknown or not methods:
        raise CliError(f'unknown method(s) {", ".join(unknown) or "(none given)"}; choose '
                       f'from {", ".join(bench.METHODS)}')
    for name in ('limit', 'unet_steps', 'examples'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CliError(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    if args.threads < 0:
        raise CliError(f'--threads must be >= 0, got {args.threads}')
    try:
        if args.masked_only and args.masks is None:
            raise CliError('--masked-only needs --masks')
        dataset = bench.load_dataset(args.images, args.masks, limit=args.limit,
                                     masked_only=args.masked_only)
    except bench.DatasetError as error:
        raise CliError(str(error)) from None
    if args.plot is not None:
        from matplotlib.backend_bases import FigureCanvasBase
        formats = FigureCanvasBase.get_supported_filetypes()
        if args.plot.suffix.lstrip('.').lower() not in formats:
            raise CliError(f'--plot {args.plot}: unknown image type')
    try:
        for path in (args.json, args.plot):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        bench.write_json(args.json, [])
    except OSError as error:
        raise CliError(f'cannot write {error.filename}: {error.strerror}') from None

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    training = UNetTraining() if args.unet_steps is None else UNetTraining(steps=args.unet_steps)

    def say(line: str) -> None:
        print(f'[asv bench segmentation] {line}', file=sys.stderr, flush=True)

    segmenters = {}
    for method in methods:     # load (or train) everything before the first frame
        try:
            segmenters[method] = bench.build_method(
                method, model=args.model, unet=args.unet, unet_training=training,
                progress=lambda line, m=method: say(f'{m}: {line}'))
        except (CheckpointError, UNetCheckpointError) as error:
            raise CliError(str(error)) from None
    say(f'{dataset.name}: {len(dataset)} frames, masks: {"yes" if dataset.masks else "no"}, '
        f'methods {", ".join(methods)}, {torch.get_num_threads()} torch threads')
    indices = bench.example_indices(len(dataset), args.examples)
    settings = {'images': str(args.images), 'masks': str(args.masks) if args.masks else None,
                'model': str(args.model or bench.default_model_path()),
                'unet': str(args.unet) if args.unet else None,
                'torch_threads': torch.get_num_threads()}
    results, runs = [], {}
    with tqdm(total=len(dataset) * len(methods), file=sys.stderr, unit='frame',
              dynamic_ncols=True) as progress:
        for method in methods:
            progress.set_description(method)
            try:
                run = bench.run_method(
                    dataset, method, segmenters[method], keep=indices,
                    frame_done=progress.update,
                    overlays=args.overlays)
            except bench.DatasetError as error:
                raise CliError(str(error)) from None
            runs[method] = run
            results.append(run.result)
            bench.write_json(args.json, results, settings)
    if args.plot is not None:
        bench.plot_examples(args.plot, dataset, runs, indices, results)
    print(f'{"dataset":<16}{"method":<18}{"iou":>8}{"boundary_px":>13}{"fps":>9}')
    for r in results:
        iou = f'{r["iou"]:.4f}' if r['iou'] is not None else '-'
        err = f'{r["boundary_err_px"]:.2f}' if r['boundary_err_px'] is not None else '-'
        print(f'{r["dataset"]:<16}{r["method"]:<18}{iou:>8}{err:>13}{r["fps"]:>9.1f}')
    return 0


# --- asv bench planning (issue 4) ----------------------------------------------------------

PLANNING_HELP = """\
  asv bench planning [--scenarios gyre,passage,arctic] [--planners asv,asv-no-mdp,baseline,
                     pytorch-mppi] [--seeds K] [--device cpu|cuda] [--currents PATH]
                     --json OUT [--plot OUT.png]

Closed-loop episodes in the simulator: every planner drives the boat from the scenario's
start to its goal through a seeded realisation of the scenario's current (seeds 0..K-1),
knowing only the mean current and its spread (asv_autonomy.planning.scenarios and
.benchmark describe the scenarios and the protocol). --currents PATH (.npz or NetCDF, see
FlowField.from_file) replaces the current of every scenario. JSON: {"results": [{"scenario",
"planner", "seed", "success", "time_s", "energy_J", "min_land_distance_m", "collisions",
"outcome", "wall_s"}], "compute": [{"planner", "device", "rollouts", "horizon", "hz",
"solve_s", ...}], "settings": {...}}, rewritten after every episode; the compute section
(1024 x 50 and 4096 x 50 on the CPU, 100000 x 100 with --device cuda) comes last.

--survey adds the informative survey against the lawnmower on the simulator's lake, both
feeding the same GP mapper, scored at equal distance travelled (asv_autonomy.planning.
survey_benchmark): "survey": [{"planner", "seed", "distance_m", "map_rmse", ...}].
--scenarios none runs only that.
"""


def register_planning(targets) -> None:
    from asv_autonomy.planning.benchmark import PLANNERS
    from asv_autonomy.planning.scenarios import NAMES
    parser = targets.add_parser(
        'planning', help='closed-loop planner episodes in strong currents',
        description=PLANNING_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--scenarios', default=','.join(NAMES), metavar='NAME,...',
                        help='scenarios to run (default %(default)s)')
    parser.add_argument('--planners', default=','.join(PLANNERS), metavar='NAME,...',
                        help='planners to run (default %(default)s)')
    parser.add_argument('--seeds', type=int, default=5, metavar='K',
                        help='seeds 0..K-1 per scenario and planner (default %(default)s)')
    parser.add_argument('--device', default='cpu', metavar='cpu|cuda',
                        help='where the planners run (default %(default)s)')
    parser.add_argument('--currents', type=Path, default=None, metavar='PATH',
                        help='current grid (.npz / .nc) replacing the current of every scenario')
    parser.add_argument('--survey', action='store_true',
                        help='also compare the informative survey with the lawnmower')
    parser.add_argument('--json', type=Path, required=True, metavar='OUT',
                        help='results file to write')
    parser.add_argument('--plot', type=Path, default=None, metavar='OUT.png',
                        help='tracks over each scenario and a success / energy panel')
    parser.set_defaults(func=run_planning)


def _names(text: str, known: tuple[str, ...], what: str) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in text.split(',') if part.strip()))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise CliError(f'unknown {what}(s) {", ".join(unknown) or "(none given)"}; choose '
                       f'from {", ".join(known)}')
    return names


def run_planning(args) -> int:
    import tempfile

    from tqdm import tqdm

    from asv_autonomy.planning import benchmark as bench
    from asv_autonomy.planning import scenarios
    from asv_autonomy.planning.vessel import VesselParams

    names = ([] if args.scenarios == 'none' and args.survey
             else _names(args.scenarios, scenarios.NAMES, 'scenario'))
    planners = _names(args.planners, bench.PLANNERS, 'planner')
    if args.seeds < 1:
        raise CliError(f'--seeds must be >= 1, got {args.seeds}')
    if args.device not in ('cpu', 'cuda') and not args.device.startswith('cuda:'):
        raise CliError(f'--device must be cpu or cuda, got {args.device!r}')
    if args.device != 'cpu':
        import torch
        if not torch.cuda.is_available():
            raise CliError(f'--device {args.device}: no CUDA device here')
    if args.currents is not None and not args.currents.is_file():
        raise CliError(f'--currents {args.currents}: no such file')

    def say(line: str) -> None:
        print(f'[asv bench planning] {line}', file=sys.stderr, flush=True)

    _check_plot_type(args)
    built = []
    for name in names:
        try:
            built.append(scenarios.build(name, currents=args.currents))
        except scenarios.ScenarioUnavailable as reason:
            say(str(reason))
        except ValueError as error:
            raise CliError(str(error)) from None
    if not built and not args.survey:
        raise CliError('no scenario left to run')
    _check_plot_and_json(args, bench)
    settings = {'scenarios': [s.name for s in built], 'planners': planners,
                'seeds': args.seeds, 'device': args.device,
                'currents': str(args.currents) if args.currents else None,
                'episode': dataclasses.asdict(bench.EpisodeConfig())}
    vessel = VesselParams()
    results, episodes, compute, survey = [], [], [], None
    with tempfile.TemporaryDirectory(prefix='asv-bench-planning-') as tmp:
        workspaces = [s.workspace(Path(tmp)) for s in built]
        with tqdm(total=len(built) * len(planners) * args.seeds, file=sys.stderr,
                  unit='episode', dynamic_ncols=True) as progress:
            for scenario, workspace in zip(built, workspaces):
                for planner in planners:
                    for seed in range(args.seeds):
                        progress.set_description(f'{scenario.name} {planner} seed={seed}')
                        controller = bench.make_controller(planner, scenario, workspace,
                                                           vessel, args.device)
                        episode = bench.run_episode(scenario, planner, controller, seed,
                                                    workspace, Path(tmp))
                        episodes.append(episode)
                        results.append(episode.row)
                        bench.write_json(args.json, results, compute, settings)
                        progress.update()
        if any(p in bench.OPTIMISERS for p in planners):
            say('measuring the optimisers compute rate')
            compute = bench.compute_section(planners, args.device)
            bench.write_json(args.json, results, compute, settings)
        survey = _run_survey(args, say) if args.survey else None
        if survey is not None:
            bench.write_json(args.json, results, compute, settings, survey)
        if args.plot is not None and built:
            bench.plot(args.plot, built, workspaces, episodes)
    _print_planning_table(bench.summarise(results), compute)
    if survey:
        _print_survey_table(survey)
    return 0


def _run_survey(args, say) -> list[dict]:
    from tqdm import tqdm

    from asv_autonomy.planning.survey_benchmark import SURVEY_PLANNERS, run_survey
    say('informative survey against the lawnmower at equal distance')
    rows = []
    with tqdm(total=len(SURVEY_PLANNERS) * args.seeds, file=sys.stderr, unit='survey',
              dynamic_ncols=True) as progress:
        for planner in SURVEY_PLANNERS:
            for seed in range(args.seeds):
                progress.set_description(f'survey {planner} seed={seed}')
                rows.extend(run_survey(planner, seed, device=args.device)[0])
                progress.update()
    return rows


def _print_survey_table(rows: list[dict]) -> None:
    distances = sorted({r['distance_m'] for r in rows})
    planners = list(dict.fromkeys(r['planner'] for r in rows))
    print('survey map RMSE [m] at distance travelled: ' + '  '.join(
        f'{d:>7.0f}' for d in distances))
    for planner in planners:
        cells = []
        for d in distances:
            values = [r['map_rmse'] for r in rows if r['planner'] == planner
                      and r['distance_m'] == d]
            cells.append(f'{sum(values) / len(values):>7.2f}' if values else '      -')
        print(f'  {planner:<40}' + '  '.join(cells))


def _check_plot_type(args) -> None:
    if args.plot is not None:
        from matplotlib.backend_bases import FigureCanvasBase
        formats = FigureCanvasBase.get_supported_filetypes()
        if args.plot.suffix.lstrip('.').lower() not in formats:
            raise CliError(f'--plot {args.plot}: unknown image type')


def _check_plot_and_json(args, bench) -> None:
    """A known image type and writable outputs, before the first episode."""
    _check_plot_type(args)
    try:
        for path in (args.json, args.plot):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        bench.write_json(args.json, [], [], {})
    except OSError as error:
        raise CliError(f'cannot write {error.filename}: {error.strerror}') from None


def _print_planning_table(summary: list[dict], compute: list[dict]) -> None:
    print(f'{"scenario":<10}{"planner":<14}{"episodes":>9}{"success":>9}{"time_s":>9}'
          f'{"energy_kJ":>11}{"min_land_m":>11}{"collisions":>11}{"wall_s":>8}')
    for s in summary:
        print(f'{s["scenario"]:<10}{s["planner"]:<14}{s["episodes"]:>9}'
              f'{s["success_rate"]:>9.2f}{s["time_s"]:>9.1f}{s["energy_J"] / 1e3:>11.1f}'
              f'{s["min_land_distance_m"]:>11.1f}{s["collisions"]:>11}{s["wall_s"]:>8.2f}')
    for c in compute:
        print(f'compute {c["planner"]:<14}{c["device"]:<6}{c["rollouts"]:>7} x '
              f'{c["horizon"]:<4}{c["hz"]:>9.1f} Hz')


# --- asv bench plume (issue 3) -------------------------------------------------------------

PLUME_HELP = """\
  asv bench plume [--seed S] [--duration S] [--every S] [--params PATH] --json OUT
                  [--plot OUT.png]

One headless lawnmower survey of the simulator's lake (the controller and the mapping
node's temperature field configured from the autonomy parameters); every temperature
reading feeds three GP maps: the one the mapping node builds (spatio-temporal: with
temporal_timescale > 0 and static_background, a static background plus a fading
anomaly), the same with temporal_timescale 0 (static) and a plain fading GP with
static_background false (fading). Every --every simulated seconds each is scored
against the current true temperature over the area surveyed so far, and over its plume
cells (asv_autonomy.mapping.plume_benchmark describes the protocol). JSON: {"settings",
"summary": {"mean_rmse_spatiotemporal", "mean_rmse_static", "mean_rmse_fading",
"final_rmse_*", "fraction_spatiotemporal_lower" (than static), "mean_plume_rmse_*"},
"rows": [{"t_s", "n_samples", "surveyed_cells", "plume_cells", "rmse_spatiotemporal",
"rmse_static", "rmse_fading", "plume_rmse_spatiotemporal", "plume_rmse_static",
"plume_rmse_fading"}]}; null where a figure does not apply.
"""


def register_plume(targets) -> None:
    from asv_autonomy.mapping.plume_benchmark import PlumeBenchConfig
    defaults = PlumeBenchConfig()
    parser = targets.add_parser(
        'plume', help='spatio-temporal against static and fading temperature maps in the '
                      'simulator',
        description=PLUME_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seed', type=int, default=defaults.seed, metavar='S',
                        help='simulator seed (default %(default)s)')
    parser.add_argument('--duration', type=float, default=defaults.duration, metavar='S',
                        help='[s] simulated mission time; the default covers the default '
                             'survey (default %(default)s)')
    parser.add_argument('--every', type=float, default=defaults.every_s, metavar='S',
                        help='[s] simulated time between evaluations (default %(default)s)')
    parser.add_argument('--params', type=Path, default=None, metavar='PATH',
                        help='autonomy parameters (default: the package config/autonomy.yaml)')
    parser.add_argument('--json', type=Path, required=True, metavar='OUT',
                        help='results file to write')
    parser.add_argument('--plot', type=Path, default=None, metavar='OUT.png',
                        help='RMSE against time and the final maps')
    parser.set_defaults(func=run_plume)


def run_plume(args) -> int:
    import time

    from asv_autonomy.cli.sim_faults import ControllerFactory
    from asv_autonomy.mapping import plume_benchmark as bench
    from asv_autonomy.mapping.gp import GPMapperConfig
    from asv_autonomy.params_file import (ParamsFileError, config_from_parameters,
                                          node_parameters)

    try:
        config = bench.PlumeBenchConfig(seed=args.seed, duration=args.duration,
                                        every_s=args.every)
    except ValueError as error:
        raise CliError(str(error).replace('every_s', '--every')) from None
    controllers = ControllerFactory(args.params)
    try:   # the mapping node's temperature field, as the node declares it
        mapper = config_from_parameters(GPMapperConfig, node_parameters(
            controllers.path, 'mapping'), 'temperature', str(controllers.path))
    except ParamsFileError as error:
        raise CliError(str(error)) from None
    loop = controllers.headless_config('baseline', config.duration)
    controller = controllers.make('baseline')
    settings = bench.settings_dict(config, controller.config, mapper, loop)
    _check_plot_type(args)
    try:
        for path in (args.json, args.plot):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        bench.write_json(args.json, None, settings)
    except OSError as error:
        raise CliError(f'cannot write {error.filename}: {error.strerror}') from None
    print(f'[asv bench plume] seed {config.seed}, {config.duration:g} s, evaluation every '
          f'{config.every_s:g} s; spatio-temporal timescale {mapper.temporal_timescale:g} s, '
          f'static background {mapper.static_background}', file=sys.stderr, flush=True)
    started = time.monotonic()
    result = bench.run_plume_benchmark(config, controller, mapper, loop,
                                       progress=bench.print_progress)
    wall = time.monotonic() - started
    settings['wall_s'] = round(wall, 1)
    bench.write_json(args.json, result, settings)
    if args.plot is not None:
        bench.plot(args.plot, result, config.warmup_s)
    print(f'{"":<32}{"spatio-temporal":>16}{"static":>10}{"fading":>10}')
    s = result.summary
    for label, key in (('mean RMSE after warm-up [degC]', 'mean_rmse'),
                       ('final RMSE [degC]', 'final_rmse'),
                       ('mean plume RMSE [degC]', 'mean_plume_rmse')):
        print(f'{label:<32}{s[key + "_spatiotemporal"]:>16.4f}{s[key + "_static"]:>10.4f}'
              f'{s[key + "_fading"]:>10.4f}')
    print(f'spatio-temporal lower than static in {s["fraction_spatiotemporal_lower"]:.0%} of '
          f'the evaluations after warm-up; {wall:.0f} s wall')
    return 0
