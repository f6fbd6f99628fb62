"""Time the MDP solvers on the simulated lake (``Workspace.from_world(World())``).

    .venv/bin/python bench/mdp_solve.py [--device cpu] [--json OUT]

Prints (and writes) JSON rows ``{"method", "device", "solve_s", "to_raster_s",
"iterations", "value_at_start"}`` for the kernel, finite-element and grid-value-iteration
solvers with their default configs, current: the simulator's default gyre scaled up, with
0.1 m/s spread. ``solve_s`` and ``to_raster_s`` (5 m raster, as the planner asks once per
goal) are the fastest of ``--repeats`` runs after a warm-up: the CPU is shared.

Note: with other processes busy, OpenMP's default spin-waiting can slow small torch ops by
100x on a 2-core machine; run with ``OMP_WAIT_POLICY=PASSIVE`` (or one torch thread).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from asv_autonomy.planning.flow import gyre
from asv_autonomy.planning.mdp import MDPProblem, solve
from asv_autonomy.planning.workspace import Workspace
from asv_autonomy.sim.world import World

START, GOAL = (-300.0, 100.0), (300.0, 300.0)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--methods', default='kernel,fem,grid')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', default=None, help='also write the rows to this file')
    args = parser.parse_args(argv)
    world = World()
    workspace = Workspace.from_world(world, device=args.device)
    flow = gyre((-50.0, 320.0), 250.0, 0.5, workspace.extent, 20.0, spread=0.1)
    problem = MDPProblem(workspace, flow, GOAL)
    rows = []
    for method in args.methods.split(','):
        solve(problem, method)  # warm-up (allocations, lazy imports)
        runs, raster_s = [], []
        for _ in range(args.repeats):
            runs.append(solve(problem, method))
            start = time.perf_counter()
            runs[-1].to_raster(5.0)
            raster_s.append(time.perf_counter() - start)
        values = runs[-1]
        rows.append({'method': method, 'device': args.device,
                     'solve_s': round(min(r.solve_s for r in runs), 4),
                     'to_raster_s': round(min(raster_s), 4), 'iterations': values.iterations,
                     'value_at_start': float(values.value(torch.tensor(START)))})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, 'w') as out:
            json.dump(rows, out, indent=1)
    return rows


if __name__ == '__main__':
    main()
