"""`asv train segmentation`: fit the navigable-space polyline VAE without pixel labels.

  asv train segmentation [--images DIR] [--sim-frames N] [--labelled DIR] [--masks DIR]
                         [--steps N] [--seed S] [--batch B] [--init PATH] [--threads T]
                         --out model.pt

Simulated frames are rendered first (look seeds 1000-1999 by default; seeds 0-99 are held
out for evaluation), real unlabelled frames from --images (sorted by name: consecutive
files are consecutive frames, used for the temporal term) are mixed in, and --labelled DIR
(DIR/images + DIR/masks, same stems, non-zero = water) adds the optional few-label loss;
so does --masks DIR for the few --images frames that have a mask of their stem there (a
handful of labelled frames of a new environment, e.g. bench/labels/river/train).
Progress (step, loss terms, throughput) goes to stderr; the checkpoint holds the weights,
the network config and metadata (command, seed, steps, data).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from asv_autonomy.cli.common import CliError


def register(subparsers) -> None:
    parser = subparsers.add_parser('train', help='train the learned models',
                                   description=__doc__.splitlines()[0])
    targets = parser.add_subparsers(dest='train_target', required=True, metavar='TARGET')
    seg = targets.add_parser('segmentation', help='navigable-space polyline VAE (unsupervised)',
                             description=__doc__.split('\n\n', 2)[2],
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    seg.add_argument('--images', type=Path, default=None, metavar='DIR',
                     help='real unlabelled frames (png/jpg), in temporal order by name')
    seg.add_argument('--sim-frames', type=int, default=1200, metavar='N',
                     help='simulated frames to render for training (default %(default)s)')
    seg.add_argument('--sim-seeds', default='1000-1999', metavar='A-B',
                     help='look seeds of the simulated frames (default %(default)s; never '
                          'overlap the held-out 0-99)')
    seg.add_argument('--labelled', type=Path, default=None, metavar='DIR',
                     help='optional labelled frames: DIR/images and DIR/masks')
    seg.add_argument('--masks', type=Path, default=None, metavar='DIR',
                     help='optional masks (non-zero = water) of a few --images frames, same '
                     'stems: those frames also get the few-label loss')
    seg.add_argument('--steps', type=int, default=1500, metavar='N',
                     help='optimisation steps (default %(default)s)')
    seg.add_argument('--batch', type=int, default=16, metavar='B',
                     help='images per step (default %(default)s)')
    seg.add_argument('--lr', type=float, default=2e-3, help='learning rate (default %(default)s)')
    seg.add_argument('--waterline-band', type=float, default=None, metavar='H',
                     help='thickness (image heights) of the shore\'s and the water\'s bands '
                     'along the waterline in the objective; 0 = none, for a first, coarse '
                     'stage (default: TrainConfig.waterline_fringe, 0.04)')
    seg.add_argument('--seed', type=int, default=0, metavar='S',
                     help='seed of weights, data and augmentation (default %(default)s)')
    seg.add_argument('--init', type=Path, default=None, metavar='PATH',
                     help='start from this checkpoint (fine-tuning)')
    seg.add_argument('--threads', type=int, default=1, metavar='T',
                     help='torch CPU threads (default %(default)s)')
    seg.add_argument('--out', type=Path, required=True, metavar='PATH',
                     help='checkpoint to write (.pt)')
    seg.set_defaults(func=run_segmentation)
    register_anomaly(targets)


def register_anomaly(targets) -> None:
    from asv_autonomy.cli.anomaly import add_training_options
    parser = targets.add_parser(
        'anomaly', help='graph-network anomaly detector on bags (contrastive, semi-supervised)',
        description=ANOMALY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--bags', type=Path, nargs='+', required=True, metavar='DIR',
                        help='unlabelled logs of normal operation: bags, or folders of bags '
                             '(e.g. `asv sim faults --faults-per-run 0` datasets)')
    parser.add_argument('--labelled', type=Path, nargs='*', default=[], metavar='DIR',
                        help='a few labelled missions (`asv sim faults` folders: labels.json '
                             'or /sim/faults) for the fault-type head')
    parser.add_argument('--rate', type=float, default=10.0, metavar='HZ',
                        help='grid rate (default %(default)s)')
    add_training_options(parser)
    parser.add_argument('--out', type=Path, required=True, metavar='model.pt')
    parser.set_defaults(func=run_anomaly)


ANOMALY_HELP = """Train the anomaly detector of the boat's channels (anomaly/channels.py) on bags.

  asv train anomaly --bags DIR... [--labelled DIR...] [--epochs N] [--seed S] --out model.pt

--bags are logs of normal operation (the last quarter of the bags, or of each bag when
there are fewer than three, calibrates the alarm threshold to --false-alarms-per-hour);
labelled anomalies in them, if any, are cut out. --labelled
missions train the head that names the fault type (semi-supervision). The thrust
commands feed the network but raise no alarm themselves (they jump at every waypoint; a
thruster at fault shows in its residual). Progress goes to stderr; the checkpoint loads
with `torch.load(weights_only=True)`."""


def _bag_paths(folder: Path) -> list[Path]:
    """A bag (metadata.yaml, .mcap, .db3) or every bag below a folder, sorted."""
    if folder.is_file() or (folder / 'metadata.yaml').is_file():
        return [folder]
    bags = sorted({p.parent for p in folder.rglob('metadata.yaml')})
    if not bags:
        raise CliError(f'{folder}: no bag in it (no metadata.yaml)')
    return bags


def _read_bags(folders, rate_hz: float) -> list:
    from tqdm import tqdm

    from asv_autonomy.anomaly.bag_channels import series_from_bag
    from asv_autonomy.bagio import BagError

    paths = [bag for folder in folders for bag in _bag_paths(folder)]
    series = []
    for bag in tqdm(paths, unit='bag', file=sys.stderr, desc='reading bags', dynamic_ncols=True):
        try:
            series.append(series_from_bag(bag, rate_hz)[0])
        except (BagError, ValueError) as error:
            raise CliError(f'{bag}: {error}') from None
    return series


def run_anomaly(args) -> int:
    import dataclasses

    import torch

    from asv_autonomy.cli.anomaly import normal_parts, detector_config, fit_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    for folder in [*args.bags, *args.labelled]:
        if not folder.exists():
            raise CliError(f'{folder}: no such file or folder')
    from asv_autonomy.anomaly.channels import BOAT_LONG_WINDOW_CHANNELS, BOAT_UNSCORED_CHANNELS
    config = dataclasses.replace(detector_config(args, args.rate),
                                 unscored_channels=BOAT_UNSCORED_CHANNELS,
                                 long_window_channels=BOAT_LONG_WINDOW_CHANNELS,
                                 threshold_on_training=True)
    logs = _read_bags(args.bags, args.rate)
    train = [part for s in logs for part in normal_parts(s, config.rows_needed * 2)]
    labelled = _read_bags(args.labelled, args.rate) if args.labelled else []
    hours = sum(len(s) for s in train) / args.rate / 3600
    _say(f'{len(logs)} bag(s): {hours:.2f} h of normal operation; {len(labelled)} labelled')
    detector, _ = fit_detector(config, train, labelled, _say)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    detector.save(args.out)
    _say(f'wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)')
    return 0


def _seed_range(text: str) -> tuple[int, int]:
    try:
        first, last = (int(v) for v in text.split('-'))
    except ValueError:
        raise CliError(f'--sim-seeds must be A-B (e.g. 1000-1999), got {text!r}') from None
    if not 0 <= first <= last:
        raise CliError(f'--sim-seeds must be A-B with 0 <= A <= B, got {text!r}')
    if first <= 99:
        print('asv train: warning: --sim-seeds overlaps the held-out evaluation seeds 0-99',
              file=sys.stderr)
    return first, last + 1


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_segmentation(args) -> int:
    import numpy as np
    import torch

    from asv_autonomy.perception.model import SegmenterConfig
    from asv_autonomy.perception.segmenter import CheckpointError, Segmenter
    from asv_autonomy.perception.training import (TrainConfig, TrainData, empty_data,
                                                  load_folder, load_labelled, load_masked,
                                                  render_sim_frames, train)

    if args.masks is not None and args.images is None:
        raise CliError('--masks labels frames of --images: give --images too')
    if args.steps < 0 or args.sim_frames < 0 or args.batch < 1 or args.threads < 1:
        raise CliError('--steps and --sim-frames must be >= 0, --batch and --threads >= 1')
    if args.waterline_band is not None and not args.waterline_band >= 0.0:
        raise CliError(f'--waterline-band must be >= 0, got {args.waterline_band}')
    seeds = _seed_range(args.sim_seeds)
    if args.out.suffix == '' or args.out.is_dir():
        raise CliError(f'--out must be a file path (e.g. model.pt), got {args.out}')
    torch.set_num_threads(args.threads)
    model = None
    config = SegmenterConfig()
    if args.init is not None:
        try:
            start = Segmenter.load(args.init)
        except CheckpointError as error:
            raise CliError(str(error)) from None
        model, config = start.model, start.config
    width, height = config.input_width, config.input_height
    data = empty_data(width, height)
    try:
        real = load_folder(args.images, width, height) if args.images else data.real
        labelled, labels = (load_labelled(args.labelled, width, height) if args.labelled
                            else (data.labelled, data.labels))
        masked, masks = (load_masked(args.images, args.masks, width, height) if args.masks
                         else (data.labelled, data.labels))
    except (OSError, ValueError) as error:
        raise CliError(str(error)) from None
    if args.images:
        _say(f'real frames: {len(real)} from {args.images}')
    if args.labelled:
        _say(f'labelled frames: {len(labelled)} from {args.labelled}')
    if args.masks:
        _say(f'labelled frames: {len(masked)} of --images with masks in {args.masks}')
    labelled, labels = np.concatenate([labelled, masked]), np.concatenate([labels, masks])
    sim = data.sim
    if args.sim_frames:
        t0 = time.monotonic()

        def rendered(done, total):
            if done == total or done % 50 == 0:
                rate = done / max(time.monotonic() - t0, 1e-9)
                _say(f'render {done}/{total} simulated frames ({rate:.1f} frames/s)')

        sim, _ = render_sim_frames(args.sim_frames, seeds, TrainConfig.frames_per_seed,
                                   width, height, seed=args.seed, progress=rendered)
    if not (len(sim) or len(real) or len(labelled)):
        raise CliError('no training data: give --sim-frames > 0, --images or --labelled')
    band = {} if args.waterline_band is None else {'waterline_fringe': args.waterline_band}
    tc = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                     sim_frames=args.sim_frames, sim_seeds=seeds, threads=args.threads, **band)
    last = {}

    def progress(report):
        last.update(report)
        eta = (report['steps'] - report['step']) * tc.batch / max(report['images_per_s'], 1e-9)
        _say(f"step {report['step']}/{report['steps']}  loss {report['loss']:.4f}  "
             f"region {report['region']:.4f}  kl {report['kl']:.3f}  "
             f"smooth {report['smooth']:.4f}  temporal {report['temporal']:.4f}  "
             f"label {report['label']:.4f}  {report['images_per_s']:.1f} img/s  "
             f"eta {eta:.0f} s")

    start = time.monotonic()
    model = train(TrainData(sim, real, labelled, labels), config, tc, model=model,
                  progress=progress)
    segmenter = Segmenter(model, model.config)
    command = 'asv train segmentation ' + ' '.join(
        shlex.quote(a) for a in _argv_of(args))
    metadata = {'command': command, 'seed': args.seed, 'steps': args.steps,
                'batch': args.batch, 'lr': args.lr, 'sim_frames': int(len(sim)),
                'sim_seeds': [seeds[0], seeds[1] - 1], 'real_frames': int(len(real)),
                'labelled_frames': int(len(labelled)),
                'init': str(args.init) if args.init else '',
                'final_loss': float(last.get('loss', float('nan'))),
                'train_seconds': round(time.monotonic() - start, 1),
                'torch': str(torch.__version__), 'numpy': str(np.__version__)}
    try:
        segmenter.save(args.out, metadata)
    except OSError as error:
        raise CliError(f'cannot write {args.out}: {error}') from None
    _say(f'wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)')
    return 0


def _argv_of(args) -> list[str]:
    """The options of this run as command-line words (recorded in the checkpoint)."""
    words = []
    if args.images:
        words += ['--images', str(args.images)]
    words += ['--sim-frames', str(args.sim_frames), '--sim-seeds', args.sim_seeds]
    if args.labelled:
        words += ['--labelled', str(args.labelled)]
    if args.masks:
        words += ['--masks', str(args.masks)]
    words += ['--steps', str(args.steps), '--batch', str(args.batch), '--lr', str(args.lr),
              '--seed', str(args.seed)]
    if args.waterline_band is not None:
        words += ['--waterline-band', str(args.waterline_band)]
    if args.init:
        words += ['--init', str(args.init)]
    words += ['--out', str(args.out)]
    return words
