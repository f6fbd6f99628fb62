"""Replay benchmark (issue 7 goal): a real NMEA log -> bag -> `asv replay` through
localization and mapping -> bathymetry map picture, and how much faster than real time.

    tools/isolated .venv/bin/python bench/replay.py [--log ../shared/data/nmea/plaka.log]
        [--rate 40] [--out runs/bench/replay] [--json runs/bench/replay.json]

Writes the converted bag, the replay's run folder (summary.json, report.png) and a JSON with
the conversion time, the achieved replay factor (bag seconds per wall second while the bag
played), node exit codes, dropped inputs, the share of soundings placed on the map and the
map's residual at the soundings (a consistency check: the log has no ground truth).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'src'))

from asv_autonomy import bagio  # noqa: E402
from asv_autonomy.cli.report import _map_at, load_run  # noqa: E402

ASV = [sys.executable, '-m', 'asv_autonomy.cli.main']
DRAFT_OFFSET_M = 0.1   # config/autonomy.yaml value_offsets for bathymetry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--log', type=Path, default=REPO.parent / 'shared/data/nmea/plaka.log')
    parser.add_argument('--rate', type=float, default=40.0)
    parser.add_argument('--out', type=Path, default=REPO / 'runs/bench/replay')
    parser.add_argument('--json', type=Path, default=REPO / 'runs/bench/replay.json')
    args = parser.parse_args()
    if not args.log.is_file():
        print(f'no log at {args.log} (the real data folder is absent)', file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    bag = args.out / f'{args.log.stem}_bag'
    shutil.rmtree(bag, ignore_errors=True)

    start = time.monotonic()
    subprocess.run(ASV + ['bag', 'from-nmea', str(args.log), '-o', str(bag)], check=True)
    conversion_s = time.monotonic() - start
    info = bagio.bag_info(bag)
    start = time.monotonic()
    subprocess.run(ASV + ['replay', str(bag), '--rate', str(args.rate), '--out',
                          str(args.out / 'runs')], check=True)
    replay_wall_s = time.monotonic() - start
    run_dir = (args.out / 'runs' / 'latest').resolve()
    summary = json.loads((run_dir / 'summary.json').read_text())

    run = load_run(run_dir / 'bag')
    t, depth = run.readings['bathymetry'].T
    order = np.argsort(run.estimate[:, 0])
    est = run.estimate[order]
    inside = (t >= est[0, 0]) & (t <= est[-1, 0])
    x = np.interp(t[inside], est[:, 0], est[:, 1])
    y = np.interp(t[inside], est[:, 0], est[:, 2])
    mapped = _map_at(run.maps['bathymetry'], x, y)
    residual = mapped - (depth[inside] + DRAFT_OFFSET_M)
    ok = np.isfinite(residual)
    result = {
        'log': str(args.log), 'rate_requested': args.rate,
        'bag_duration_s': info['duration_ns'] / 1e9,
        'messages': {topic: t['count'] for topic, t in info['topics'].items()},
        'conversion_s': round(conversion_s, 2),
        'replay_factor_achieved': summary['real_time_factor'],
        'replay_wall_s': round(replay_wall_s, 1),
        'replay_factor_whole_command': round(info['duration_ns'] / 1e9 / replay_wall_s, 1),
        'distance_m': summary['distance_m'],
        'nodes': summary['nodes'], 'dropped_inputs': summary['dropped_inputs'],
        'soundings_within_odometry': int(inside.sum()), 'soundings': len(t),
        'map_residual_rmse_m': round(float(np.sqrt(np.mean(residual[ok] ** 2))), 3),
        'map_residual_p95_m': round(float(np.percentile(np.abs(residual[ok]), 95)), 3),
        'map_update_ms_p95': summary['map_update_ms_p95'],
        'report': str(run_dir / 'report.png'),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
