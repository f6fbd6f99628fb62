"""MPPI optimiser (planning/mppi.py): closed-loop behaviour, limits, warm start, compile."""
import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from asv_autonomy.planning.costs import CostWeights
from asv_autonomy.planning.mppi import (MPPI, MPPIConfig, Scene, private_copy,
                                        smoothing_matrix, steps_with_cost)
from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.vessel import VesselParams, step

P = VesselParams()
CONFIG = MPPIConfig(rollouts=256, horizon=30, dt=0.4, seed=3)
N, RES, ORIGIN = 41, 5.0, (-50.0, -100.0)
YS, XS = np.mgrid[0:N, 0:N] * RES + np.array(ORIGIN)[::-1, None, None]
SHORE = 200.0 - np.maximum(np.abs(XS - 50.0), np.abs(YS))       # open water all around
GOAL = (60.0, 0.0)
CURRENT = (0.0, 0.2)                                              # [m/s] northward


def geodesic_value(distance, clearance, speed=1.2):
    """[s] shortest 8-connected water path to GOAL over ``speed`` (Dijkstra on the grid)."""
    water = distance > clearance + 1.0
    index = np.arange(N * N).reshape(N, N)
    rows, cols, costs = [], [], []
    for dj, di in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = index[max(0, -dj):N - max(0, dj), max(0, -di):N - max(0, di)]
        b = index[max(0, dj):, max(0, di):][:a.shape[0], :a.shape[1]]
        ok = water.ravel()[a] & water.ravel()[b]
        rows += [a[ok]]
        cols += [b[ok]]
        costs += [np.full(ok.sum(), RES * np.hypot(dj, di))]
    graph = coo_matrix((np.concatenate(costs), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(N * N, N * N))
    goal_row, goal_col = (round((g - o) / RES) for g, o in zip(GOAL[::-1], ORIGIN[::-1]))
    goal_cell = goal_row * N + goal_col
    metres = dijkstra(graph, directed=False, indices=goal_cell).reshape(N, N)
    return np.where(np.isfinite(metres), metres / speed, 1000.0)


def make_scene(distance, value=None, **kw):
    ones = np.ones((N, N))
    return Scene(flow=Raster(np.stack([CURRENT[0] * ones, CURRENT[1] * ones, 0.05 * ones]),
                             ORIGIN, RES),
                 distance=Raster(distance, ORIGIN, RES),
                 value=None if value is None else Raster(value, ORIGIN, RES),
                 goal=torch.tensor(GOAL), clearance=1.5, **kw)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Small rollouts run fastest on one thread, above all on a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def compiled():
    """One compiled optimiser for the module (compiling costs seconds)."""
    return MPPI(CONFIG, P, CostWeights())


def drive(planner, scene, seconds=80.0, dt=0.2):
    """Closed loop: plan, apply the command with the vessel model in the mean current."""
    planner.reset()
    state, thrust = np.array([0.0, 0.0, np.pi / 2, 0.0, 0.0, 0.0]), np.zeros(2)
    path, commands = [state[:2]], []
    for _ in range(int(seconds / dt)):
        command = planner.optimise(torch.tensor(state), torch.tensor(thrust), scene).command
        commands.append(command.numpy())
        state, thrust = step(state, thrust, command.double().numpy(), np.array(CURRENT),
                             np.zeros(2), dt, P)
        path.append(state[:2])
        if np.hypot(*(state[:2] - GOAL)) < 3.0:
            break
    return np.array(path), np.array(commands)


def assert_within_limits(commands):
    assert np.all(commands >= -P.max_thrust_reverse - 1e-6)
    assert np.all(commands <= P.max_thrust_forward + 1e-6)


def test_reaches_a_goal_in_open_water_within_limits(compiled):
    path, commands = drive(compiled, make_scene(SHORE))
    assert np.hypot(*(path[-1] - GOAL)) < 3.0
    assert len(commands) < 300                       # 60 m in under 60 s (~1.2 m/s cruise)
    assert_within_limits(commands)


def test_goes_around_a_land_disc_with_a_value_to_go(compiled):
    distance = np.minimum(SHORE, np.hypot(XS - 30.0, YS - 2.0) - 12.0)
    scene = make_scene(distance, geodesic_value(distance, 1.5))
    path, commands = drive(compiled, scene, seconds=100.0)
    assert np.hypot(*(path[-1] - GOAL)) < 3.0
    land = np.hypot(path[:, 0] - 30.0, path[:, 1] - 2.0) - 12.0
    assert land.min() > 1.5                          # never inside the clearance
    assert_within_limits(commands)


def test_compiled_and_eager_rollout_costs_agree(compiled):
    # Eager in uneven groups of 7 steps (30 = 4 x 7 + 2), compiled in groups of 5.
    eager = MPPI(replace(CONFIG, compile=False, steps_per_call=7), P, compiled.weights)
    generator = torch.Generator().manual_seed(0)
    controls = torch.rand(CONFIG.horizon, CONFIG.rollouts, 2, generator=generator) * 80 - 35
    disturbance = torch.randn(CONFIG.rollouts, 2, generator=generator)
    scene = make_scene(np.minimum(SHORE, np.hypot(XS - 8.0, YS) - 6.0))
    state, thrust = torch.tensor([0.0, 0.0, 0.3, 1.0, 0.0, 0.0]), torch.tensor([10.0, 10.0])
    with torch.inference_mode():
        want, want_states = eager.rollout_costs(state, thrust, controls, disturbance, scene)
        got, got_states = compiled.rollout_costs(state, thrust, controls, disturbance, scene)
    assert (want > 100.0).any()                      # some rollouts hit the small island
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-3)
    assert got_states.shape == want_states.shape == (CONFIG.horizon + 1, CONFIG.rollouts, 6)
    assert torch.allclose(got_states, want_states, rtol=1e-4, atol=1e-3)


def test_warm_start_shifts_the_controls_and_reset_forgets_them():
    planner = MPPI(replace(CONFIG, rollouts=16, horizon=5, compile=False), P, CostWeights())
    scene = make_scene(SHORE)
    assert planner.nominal is None
    result = planner.optimise(torch.zeros(6), torch.tensor([5.0, -3.0]), scene)
    assert result.controls.shape == (5, 2) and result.trajectory.shape == (6, 6)
    assert torch.equal(result.command, result.controls[0])
    assert torch.equal(result.trajectory[0], torch.zeros(6))
    assert torch.equal(planner.nominal[:-1], result.controls[1:])
    assert torch.equal(planner.nominal[-1], result.controls[-1])
    planner.reset()
    assert planner.nominal is None
    cold = MPPI(replace(CONFIG, rollouts=16, horizon=5, compile=False, warm_start=False), P,
                CostWeights())
    cold.optimise(torch.zeros(6), torch.zeros(2), scene)
    assert cold.nominal is None


def test_commands_stay_within_limits_when_every_rollout_is_bad():
    # Start on land, spinning fast and with a failed thruster: all rollouts collide.
    planner = MPPI(replace(CONFIG, rollouts=64, horizon=10, compile=False,
                           noise_sigma=(200.0, 200.0)), P, CostWeights())
    scene = make_scene(-SHORE, thrust_efficiency=torch.tensor([0.0, 1.0]))
    for _ in range(3):
        result = planner.optimise(torch.tensor([0.0, 0.0, 0.0, 3.0, -1.0, 2.0]),
                                  torch.tensor([45.0, -35.0]), scene)
        assert_within_limits(result.controls.numpy())
        assert np.isfinite(result.cost)


def test_a_failing_compiler_falls_back_to_eager(caplog):
    planner = MPPI(replace(CONFIG, rollouts=8, horizon=3), P, CostWeights())

    def broken(*args):
        raise RuntimeError('no C++ compiler')

    planner._step = broken
    with caplog.at_level(logging.WARNING):
        result = planner.optimise(torch.zeros(6), torch.zeros(2), make_scene(SHORE))
    assert 'running eagerly' in caplog.text
    assert result.controls.shape == (3, 2)


def test_private_copies_do_not_share_the_recompile_limit():
    # torch.compile keeps at most 8 variants per code object; with fullgraph the 9th is a
    # hard failure, which the optimiser answers by running eagerly. Ten optimisers, each
    # with its own scene shape, must each get compiled code.
    def shift(x):
        return x + 1.0

    shared = torch.compile(shift, backend='eager', dynamic=False, fullgraph=True)
    with pytest.raises(Exception, match='fullgraph'):
        for n in range(1, 11):
            shared(torch.zeros(n))
    for n in range(1, 11):
        own = torch.compile(private_copy(shift), backend='eager', dynamic=False,
                            fullgraph=True)
        assert torch.equal(own(torch.zeros(n)), torch.ones(n))


def test_every_optimiser_compiles_its_own_step():
    first, second = (MPPI(MPPIConfig(rollouts=8, horizon=5), VesselParams(), CostWeights())
                     for _ in range(2))
    # identity, not equality: copied code objects compare equal
    codes = {id(optimiser._step._torchdynamo_orig_callable.__code__)
             for optimiser in (first, second)}
    assert len(codes) == 2 and id(steps_with_cost.__code__) not in codes


def test_smoothing_keeps_the_noise_variance_and_correlates_neighbours():
    matrix = smoothing_matrix(6, 0.6, dtype=torch.float64)
    covariance = matrix @ matrix.T
    assert torch.allclose(covariance.diagonal(), torch.ones(6, dtype=torch.float64))
    assert covariance[3, 4] == pytest.approx(0.6)
    assert covariance[1, 4] == pytest.approx(0.6 ** 3)


@pytest.mark.parametrize('field, value, match', [
    ('rollouts', 1, 'rollouts'), ('dt', 0.0, 'dt'), ('temperature', -1.0, 'temperature'),
    ('noise_sigma', (1.0,), 'noise_sigma'), ('noise_smoothing', 1.0, 'noise_smoothing'),
    ('disturbance_pairs', 'min', 'disturbance_pairs'), ('rollouts', 255, 'even'),
    ('steps_per_call', -1, 'steps_per_call')])
def test_bad_configs_are_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        MPPIConfig(**{field: value})


@pytest.mark.parametrize('pairs', ['off', 'mean', 'max'])
def test_the_expected_trajectory_does_not_count_on_a_lucky_current(pairs):
    """A 0.8 m/s head current known to +-0.5 m/s. Each rollout drawing its own current,
    the softmin favours the ones that drew a weak one: the expected trajectory runs 10-20 m
    ahead of what its thrust achieves in the forecast current. Paired (+d / -d per thrust
    sequence) it stays within a couple of metres."""
    ones = np.ones((N, N))
    scene = Scene(flow=Raster(np.stack([-0.8 * ones, 0.0 * ones, 0.5 * ones]), ORIGIN, RES),
                  distance=Raster(SHORE, ORIGIN, RES), goal=torch.tensor(GOAL),
                  clearance=1.5)
    state, thrust = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0]), torch.tensor([20.0, 20.0])
    ahead = []
    for seed in range(3):
        planner = MPPI(replace(CONFIG, compile=False, disturbance_pairs=pairs, seed=seed), P,
                       CostWeights())
        for _ in range(5):
            result = planner.optimise(state, thrust, scene)
        with torch.inference_mode():
            _, states = planner.rollout_costs(state, thrust, result.controls[:, None],
                                              torch.zeros(1, 2), scene)
        ahead.append(float(result.trajectory[-1, 0] - states[-1, 0, 0]))
    if pairs == 'off':
        assert min(ahead) > 5.0, ahead
    else:
        assert max(abs(a) for a in ahead) < 2.0, ahead


def test_bad_states_are_refused():
    planner = MPPI(replace(CONFIG, rollouts=8, horizon=3, compile=False), P, CostWeights())
    with pytest.raises(ValueError, match='finite'):
        planner.optimise(torch.tensor([np.nan, 0, 0, 0, 0, 0]), torch.zeros(2),
                         make_scene(SHORE))
    with pytest.raises(ValueError, match=r'state \(6,\)'):
        planner.optimise(torch.zeros(3), torch.zeros(2), make_scene(SHORE))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cpu_and_cuda_rollout_costs_agree():
    config = replace(CONFIG, compile=False)
    generator = torch.Generator().manual_seed(1)
    controls = torch.rand(CONFIG.horizon, CONFIG.rollouts, 2, generator=generator) * 80 - 35
    disturbance = torch.randn(CONFIG.rollouts, 2, generator=generator)
    distance = np.minimum(SHORE, np.hypot(XS - 8.0, YS) - 6.0)
    state, thrust = torch.tensor([0.0, 0.0, 0.3, 1.0, 0.0, 0.0]), torch.tensor([10.0, 10.0])
    costs = []
    for device in ('cpu', 'cuda'):
        scene = make_scene(distance)
        scene = Scene(flow=scene.flow.to(device), distance=scene.distance.to(device),
                      goal=scene.goal.to(device), clearance=1.5)
        planner = MPPI(config, P, CostWeights(), device)
        with torch.inference_mode():
            cost, _ = planner.rollout_costs(state.to(device), thrust.to(device),
                                            controls.to(device), disturbance.to(device), scene)
        costs.append(cost.cpu())
    assert torch.allclose(costs[0], costs[1], rtol=1e-4, atol=1e-3)
