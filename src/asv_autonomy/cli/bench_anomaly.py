"""`asv bench anomaly`: the graph detector against PCA, Isolation Forest and its own
ablation, on held-out simulated faults and on real boat logs.

  asv bench anomaly --json OUT [--plot OUT.png] [--data DIR] [--methods NAME,...]
                    [--families NAME,...] [--tests-per-family K] [--nmea DIR] [--no-sim]
                    [--no-real] [--epochs N] [--seed S]

Simulated (dataset ``sim``): normal missions (seeds 100..111, 600 s each: two hours) train
every method (the last three calibrate the thresholds); two labelled missions (seeds 300,
301) train the fault-type head; K missions per fault family (seeds 1000 + 10 i + j: never
trained or tuned on) with two faults of that family each are the test sets. Even seeds are driven by the planner, odd ones by the baseline
lawnmower (``asv sim faults --controller planner,baseline``), so that the detector learns
and is tested on the boat's normal behaviour under either controller. Missions are
generated once into --data (the first run takes about an hour: a planner mission takes
1-3 minutes) and reused.

Real (dataset ``plaka``): ``plaka.log`` (a sailing boat off Finland, normal sailing) is
parsed into channels; its first 60 % trains, its last 40 % is the test set of each
injected fault kind (GPS dropout and jumps, depth spikes, heading drift;
anomaly/inject.py). The gpsd logs' real no-fix periods (dataset ``gpsd``) are scored with
the plaka models. Real data is read from --nmea (default ../shared/data/nmea); it is
skipped with a message when absent.

JSON: {"results": [{"dataset", "fault", "method", "auroc", "f1_event", "f1_point",
"detection_delay_s", "false_alarms_per_hour", "attribution_accuracy"}],
"latency_ms_per_window": float, "train_s": float, "train_hours": float, "settings": {...}}
(latency: asv's score_window with the node's torch threads; training time: asv on the
simulated hour; this CPU). Fault "all" pools a dataset's test sets.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from argparse import Namespace
from pathlib import Path

from asv_autonomy.cli.common import CliError
from asv_autonomy.jsonio import strict_json

TRAIN_SEEDS = range(100, 112)
LABELLED_SEEDS = range(300, 302)
TEST_SEED_BASE = 1000
CONTROLLERS = ('planner', 'baseline')   # seed S is driven by CONTROLLERS[S % 2]
DEFAULT_NMEA = Path(__file__).resolve().parents[3].parent / 'shared' / 'data' / 'nmea'
GPSD_LOGS = ('telit-he910.log', 'rx210.log', 'ait250.log')


def register_anomaly(targets) -> None:
    from asv_autonomy.anomaly.benchmark import METHODS
    from asv_autonomy.sim.faults import FAMILIES
    parser = targets.add_parser('anomaly', help='anomaly detector vs baselines on simulated '
                                'faults and real logs', description=__doc__.split('\n\n', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--json', type=Path, required=True, metavar='OUT')
    parser.add_argument('--plot', type=Path, default=None, metavar='OUT.png',
                        help='event F1 per fault and method, and score timelines')
    parser.add_argument('--data', type=Path, default=Path('runs/anomaly_data'), metavar='DIR',
                        help='simulated missions (generated when missing; default %(default)s)')
    parser.add_argument('--methods', default=','.join(METHODS), metavar='NAME,...')
    parser.add_argument('--families', default=','.join(FAMILIES), metavar='NAME,...',
                        help='simulated fault families to test')
    parser.add_argument('--tests-per-family', type=int, default=2, metavar='K',
                        help='test missions per fault family (default %(default)s: one driven '
                        'by the planner, one by the baseline)')
    parser.add_argument('--nmea', type=Path, default=DEFAULT_NMEA, metavar='DIR',
                        help='folder with plaka.log and the gpsd logs (default %(default)s)')
    parser.add_argument('--no-sim', action='store_true', help='skip the simulated dataset')
    parser.add_argument('--no-real', action='store_true', help='skip the real logs')
    parser.add_argument('--epochs', type=int, default=None, metavar='N',
                        help='detector training epochs (default: the detector\'s)')
    parser.add_argument('--seed', type=int, default=0, metavar='S')
    parser.set_defaults(func=run_anomaly)


def _say(text: str) -> None:
    print(f'[asv bench anomaly] {text}', file=sys.stderr, flush=True)


def _names(text: str, known, what: str) -> list[str]:
    names = [n.strip() for n in text.split(',') if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise CliError(f'unknown {what} {", ".join(unknown) or "(none)"}; choose from '
                       f'{", ".join(known)}')
    return names


def _missions(folder: Path, seeds, faults_per_run: int, families: tuple[str, ...]):
    """The `asv sim faults` missions of ``seeds`` in ``folder``, generating missing ones."""
    from asv_autonomy.anomaly.bag_channels import series_from_bag
    from asv_autonomy.cli.sim_faults import IDLE_START_S, run_faults
    missing = [s for s in seeds if not (folder / f'seed_{s:04d}' / 'labels.json').is_file()]
    for seed in missing:
        run_faults(Namespace(seeds=range(seed, seed + 1), out=folder, duration=600.0,
                             faults_per_run=faults_per_run, families=','.join(families),
                             params=None, force=True, controller=CONTROLLERS,
                             idle_start=IDLE_START_S))
    return [series_from_bag(folder / f'seed_{s:04d}' / 'bag')[0] for s in seeds]


def _detector_config(rate_hz: float, args):
    from asv_autonomy.anomaly.detector import DetectorConfig
    config = DetectorConfig(rate_hz=rate_hz)
    training = {'seed': args.seed}
    if args.epochs:
        training['epochs'] = args.epochs
    return dataclasses.replace(config, training=dataclasses.replace(config.training, **training))


def _node_latency_ms(detector, series) -> float:
    """``window_latency_ms`` with the anomaly node's torch threads (1 by default: on this
    CPU one window takes ~2.4 ms on one thread and ~5.5 ms on two)."""
    import torch

    from asv_autonomy.anomaly.benchmark import window_latency_ms
    from asv_autonomy.ros.anomaly_node import AnomalyNodeConfig
    threads = torch.get_num_threads()
    node_threads = AnomalyNodeConfig().torch_threads
    try:
        if node_threads:
            torch.set_num_threads(node_threads)
        return window_latency_ms(detector, series)
    finally:
        torch.set_num_threads(threads)


def sim_split(args, families):
    from asv_autonomy.anomaly.benchmark import DatasetSplit
    from asv_autonomy.sim.faults import FAMILIES
    _say(f'simulated missions in {args.data} (missing ones are generated)')
    train = _missions(args.data / 'normal', TRAIN_SEEDS, 0, tuple(FAMILIES))
    labelled = _missions(args.data / 'labelled', LABELLED_SEEDS, 2, tuple(FAMILIES))
    tests = {}
    for family in families:
        index = list(FAMILIES).index(family)
        seeds = [TEST_SEED_BASE + 10 * index + j for j in range(args.tests_per_family)]
        tests[family] = _missions(args.data / f'test_{family}', seeds, 2, (family,))
    from asv_autonomy.anomaly.channels import BOAT_LONG_WINDOW_CHANNELS, BOAT_UNSCORED_CHANNELS
    config = dataclasses.replace(_detector_config(10.0, args),
                                 unscored_channels=BOAT_UNSCORED_CHANNELS,
                                 long_window_channels=BOAT_LONG_WINDOW_CHANNELS,
                                 threshold_on_training=True)
    return DatasetSplit('sim', train, tests, labelled, config)


def real_split(args):
    import numpy as np

    from asv_autonomy.anomaly.benchmark import DatasetSplit
    from asv_autonomy.anomaly.inject import applicable_kinds, random_injections
    from asv_autonomy.anomaly.nmea_channels import series_from_nmea
    plaka = args.nmea / 'plaka.log'
    if not plaka.is_file():
        _say(f'{plaka} is absent: the real-data datasets are skipped')
        return None
    series, _ = series_from_nmea(plaka)
    rate = 1.0 / series.dt
    cut = int(0.6 * len(series))
    train, held_out = series.slice(0, cut), series.slice(cut, len(series))
    rng = np.random.default_rng(args.seed)
    slots = int((len(held_out) / rate - 120.0) // 130.0)   # warm-up, then ~130 s per fault
    tests = {kind: [random_injections(held_out, slots, rng, kinds=(kind,))]
             for kind in applicable_kinds(held_out)}
    extra = {}
    gpsd = [args.nmea / name for name in GPSD_LOGS if (args.nmea / name).is_file()]
    if gpsd:
        extra['gpsd'] = {'gps_dropout': [series_from_nmea(p, rate_hz=rate)[0] for p in gpsd]}
    _say(f'plaka.log: {len(series.channels)} channels at {rate:g} Hz, '
         f'{len(train) / rate / 3600:.2f} h training, {len(held_out) / rate / 3600:.2f} h '
         f'test with {slots} injected faults per kind ({", ".join(tests)})')
    return DatasetSplit('plaka', [train], tests, [], _detector_config(rate, args), extra)


def run_anomaly(args) -> int:
    from tqdm import tqdm

    from asv_autonomy.anomaly.benchmark import METHODS, benchmark_dataset
    from asv_autonomy.sim.faults import FAMILIES

    methods = _names(args.methods, METHODS, 'method(s)')
    families = _names(args.families, tuple(FAMILIES), 'fault family(ies)')
    if args.tests_per_family < 1:
        raise CliError(f'--tests-per-family must be >= 1, got {args.tests_per_family}')
    if args.plot is not None and args.plot.suffix.lower() != '.png':
        raise CliError(f'--plot must name a .png file, got {args.plot}')
    if args.no_sim and args.no_real:
        raise CliError('--no-sim and --no-real leave nothing to run')

    def progress_factory(label):
        bar = tqdm(total=1, unit='epoch', file=sys.stderr, desc=label, dynamic_ncols=True,
                   leave=False)

        def progress(epoch, epochs, loss):
            bar.total = epochs
            bar.set_postfix(loss=f'{loss:.4f}')
            bar.update(epoch - bar.n)
            if epoch >= epochs:
                bar.close()
        return progress

    splits = ([] if args.no_sim else [sim_split(args, families)])
    if not args.no_real:
        real = real_split(args)
        if real is not None:
            splits.append(real)
    if not splits:
        raise CliError('no dataset left to run (the real logs are absent and --no-sim)')
    document = {'results': [], 'latency_ms_per_window': math.nan, 'train_s': math.nan,
                'train_hours': math.nan,
                'settings': {'methods': methods, 'families': families,
                             'tests_per_family': args.tests_per_family, 'seed': args.seed,
                             'train_seeds': [TRAIN_SEEDS.start, TRAIN_SEEDS.stop - 1],
                             'labelled_seeds': [LABELLED_SEEDS.start, LABELLED_SEEDS.stop - 1]}}
    timelines = {}
    for split in splits:
        rows, train_s, models, scored = benchmark_dataset(split, methods, _say, progress_factory)
        document['results'] += rows
        timelines[split.name] = (scored, {m: float(models[m].threshold) for m in models})
        if split.name == 'sim' and 'asv' in models:
            hours = sum(len(s) for s in split.train) / split.detector.rate_hz / 3600
            document['train_s'] = train_s['asv']
            document['train_hours'] = hours
            first_test = next(iter(split.tests.values()))[0]
            document['latency_ms_per_window'] = _node_latency_ms(models['asv'], first_test)
        _write(args.json, document)
    _print_table(document['results'])
    _say(f'asv: {document["latency_ms_per_window"]:.2f} ms per window, trained in '
         f'{document["train_s"]:.0f} s on {document["train_hours"]:.2f} h of logs')
    if args.plot:
        plot_benchmark(document['results'], timelines, args.plot)
        _say(f'wrote {args.plot}')
    _say(f'wrote {args.json}')
    return 0


def _write(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(strict_json(document), indent=2) + '\n')


def _print_table(rows: list[dict]) -> None:
    head = (f'{"dataset":8} {"fault":22} {"method":20} {"auroc":>6} {"f1_evt":>6} '
            f'{"f1_pt":>6} {"delay":>6} {"fa/h":>6} {"attr":>6}')
    print(head)
    for r in rows:
        print(f'{r["dataset"]:8} {r["fault"]:22} {r["method"]:20} {r["auroc"]:6.3f} '
              f'{r["f1_event"]:6.3f} {r["f1_point"]:6.3f} {r["detection_delay_s"]:6.2f} '
              f'{r["false_alarms_per_hour"]:6.2f} {r["attribution_accuracy"]:6.2f}')


def plot_benchmark(rows: list[dict], timelines: dict, path: Path) -> None:
    """Event F1 per (dataset, fault) and method; below, the score / threshold of each
    method over the first test mission of each simulated family (faults shaded)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    from asv_autonomy.anomaly.metrics import events

    methods = list(dict.fromkeys(r['method'] for r in rows))
    groups = list(dict.fromkeys((r['dataset'], r['fault']) for r in rows))
    scored, thresholds = timelines.get('sim', ({}, {}))
    keys = list(next(iter(scored.values()), {}))
    examples = [key for key in keys if key[1] != 'all'][:4]
    fig = plt.figure(figsize=(14, 4 + 2.2 * len(examples)), constrained_layout=True)
    grid = fig.add_gridspec(1 + len(examples), 1, height_ratios=[2] + [1] * len(examples))
    ax = fig.add_subplot(grid[0])
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        values = [next((r['f1_event'] for r in rows if r['method'] == method
                        and (r['dataset'], r['fault']) == g), np.nan) for g in groups]
        ax.bar(np.arange(len(groups)) + i * width, np.nan_to_num(values), width, label=method)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
    ax.set_xticklabels([f'{d}\n{f}' for d, f in groups], fontsize=7)
    ax.set_ylabel('event F1')
    ax.set_ylim(0, 1.05)
    ax.axhline(0.9, color='k', lw=0.6, ls='--')
    ax.legend(ncol=len(methods), fontsize=8)
    for row, key in enumerate(examples, start=1):
        ax = fig.add_subplot(grid[row])
        series = None
        for method in methods:
            pairs = scored.get(method, {}).get(key)
            if not pairs:
                continue
            series, scores = pairs[0]
            t = series.times - series.times[0]
            ax.plot(t, np.maximum(scores.score / thresholds[method], 1e-3), lw=0.7,
                    label=method)
        if series is not None and series.anomaly is not None:
            for start, stop in events(series.anomaly):
                ax.axvspan(t[start], t[min(stop, len(t) - 1)], color='red', alpha=0.15)
        ax.axhline(1.0, color='k', lw=0.6, ls='--')
        ax.set_yscale('log')
        ax.set_ylabel('score / threshold')
        ax.set_title(f'simulated test mission: {key[1]} (shaded: the faults)', fontsize=9)
        ax.legend(fontsize=7, ncol=len(methods), loc='upper left')
    ax.set_xlabel('time [s]')
    fig.savefig(path, dpi=110)
    plt.close(fig)
