"""Time of predicting mean and std on 10,000 cells (a 100 x 100 grid) with the streaming
GP mapper, fused (compiled) covariance against the eager one, per kernel, inducing budget
and thread count. JSON on stdout.

    .venv/bin/python bench/mapping_predict.py [--repeats 7]

The mapper streams 6,000 samples of a smooth synthetic field over a 400 m square (enough
to fill the inducing budget); the timings are wall clock on this machine: run it quiet.
"""
import argparse
import json
import sys
import time

import numpy as np

from asv_autonomy.mapping import kernels
from asv_autonomy.mapping.gp import GPMapper, GPMapperConfig


def filled_mapper(kernel: str, budget: int, threads: int) -> GPMapper:
    rng = np.random.default_rng(0)
    mapper = GPMapper(GPMapperConfig(kernel=kernel, max_inducing=budget,
                                     inducing_spacing=400.0 / np.sqrt(budget) / 1.5,
                                     num_threads=threads))
    xy = rng.uniform(0.0, 400.0, (6000, 2))
    y = np.sin(xy[:, 0] / 40.0) + np.cos(xy[:, 1] / 30.0) + 0.05 * rng.normal(size=6000)
    for i in range(0, 6000, 10):
        mapper.update(xy[i:i + 10], float(i), y[i:i + 10])
    return mapper


def median_ms(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=7)
    args = parser.parse_args()
    grid = np.stack(np.meshgrid(np.linspace(0, 400, 100), np.linspace(0, 400, 100)),
                    -1).reshape(-1, 2)
    fused_from = kernels.FUSED_MIN_ENTRIES
    rows = []
    for kernel in ('attentive', 'rbf'):
        for budget in (256,):
            for threads in (1, 2):
                mapper = filled_mapper(kernel, budget, threads)
                row = {'kernel': kernel, 'inducing': len(mapper.inducing_points),
                       'threads': threads}
                for name, threshold in (('fused_ms', fused_from), ('eager_ms', 10 ** 15)):
                    kernels.FUSED_MIN_ENTRIES = threshold
                    row[name] = round(median_ms(lambda: mapper.predict(grid), args.repeats), 2)
                kernels.FUSED_MIN_ENTRIES = fused_from
                print(row, file=sys.stderr, flush=True)
                rows.append(row)
    print(json.dumps({'predict_10k': rows}, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
