"""`asv anomaly fit|score`: the anomaly detector on any robot's logs, as CSV files.

  asv anomaly fit --csv TRAIN.csv [--csv ...] [--rate HZ] [--epochs N] [--seed S]
                  [--false-alarms-per-hour R] --out model.pt
  asv anomaly score --model model.pt --csv TEST.csv --out SCORES.csv [--metrics METRICS.json]

CSV: a time column (the first column, or one named time / timestamp / datetime; seconds or
ISO 8601), numeric channel columns, and optionally an ``anomaly`` column (0/1) that is used
only for metrics and, when fitting, to keep labelled anomalies out of the normal training
data and to train the fault head. Separator ``,`` or ``;``. Non-numeric columns are ignored
with a warning; bad rows are skipped and counted. Each channel is its own attribution group.

``score`` writes ``time,score,is_anomaly,channel`` (channel: the one at fault, empty when
normal) and, with --metrics and an ``anomaly`` column, ``auroc``, ``f1_point``,
``f1_event``, ``detection_delay_s``, ``false_alarms_per_hour`` (and
``attribution_accuracy``, NaN: a CSV names no faulty channel).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from asv_autonomy.cli.common import CliError
from asv_autonomy.jsonio import strict_json


def register(subparsers) -> None:
    parser = subparsers.add_parser('anomaly', help='fit / score the anomaly detector on CSV logs',
                                   description=__doc__.split('\n\n', 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest='anomaly_verb', required=True, metavar='VERB')
    fit = verbs.add_parser('fit', help='learn normal behaviour from CSV logs')
    fit.add_argument('--csv', type=Path, action='append', required=True, metavar='TRAIN.csv',
                     help='training log (repeat for several)')
    fit.add_argument('--rate', type=float, default=None, metavar='HZ',
                     help='grid rate (default: from the first file\'s median time step)')
    add_training_options(fit)
    fit.add_argument('--out', type=Path, required=True, metavar='model.pt')
    fit.set_defaults(func=run_fit)
    score = verbs.add_parser('score', help='score a CSV log with a fitted detector')
    score.add_argument('--model', type=Path, required=True, metavar='model.pt')
    score.add_argument('--csv', type=Path, required=True, metavar='TEST.csv')
    score.add_argument('--out', type=Path, required=True, metavar='SCORES.csv')
    score.add_argument('--metrics', type=Path, default=None, metavar='METRICS.json',
                       help='write metrics (needs an anomaly column)')
    score.set_defaults(func=run_score)


def add_training_options(parser) -> None:
    """Options shared by `asv anomaly fit` and `asv train anomaly`."""
    parser.add_argument('--epochs', type=int, default=None, metavar='N',
                        help='maximum training epochs (default: the detector\'s)')
    parser.add_argument('--window', type=int, default=None, metavar='STEPS',
                        help='window length in grid steps (default: the detector\'s)')
    parser.add_argument('--contrastive-weight', type=float, default=None, metavar='W',
                        help='weight of the contrastive loss; 0 trains without it')
    parser.add_argument('--false-alarms-per-hour', type=float, default=None, metavar='R',
                        help='target alarm rate on normal data the threshold is set to')
    parser.add_argument('--seed', type=int, default=0, metavar='S')
    parser.add_argument('--threads', type=int, default=None, metavar='T',
                        help='torch CPU threads (default: torch\'s choice)')


def detector_config(args, rate_hz: float):
    """DetectorConfig from the shared training options (a bad value is a CliError)."""
    import dataclasses

    from asv_autonomy.anomaly.detector import DetectorConfig

    base = DetectorConfig()
    training = {'seed': args.seed}
    if args.epochs is not None:
        training['epochs'] = args.epochs
    if args.contrastive_weight is not None:
        training['contrastive_weight'] = args.contrastive_weight
    top = {'rate_hz': rate_hz}
    if args.window is not None:
        top['window'] = args.window
    if args.false_alarms_per_hour is not None:
        top['false_alarms_per_hour'] = args.false_alarms_per_hour
    try:
        return dataclasses.replace(base, training=dataclasses.replace(base.training, **training),
                                   **top)
    except (TypeError, ValueError) as error:
        raise CliError(f'bad detector setting: {error}') from None


def fit_detector(config, train, labelled, say):
    """Fit with a tqdm bar over epochs; returns (detector, report)."""
    from tqdm import tqdm

    from asv_autonomy.anomaly.detector import AnomalyDetector

    detector = AnomalyDetector(config)
    with tqdm(total=config.training.epochs, unit='epoch', file=sys.stderr,
              dynamic_ncols=True, desc='training') as bar:
        def progress(epoch, epochs, loss):
            bar.total = epochs
            bar.set_postfix(loss=f'{loss:.4f}')
            bar.update(epoch - bar.n)
        try:
            report = detector.fit(train, labelled=labelled, progress=progress)
        except ValueError as error:
            raise CliError(str(error)) from None
    say(f'{report.epochs} epochs ({report.windows} windows) in {report.train_s:.1f} s; '
        f'threshold {report.threshold:.3g} calibrated on {report.calibration_hours:.2f} h '
        f'of normal data')
    return detector, report


def _say(text: str) -> None:
    print(f'[asv anomaly] {text}', file=sys.stderr, flush=True)


def _read(path: Path, rate_hz=None):
    from asv_autonomy.anomaly.csv_io import read_csv
    if not path.is_file():
        raise CliError(f'{path}: no such file')
    try:
        series, report = read_csv(path, rate_hz)
    except ValueError as error:
        raise CliError(str(error)) from None
    if report.skipped_rows:
        examples = '; '.join(f'line {line}: {why}' for line, why in report.skipped_examples[:3])
        _say(f'warning: {path}: {report.skipped_rows} bad rows skipped ({examples})')
    for column, count in report.bad_cells.items():
        _say(f'warning: {path}: {count} cells of {column} are not numbers (read as missing)')
    return series


def normal_parts(series, min_rows: int):
    """The stretches of a labelled series without anomalies (each at least min_rows)."""
    if series.anomaly is None:
        return [series]
    from asv_autonomy.anomaly.metrics import events
    parts, start = [], 0
    for onset, end in events(series.anomaly) + [(len(series), len(series))]:
        if onset - start >= min_rows:
            parts.append(series.slice(start, onset))
        start = end
    return parts


def run_fit(args) -> int:
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    first = _read(args.csv[0], args.rate)
    rate = args.rate or 1.0 / first.dt
    series = [first] + [_read(path, rate) for path in args.csv[1:]]
    config = detector_config(args, rate)
    train = [part for s in series for part in normal_parts(s, config.rows_needed * 2)]
    labelled = [_with_generic_labels(s) for s in series
                if s.anomaly is not None and s.anomaly.any()]
    if not train:
        raise CliError('no normal stretch long enough to train on')
    hours = sum(len(s) for s in train) / rate / 3600
    _say(f'{len(series)} file(s), {len(first.channels)} channels at {rate:g} Hz, '
         f'{hours:.2f} h of normal data, {len(labelled)} file(s) with labelled anomalies')
    detector, _ = fit_detector(config, train, labelled, _say)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    detector.save(args.out)
    _say(f'wrote {args.out}')
    return 0


def _with_generic_labels(series):
    """A CSV names anomalies, not their kind: one fault type 'anomaly' for the head."""
    fault = np.where(series.anomaly, 'anomaly', '').astype(object)
    return type(series)(series.times, series.values, series.channels, series.anomaly, fault,
                        np.where(series.anomaly, 'unknown', '').astype(object))


def run_score(args) -> int:
    from asv_autonomy.anomaly.csv_io import write_scores
    from asv_autonomy.anomaly.detector import AnomalyDetector, CheckpointError
    from asv_autonomy.anomaly.metrics import evaluate

    try:
        detector = AnomalyDetector.load(args.model)
    except CheckpointError as error:
        raise CliError(str(error)) from None
    series = _read(args.csv, detector.config.rate_hz)
    missing = [c for c in detector.channels if c not in series.channels]
    if len(missing) == len(detector.channels):
        raise CliError(f'{args.csv} has none of the model\'s channels '
                       f'({", ".join(detector.channels)})')
    if missing:
        _say(f'{args.csv}: channels {", ".join(missing)} are missing (scored as missing data)')
    scores = detector.score(series)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_scores(args.out, scores.times, scores.score, scores.is_anomaly, scores.channel)
    alarms = int(scores.is_anomaly.sum())
    _say(f'{len(series)} steps scored, {alarms} anomalous; wrote {args.out}')
    if args.metrics:
        if series.anomaly is None:
            raise CliError(f'--metrics needs an anomaly column in {args.csv}')
        metrics = evaluate(series, scores)
        args.metrics.parent.mkdir(parents=True, exist_ok=True)
        args.metrics.write_text(json.dumps(strict_json(metrics), indent=2) + '\n')
        _say('metrics: ' + ', '.join(f'{k} {v:.3g}' for k, v in metrics.items()))
    return 0
