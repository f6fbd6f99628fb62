"""Kernel and finite-element solvers against the grid value iteration in a strong, sheared
current: a straight channel symmetric about its centre line, flowing against the boat
faster than its top speed in mid-channel and slowly near the banks (the ``river``
scenario in small). The grid value iteration is the reference (semi-Lagrangian, no
function-space smoothing). Before the fixes the finite elements' isotropic upwind diffusion
smeared the core's cost over the banks (river: 140 % mean error) and the kernel solver was
asymmetric (supporting states off-centre, policy iteration cut off; river: 28 %, 16 %
asymmetry). Measured here: kernel ~3 %, FEM ~6 % mean relative error (bound 15 %); kernel
mirror-symmetric, FEM ~5 % asymmetric (see ASYMMETRY).
"""
import numpy as np
import pytest
import torch

from asv_autonomy.planning.flow import FlowField
from asv_autonomy.planning.mdp import (FEMConfig, GridConfig, KernelConfig, MDPConfig,
                                       MDPProblem, solve)
from asv_autonomy.planning.workspace import Workspace

HALF_WIDTH = 62.5  # [m] banks between the 5 m cells: a mask symmetric about y = 0
GOAL = (540.0, 0.0)
# Mean |V(x, y) - V(x, -y)| / mean V: the kernel layout is mirror-symmetric (~0); the
# finite elements' policy iteration settles ~5 % asymmetric here (not yet explained: Q1
# elements instead of P1 triangles did the same; it stops at max_iterations).
ASYMMETRY = {'kernel': 0.02, 'fem': 0.08}
CONFIGS = {'kernel': KernelConfig(spacing=20.0), 'fem': FEMConfig(spacing=15.0),
           'grid': GridConfig(spacing=10.0)}


def _channel() -> Workspace:
    """600 m long, 125 m wide, along x, centred on y = 0 (mask built directly: a
    rasterised polygon came out a few metres off-centre)."""
    x, y = np.meshgrid(np.arange(-20.0, 621.0, 5.0), np.arange(-80.0, 81.0, 5.0))
    return Workspace((np.abs(y) < HALF_WIDTH) & (x >= 0.0) & (x <= 600.0), (-20.0, -80.0), 5.0)


def _flood(x, y):
    """[m/s] westward: 0.2 m/s at the banks, 2.2 m/s in a Gaussian core 25 m wide."""
    return -(0.2 + 2.0 * np.exp(-0.5 * (y / 25.0) ** 2)), np.zeros_like(y)


@pytest.fixture(scope='module')
def river():
    workspace = _channel()
    flow = FlowField.from_function(_flood, workspace.extent, 5.0, spread=0.1)
    problem = MDPProblem(workspace, flow, GOAL, config=MDPConfig(goal_radius=15.0))
    return problem, {m: solve(problem, m, c) for m, c in CONFIGS.items()}


def _probe():
    xs, ys = torch.arange(40.0, 480.0, 40.0), torch.arange(-50.0, 51.0, 10.0)
    return torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1).reshape(-1, 2)


def test_reference_prefers_the_slow_banks(river):
    problem, solved = river
    across = torch.stack([torch.full((11,), 150.0), torch.arange(-50.0, 51.0, 10.0)], -1)
    value = solved['grid'].value(across)
    assert value[5] > value[0] + problem.step_cost[1]       # mid-channel costs more
    assert value[5] > value[-1] + problem.step_cost[1]
    assert (value - value.flip(0)).abs().max() < 0.01 * value.mean()


@pytest.mark.parametrize('method', ['kernel', 'fem'])
def test_solver_agrees_with_value_iteration_and_is_symmetric(river, method):
    problem, solved = river
    xy = _probe()
    xy = xy[problem.is_free(xy)]
    reference = solved['grid'].value(xy)
    value = solved[method].value(xy)
    error = float((value - reference).abs().mean() / reference.mean())
    assert error < 0.15, error
    mirrored = solved[method].value(xy * torch.tensor([1.0, -1.0]))
    asymmetry = float((value - mirrored).abs().mean() / reference.mean())
    assert asymmetry < ASYMMETRY[method], asymmetry
    # Mid-channel the greedy heading turns towards a bank, not straight into the core (the
    # nearer bank for the symmetric kernel solver; the FEM's favours one bank).
    heading, _ = solved[method].policy(torch.tensor([[150.0, 5.0], [150.0, -5.0]]))
    assert (heading.abs() > 0.3).all(), heading
    if method == 'kernel':
        assert float(heading[0]) > 0.3 and float(heading[1]) < -0.3, heading
