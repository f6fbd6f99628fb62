"""Whole-horizon CUDA graph of the MPPI rollout (planning/cuda_graph.py).

The graph's key is checked on the CPU; replaying the graph is compared with the step loop
where CUDA exists (the `device` machine), and skipped elsewhere.
"""
from dataclasses import replace

import numpy as np
import pytest
import torch

from asv_autonomy.planning.costs import CostWeights
from asv_autonomy.planning.cuda_graph import scene_signature
from asv_autonomy.planning.mppi import MPPI, MPPIConfig, Scene
from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.vessel import VesselParams

N, RES, ORIGIN = 41, 5.0, (-50.0, -100.0)
YS, XS = np.mgrid[0:N, 0:N] * RES + np.array(ORIGIN)[::-1, None, None]
DISTANCE = np.minimum(200.0 - np.maximum(np.abs(XS - 50.0), np.abs(YS)),
                      np.hypot(XS - 30.0, YS) - 8.0)
CONFIG = MPPIConfig(rollouts=512, horizon=25, dt=0.4, seed=5)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def make_scene(goal=(60.0, 0.0), current=0.2, device='cpu', origin=ORIGIN, **kw):
    ones = np.ones((N, N))
    return Scene(flow=Raster(np.stack([0 * ones, current * ones, 0.05 * ones]), origin, RES,
                             device),
                 distance=Raster(DISTANCE, origin, RES, device),
                 goal=torch.tensor(goal, device=device), clearance=1.5, **kw)


def test_signature_ignores_values_and_sees_what_the_capture_bakes_in():
    base = scene_signature(make_scene())
    assert scene_signature(make_scene(goal=(10.0, -20.0), current=0.6)) == base
    assert scene_signature(make_scene(origin=(-40.0, -100.0))) != base      # raster origin
    value = Raster(np.zeros((N, N)), ORIGIN, RES)
    assert scene_signature(make_scene(value=value)) != base                 # terminal term


def run(config, scenes, device):
    planner = MPPI(config, VesselParams(), CostWeights(), device)
    state = torch.tensor([0.0, 0.0, 0.3, 1.0, 0.0, 0.0])
    commands = []
    for scene in scenes:
        result = planner.optimise(state, torch.tensor([15.0, 15.0]), scene)
        commands.append(result.command.cpu())
        state = result.trajectory[1].cpu()
    return torch.stack(commands), planner


@needs_cuda
@pytest.mark.parametrize('compiled', [False, True])
def test_graph_replays_the_step_loop(compiled):
    """Same seed, same scenes (values change between calls, then a raster's shape): the
    graphed optimiser commands what the step loop commands, and re-captures only when the
    scene's signature changes."""
    scenes = [make_scene(device='cuda'), make_scene(goal=(0.0, 80.0), device='cuda'),
              make_scene(goal=(-40.0, 10.0), current=0.5, device='cuda'),
              make_scene(origin=(-45.0, -100.0), device='cuda')]
    config = replace(CONFIG, compile=compiled)
    graphed, planner = run(config, scenes, 'cuda')
    looped, _ = run(replace(config, cuda_graph=False), scenes, 'cuda')
    assert planner._graphed is not None and planner._graphed.captures == 2
    # A thicker drag (stuck) changes the RK4 sub-step count: a new capture.
    planner.optimise(torch.zeros(6), torch.zeros(2), make_scene(device='cuda', drag_scale=40.0))
    assert planner._graphed is not None and planner._graphed.captures == 3
    assert torch.allclose(graphed, looped, rtol=1e-4, atol=1e-3)


@needs_cuda
def test_graphed_cuda_agrees_with_cpu():
    scenes_cpu = [make_scene(), make_scene(goal=(0.0, 80.0))]
    scenes_cuda = [make_scene(device='cuda'), make_scene(goal=(0.0, 80.0), device='cuda')]
    config = replace(CONFIG, compile=False)
    # Different generators on the two devices: compare the deterministic part, the rollout
    # costs of the same controls.
    planner_cpu = MPPI(config, VesselParams(), CostWeights(), 'cpu')
    planner_cuda = MPPI(config, VesselParams(), CostWeights(), 'cuda')
    generator = torch.Generator().manual_seed(2)
    controls = torch.rand(config.horizon, config.rollouts, 2, generator=generator) * 80 - 35
    disturbance = torch.randn(config.rollouts, 2, generator=generator)
    state, thrust = torch.tensor([0.0, 0.0, 0.3, 1.0, 0.0, 0.0]), torch.tensor([10.0, 10.0])
    with torch.inference_mode():
        for scene_cpu, scene_cuda in zip(scenes_cpu, scenes_cuda):
            cpu, _ = planner_cpu.rollout_costs(state, thrust, controls, disturbance, scene_cpu)
            cuda, _ = planner_cuda._rollout(state.cuda(), thrust.cuda(), controls.cuda(),
                                            disturbance.cuda(), scene_cuda)
            assert torch.allclose(cpu, cuda.cpu(), rtol=1e-4, atol=1e-3)
    assert planner_cuda._graphed.captures == 1
