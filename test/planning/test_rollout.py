"""Batched rollout dynamics (planning/rollout.py) against the shared vessel model."""
import numpy as np
import pytest
import torch

from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.rollout import (Scene, rollout, rollout_step, sample_current,
                                           stable_substeps)
from asv_autonomy.planning.vessel import VesselParams, step

P = VesselParams()
ONES = np.ones((6, 6))


def scene(u=0.3, v=-0.2, spread=0.1, **kw):
    return Scene(flow=Raster(np.stack([u * ONES, v * ONES, spread * ONES]), (-50.0, -50.0), 20.0),
                 distance=Raster(100.0 * ONES, (-50.0, -50.0), 20.0),
                 goal=torch.tensor([10.0, 0.0]), **kw)


def test_current_is_mean_plus_spread_times_disturbance():
    xy = torch.tensor([[0.0, 0.0], [10.0, -5.0]])
    got = sample_current(scene().flow, xy, torch.tensor([[1.0, -2.0], [0.0, 0.0]]))
    assert torch.allclose(got, torch.tensor([[0.4, -0.4], [0.3, -0.2]]), atol=1e-6)


def test_step_matches_the_vessel_model_with_the_rollout_current():
    state = torch.tensor([[0.0, 0.0, 0.3, 1.0, 0.1, 0.05], [5.0, 5.0, -1.0, 0.5, 0.0, 0.0]])
    thrust = torch.tensor([[10.0, 20.0], [0.0, 0.0]])
    command = torch.tensor([[45.0, 30.0], [-35.0, 45.0]])
    disturbance = torch.tensor([[1.0, 0.5], [-1.0, 0.0]])
    efficiency = torch.tensor([1.0, 0.5])
    s = scene(thrust_efficiency=efficiency, drag_scale=1.5)
    got_state, got_thrust = rollout_step(state, thrust, command, disturbance, s, 0.2, P)
    current = torch.tensor([[0.4, -0.15], [0.2, -0.2]])
    want_state, want_thrust = step(state, thrust, command, current, (0.0, 0.0), 0.2, P,
                                   efficiency, 1.5)
    assert torch.allclose(got_state, want_state, atol=1e-6)
    assert torch.allclose(got_thrust, want_thrust, atol=1e-6)


def test_a_drifting_boat_follows_the_current():
    s = scene(u=0.5, v=0.0, spread=0.0)
    states, _ = rollout(torch.zeros(6), torch.zeros(2), torch.zeros(1, 100, 2), torch.zeros(1, 2),
                        s, 0.2, P)
    assert states.shape == (1, 101, 6)
    # Starting at rest the hull accelerates to the current's speed, then drifts with it.
    assert float(states[0, -1, 3]) == pytest.approx(0.5, abs=0.02)
    assert abs(float(states[0, -1, 1])) < 1e-4
    assert 7.0 < float(states[0, -1, 0]) < 10.0


def test_substeps_keep_heavy_drag_stable():
    assert stable_substeps(0.2, 1.0) == 1
    assert stable_substeps(0.5, 1.0) == 3
    assert stable_substeps(0.2, 5.0) == 5
    heavy = scene(drag_scale=8.0)
    controls = torch.full((1, 50, 2), 45.0)
    states, _ = rollout(torch.zeros(6), torch.zeros(2), controls, torch.zeros(1, 2), heavy, 0.4, P)
    assert torch.isfinite(states).all()
    # Fine sub-stepping of the same motion agrees with the stabilised coarse rollout.
    fine, _ = rollout(torch.zeros(6), torch.zeros(2), controls.repeat_interleave(8, dim=1),
                      torch.zeros(1, 2), heavy, 0.05, P)
    assert torch.allclose(states[0, -1], fine[0, -1], atol=0.05)


def test_substeps_keep_a_reversing_turning_boat_stable():
    """Among the stiffest states random thrust reaches: backing at 1.2 m/s while turning
    at 1.5 rad/s. Plain RK4 steps of 0.5 s diverge from there within 5 steps (the rollouts
    used them until a NaN rollout took an optimisation down); sub-stepped, they do not."""
    start = torch.tensor([0.0, 0.0, 0.0, -1.2, 0.0, 1.5])
    coasting = torch.zeros(1, 10, 2)
    unstepped = start[None], torch.zeros(1, 2)
    s = scene()
    try:
        for command in coasting[0]:
            unstepped = rollout_step(*unstepped, command[None], torch.zeros(1, 2), s, 0.5, P, 1)
        diverged = not torch.isfinite(unstepped[0]).all()
    except IndexError:   # Raster.sample of a NaN position
        diverged = True
    assert diverged
    states, _ = rollout(start, torch.zeros(2), coasting, torch.zeros(1, 2), s, 0.5, P)
    assert torch.isfinite(states).all()
    assert float(states[0, -1, 3:].abs().max()) < float(start[3:].abs().max())


def test_bad_scenes_are_refused():
    with pytest.raises(ValueError, match='3 channels'):
        Scene(flow=Raster(ONES, (0.0, 0.0), 1.0), distance=Raster(ONES, (0.0, 0.0), 1.0),
              goal=torch.zeros(2))
    with pytest.raises(ValueError, match=r'goal and thrust_efficiency'):
        scene(thrust_efficiency=torch.ones(3))
    with pytest.raises(ValueError, match='drag_scale'):
        scene(drag_scale=0.0)
