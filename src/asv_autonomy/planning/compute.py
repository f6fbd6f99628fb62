"""Compute measurement of the sampling-based optimisers: optimisations per second at
K rollouts x T steps on a device.

One optimisation = sample noise, roll out K x T, costs, weights, update the nominal
(:meth:`MPPI.optimise`). The first calls (compilation, caches) are timed separately as
``warmup_s``; ``solve_s`` is the median of the timed calls and ``hz = 1 / solve_s``.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from .costs import CostWeights
from .mppi import MPPIConfig
from .peers import make_optimiser
from .raster import Raster
from .rollout import Scene
from .vessel import VesselParams


def benchmark_scene(device: torch.device | str = 'cpu', half_width: float = 300.0,
                    resolution: float = 5.0) -> Scene:
    """A square lake of ``2 * half_width`` [m] with a round island (radius 40 m) 80 m
    east of the start at the origin, a 0.3 m/s eastward current with 0.1 m/s spread and
    the goal 150 m east: every cost term and raster lookup of a real scene is exercised.
    """
    n = int(round(2 * half_width / resolution)) + 1
    ys, xs = np.mgrid[0:n, 0:n] * resolution - half_width
    shore = half_width - np.maximum(np.abs(xs), np.abs(ys))
    island = np.hypot(xs - 80.0, ys) - 40.0
    ones = np.ones((n, n))
    origin = (-half_width, -half_width)
    return Scene(flow=Raster(np.stack([0.3 * ones, 0 * ones, 0.1 * ones]), origin, resolution,
                             device),
                 distance=Raster(np.minimum(shore, island), origin, resolution, device),
                 goal=torch.tensor([150.0, 0.0], device=device), clearance=1.5)


def measure(planner: str, rollouts: int, horizon: int, device: torch.device | str = 'cpu',
            repeats: int = 10, warmup: int = 2, scene: Scene | None = None,
            config: MPPIConfig | None = None) -> dict:
    """Time ``repeats`` optimisations of ``planner`` (see :func:`.peers.make_optimiser`).

    Args:
        planner: 'asv' or 'pytorch-mppi'.
        rollouts, horizon: K x T.
        device: where it runs.
        repeats: timed optimisations; warmup: untimed ones before (the first compiles).
        scene: what to plan in (default :func:`benchmark_scene`).
        config: base settings (rollouts and horizon are replaced).

    Returns:
        ``{"planner", "device", "rollouts", "horizon", "hz", "solve_s", "warmup_s"}``.
    """
    device = torch.device(device)
    config = dataclasses.replace(config or MPPIConfig(), rollouts=rollouts, horizon=horizon)
    if planner == 'pytorch-mppi':
        config = dataclasses.replace(config, compile=False)   # the package as shipped
    optimiser = make_optimiser(planner, config, VesselParams(), CostWeights(), device)
    scene = scene or benchmark_scene(device)
    state = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0], device=device)
    thrust = torch.tensor([20.0, 20.0], device=device)
    start = time.perf_counter()
    for _ in range(max(1, warmup)):
        optimiser.optimise(state, thrust, scene)
    warmup_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        optimiser.optimise(state, thrust, scene)   # returns a float cost: synchronises
        times.append(time.perf_counter() - start)
    solve_s = float(np.median(times))
    return {'planner': planner, 'device': device.type, 'rollouts': rollouts,
            'horizon': horizon, 'hz': 1.0 / solve_s if solve_s > 0 else math.inf,
            'solve_s': solve_s, 'warmup_s': warmup_s}


def compute_rows(planners=('asv', 'pytorch-mppi'), device: torch.device | str = 'cpu',
                 sizes=None, repeats: int = 10) -> list[dict]:
    """:func:`measure` for every planner at every (K, T) size: the benchmark's
    ``compute`` section (default sizes: 1024 x 50 and 4096 x 50, plus 100000 x 100 on
    CUDA)."""
    device = torch.device(device)
    if sizes is None:
        sizes = [(1024, 50), (4096, 50)] + ([(100_000, 100)] if device.type == 'cuda' else [])
    return [measure(planner, k, t, device, repeats) for k, t in sizes for planner in planners]
