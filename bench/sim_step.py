"""Benchmark of one built-in simulator step (dt 0.02 s, all sensors, no camera rendering).

Prints JSON: mean/median/p99 wall time of ``Simulator.step`` [us] while the boat drives a
constant-thrust curve. The step is pure numpy/Python (torch is not even imported).
Usage: python bench/sim_step.py [--steps N]
"""
import argparse
import json
import time

import numpy as np

from asv_autonomy.sim.simulator import SimConfig, Simulator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=5000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    sim = Simulator(SimConfig())
    setup = time.perf_counter() - t0
    times = np.empty(args.steps)
    for i in range(args.steps):
        sim.command_thrust(30.0, 25.0)
        start = time.perf_counter()
        sim.step()
        times[i] = time.perf_counter() - start
    us = times * 1e6
    print(json.dumps({
        'steps': args.steps, 'dt_s': sim.config.dt, 'setup_s': round(setup, 3),
        'step_mean_us': round(float(us.mean()), 1),
        'step_median_us': round(float(np.median(us)), 1),
        'step_p99_us': round(float(np.percentile(us, 99)), 1),
        'max_real_time_factor': round(sim.config.dt / float(times.mean()), 1),
    }))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
