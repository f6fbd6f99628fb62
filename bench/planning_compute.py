#!/usr/bin/env python3
"""Optimisations per second of the asv MPPI and the pytorch-mppi peer, side by side.

    .venv/bin/python bench/planning_compute.py [--device cpu] [--repeats 10] [--threads N]
                                               [--json OUT]

Runs 1024 x 50 and 4096 x 50 (plus 100000 x 100 on cuda) for each planner on the same
vessel model, costs and scene (planning/compute.py), prints JSON rows
``{"planner", "device", "rollouts", "horizon", "hz", "solve_s", "warmup_s"}``.
``--threads`` sets torch's CPU threads for the run (default: torch's own choice). On a
CPU shared with other busy processes one thread is often much faster: a parallel kernel
waits for its slowest thread, and a descheduled thread costs a whole time slice.
"""
import argparse
import json
import sys

import torch

from asv_autonomy.planning.compute import compute_rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--planners', default='asv,pytorch-mppi')
    parser.add_argument('--sizes', default=None,
                        help='comma-separated KxT, e.g. 1024x50,4096x50 (default per device)')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--json', default=None, help='also write the rows to this file')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = None
    if args.sizes:
        sizes = [tuple(int(n) for n in size.split('x')) for size in args.sizes.split(',')]
    rows = compute_rows(args.planners.split(','), args.device, sizes, args.repeats)
    text = json.dumps({'threads': torch.get_num_threads(), 'compute': rows}, indent=2)
    print(text)
    if args.json:
        with open(args.json, 'w') as handle:
            handle.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
