"""The pytorch-mppi peer adapter runs the shared dynamics and costs behind MPPI's API."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from asv_autonomy.planning.compute import benchmark_scene
from asv_autonomy.planning.costs import CostWeights
from asv_autonomy.planning.mppi import MPPI, MPPIConfig
from asv_autonomy.planning.peers import PytorchMPPI, make_optimiser
from asv_autonomy.planning.vessel import VesselParams

pytest.importorskip('pytorch_mppi')
P = VesselParams()
CONFIG = MPPIConfig(rollouts=64, horizon=15, dt=0.4, compile=False)


def test_peer_returns_a_command_within_limits_and_heads_for_the_goal():
    torch.manual_seed(0)                              # pytorch-mppi samples from the global RNG
    peer = PytorchMPPI(CONFIG, P, CostWeights())
    scene = benchmark_scene()                         # goal 150 m east, island on the way
    state, thrust = torch.zeros(6), torch.zeros(2)
    for _ in range(15):
        result = peer.optimise(state, thrust, scene)
        assert result.command.shape == (2,) and result.controls.shape == (15, 2)
        assert result.trajectory.shape == (16, 6) and np.isfinite(result.cost)
        assert (result.controls >= -P.max_thrust_reverse).all()
        assert (result.controls <= P.max_thrust_forward).all()
        assert torch.equal(result.command, result.controls[0])
        state, thrust = result.trajectory[1], result.command     # follow the plan
    assert float(state[0]) > 2.0                      # made way east, towards the goal


def test_peer_and_asv_costs_agree_on_the_same_rollouts():
    peer = PytorchMPPI(replace(CONFIG, rollouts=4, horizon=5), P, CostWeights())
    ours = MPPI(replace(CONFIG, rollouts=4, horizon=5), P, CostWeights())
    scene = benchmark_scene()
    controls = torch.tensor([20.0, 30.0]).expand(5, 4, 2)
    disturbance = torch.zeros(4, 2)
    state, thrust = torch.tensor([70.0, -45.0, 1.0, 1.0, 0.0, 0.0]), torch.tensor([5.0, 5.0])
    want, _ = ours.rollout_costs(state, thrust, controls, disturbance, scene)
    # The peer's own loop, with its control-cost term switched off (zero nominal).
    peer._scene, peer._mppi.state = scene, torch.cat([state, thrust, torch.zeros(2)]).expand(4, 10)
    got, _, _ = peer._mppi._compute_rollout_costs(controls.transpose(0, 1))
    assert torch.allclose(got, want, rtol=1e-5)


def test_unknown_optimisers_are_refused():
    assert isinstance(make_optimiser('asv', CONFIG, P, CostWeights()), MPPI)
    with pytest.raises(ValueError, match='pytorch-mppi'):
        make_optimiser('cem', CONFIG, P, CostWeights())
