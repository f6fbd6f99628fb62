"""MDP solvers on problems with known answers, agreement between them, validation.

Error bounds (measured, and why): the grid value iteration is the discrete MDP itself
(a staircase: within one step cost of the analytic discounted cost, plus bilinear
smoothing). The finite-element solver uses isotropic upwind diffusion |b| h / 2 (monotone,
first order), which smooths the cone at the goal: ~+10 % / +50 cost here. The kernel
solver's normalised (Shepard) kernels smooth the value's curvature over a kernel width and
ripple slightly on the regular grid of supporting states: measured within 7 % of the
analytic cost (+/- 2 step costs) and 4-5 % mean deviation from the grid value iteration, so
10 % bounds; its continuous heading is within 0.1 rad of the analytic crab angle.
"""
import math

import pytest
import torch

from asv_autonomy.planning.flow import FlowField
from asv_autonomy.planning.mdp.kernel import shortest_path_headings
from asv_autonomy.planning.mdp import (FEMConfig, GridConfig, KernelConfig, MDPConfig,
                                       MDPProblem, solve)
from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.planning.workspace import Workspace

LAKE = [(0.0, 0.0), (600.0, 0.0), (600.0, 300.0), (0.0, 300.0)]
GOAL = (520.0, 150.0)
PROBE = torch.tensor([[100.0, 150.0], [250.0, 150.0], [400.0, 150.0], [300.0, 90.0]])
CONFIGS = {'kernel': KernelConfig(spacing=30.0), 'fem': FEMConfig(spacing=20.0),
           'grid': GridConfig(spacing=15.0)}
TOLERANCE = {'kernel': 0.1, 'fem': 0.12, 'grid': 0.06}
METHODS = ['kernel', 'fem', 'grid']


def _problem(current=(0.0, 0.0), obstacles=(), **config):
    ws = Workspace.from_polygon(LAKE, 5.0, obstacles=obstacles)
    flow = FlowField.uniform(current, 0.0, ws.extent, 30.0)
    # 200 J per second: 1.2 m/s is clearly the cheapest speed per metre (0.6 m/s costs
    # 25 % more), so the policy's speed is a known answer.
    config.setdefault('energy_weight', 0.005)
    return MDPProblem(ws, flow, GOAL, config=MDPConfig(**config))


def _analytic(problem, points, current):
    """Discounted cost of sailing straight to the goal disc at each speed, best speed."""
    c = torch.tensor(current, dtype=torch.float64)
    to_goal = torch.tensor(GOAL, dtype=torch.float64) - points.double()
    distance = to_goal.norm(dim=-1)
    d = to_goal / distance[:, None]
    along = d @ c
    best = torch.full_like(distance, float('inf'))
    for speed, cost in zip(problem.speeds, problem.step_cost):
        ground = along + torch.sqrt(speed ** 2 - c.dot(c) + along ** 2)
        steps = (distance - problem.config.goal_radius) / (ground * problem.dt)
        value = cost * (1 - problem.discount ** steps) / (1 - problem.discount)
        best = torch.minimum(best, value)
    return best


def _detour_cost(problem):
    """[cost] of the shortest way from PROBE[0] round the disc at (300, 150), r = 40 m
    (tangent, arc, tangent: ~7.7 m longer than straight) at cruise speed."""
    a, b, r = 200.0, 220.0, 40.0
    detour = (math.sqrt(a * a - r * r) + math.sqrt(b * b - r * r)
              + r * (math.pi - math.acos(r / a) - math.acos(r / b)) - (a + b))
    return detour / (1.2 * problem.dt) * problem.step_cost[1]


@pytest.fixture(scope='module')
def calm():
    problem = _problem()
    return problem, {m: solve(problem, m, c) for m, c in CONFIGS.items()}


@pytest.fixture(scope='module')
def drift():
    problem = _problem(current=(0.3, 0.4))
    return problem, {m: solve(problem, m, c) for m, c in CONFIGS.items()}


@pytest.mark.parametrize('method', METHODS)
def test_no_current_value_is_the_straight_line_cost(calm, method):
    problem, solved = calm
    expected = _analytic(problem, PROBE, (0.0, 0.0))
    got = solved[method].value(PROBE).double()
    slack = TOLERANCE[method] * expected + 2 * problem.step_cost[1]
    assert ((got - expected).abs() <= slack).all(), (got, expected)
    heading, speed = solved[method].policy(PROBE[:3])
    assert (heading.abs() < 0.25).all()            # straight for the goal (east)
    assert torch.allclose(speed, torch.full((3,), 1.2))  # cruise is the cheapest per metre


@pytest.mark.parametrize('method', METHODS)
def test_uniform_current_drift_and_crab_angle(drift, method):
    problem, solved = drift
    current = (0.3, 0.4)
    expected = _analytic(problem, PROBE[:3], current)
    got = solved[method].value(PROBE[:3]).double()
    slack = TOLERANCE[method] * expected + 2 * problem.step_cost[1]
    assert ((got - expected).abs() <= slack).all(), (got, expected)
    heading, speed = solved[method].policy(PROBE[1:3])
    # Heading through water s h = g d - c, with d = east: crab south into the current.
    s = speed.double()
    g = torch.sqrt(s ** 2 - 0.25 + 0.09) + 0.3
    crab = torch.atan2(torch.full_like(g, -0.4), g - 0.3)
    # Discrete headings: the policy alternates between the two around the crab angle.
    allowed = 2 * math.pi / problem.config.headings if method == 'grid' else 0.15
    assert ((heading.double() - crab).abs() <= allowed).all(), (heading, crab)


@pytest.mark.parametrize('method', METHODS)
def test_solvers_agree_with_value_iteration(calm, drift, method):
    for problem, solved in (calm, drift):
        xy = torch.stack(torch.meshgrid(torch.arange(40.0, 480.0, 40.0),
                                        torch.arange(40.0, 280.0, 40.0), indexing='xy'),
                         -1).reshape(-1, 2)
        reference = solved['grid'].value(xy)
        scale = reference.abs().mean()
        error = (solved[method].value(xy) - reference).abs().mean() / scale
        assert error < TOLERANCE[method], float(error)


def test_obstacle_makes_the_path_longer_and_land_costs(calm):
    problem, solved = calm
    blocked = _problem(obstacles=((300.0, 150.0, 40.0),))
    values = solve(blocked, 'fem', CONFIGS['fem'])
    start = PROBE[:1]
    assert values.value(start) > solved['fem'].value(start) + 0.5 * _detour_cost(blocked)
    assert values.value(torch.tensor([300.0, 150.0])) == pytest.approx(blocked.land_cost)
    raster = values.to_raster(20.0)
    assert raster.values.shape[0] == 4
    assert float(raster.sample(torch.tensor([520.0, 150.0]))[0]) == pytest.approx(0.0, abs=1.0)


def test_degraded_thruster_slows_the_boat():
    healthy = _problem()
    ws, flow = healthy.workspace, healthy.flow
    weak = MDPProblem(ws, flow, GOAL, thrust_efficiency=(0.3, 1.0))
    assert weak.speeds.max() < 1.8
    assert weak.step_cost[0] > healthy.step_cost[0]  # same 0.6 m/s costs more power
    with pytest.raises(ValueError, match='no straight course'):
        MDPProblem(ws, flow, GOAL, thrust_efficiency=(0.0, 1.0))


def test_bad_configs_are_refused():
    healthy = _problem()
    with pytest.raises(ValueError, match='unreachable'):
        MDPProblem(healthy.workspace, healthy.flow, GOAL, config=MDPConfig(speeds=(3.0,)))
    with pytest.raises(ValueError, match='not in water'):
        MDPProblem(healthy.workspace, healthy.flow, (-50.0, 0.0))
    for bad in ({'discount': 1.0}, {'speeds': ()}, {'dt': 0.0}, {'goal_radius': -1.0},
                {'time_weight': 0.0, 'energy_weight': 0.0}, {'headings': 2}):
        with pytest.raises(ValueError):
            MDPConfig(**bad)
    with pytest.raises(ValueError, match='kernel'):
        KernelConfig(kernel='cubic')
    with pytest.raises(ValueError, match='stabilisation'):
        FEMConfig(stabilisation='none')
    with pytest.raises(ValueError, match='unknown MDP method'):
        solve(healthy, 'magic')
    with pytest.raises(ValueError, match='needs a FEMConfig'):
        solve(healthy, 'fem', KernelConfig())
    assert VesselParams().hull_radius == healthy.clearance


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('method', ['kernel', 'fem', 'grid'])
def test_cpu_and_cuda_agree(method):
    problem = _problem(current=(0.2, 0.1))
    cpu = solve(problem, method, CONFIGS[method])
    cuda_problem = MDPProblem(problem.workspace.to('cuda'), problem.flow.to('cuda'), GOAL)
    cuda = solve(cuda_problem, method, CONFIGS[method])
    assert torch.allclose(cpu.value(PROBE), cuda.value(PROBE).cpu(), rtol=1e-3, atol=1e-2)


def test_shortest_path_headings_go_around_a_wall():
    free = torch.ones(5, 5, dtype=torch.bool)
    free[1:, 2] = False                                    # wall with a gap at row 0
    goal = torch.zeros(5, 5, dtype=torch.bool)
    goal[4, 4] = True
    heading = shortest_path_headings(free, goal, (0.0, 0.0), 10.0, torch.tensor([40.0, 40.0]))
    # From the bottom-left corner the path runs east along row 0 through the gap...
    assert float(heading[0, 0]) == pytest.approx(0.0)
    # ...and from above the wall on the left it first heads down (south-east) to the gap.
    assert float(heading[3, 1]) < 0.0


def test_kernel_raster_matches_its_values_and_avoids_the_obstacle(calm):
    blocked = _problem(obstacles=((300.0, 150.0, 40.0),))
    values = solve(blocked, 'kernel', CONFIGS['kernel'])
    start = PROBE[:1]
    assert values.value(start) > calm[1]['kernel'].value(start) + 0.5 * _detour_cost(blocked)
    raster = values.to_raster(10.0)
    centres = raster.cell_centres().reshape(-1, 2)
    free = blocked.is_free(centres) & (values.value(centres) < 0.5 * blocked.land_cost)
    exact = values.value(centres[free])
    assert (raster.values[0].reshape(-1)[free] - exact).abs().max() < 0.02 * exact.max()
