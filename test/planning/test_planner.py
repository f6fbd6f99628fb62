"""Planner (planning/planner.py): goto and hold, MDP guidance around land, survey sampling
within a budget, background solves, reactions to the boat's health, perception's blocked
cells. Closed loops run the shared vessel model (planning/vessel.step) with a small eager
MPPI (compile=False: these tests are about the planner's logic)."""
import math
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from asv_autonomy.measurements import InvalidInput, PlanarOdometry
from asv_autonomy.planning import planner as planner_module
from asv_autonomy.planning.flow import FlowField
from asv_autonomy.planning.health import VehicleHealth
from asv_autonomy.planning.informative import candidate_points
from asv_autonomy.planning.mppi import MPPIConfig
from asv_autonomy.planning.planner import Planner, PlannerCommand, PlannerConfig, SolveCache
from asv_autonomy.planning.raster import Raster
from asv_autonomy.planning.vessel import VesselParams, step
from asv_autonomy.planning.workspace import Workspace

VESSEL = VesselParams()
DT = 0.5                                    # [s] control step = rollout step
SMALL_MPPI = MPPIConfig(rollouts=128, horizon=20, dt=DT, compile=False, seed=1)
RES = 5.0
XS = np.arange(-40.0, 120.0 + 1e-9, RES)
YS = np.arange(-40.0, 40.0 + 1e-9, RES)
GRID_X, GRID_Y = np.meshgrid(XS, YS)
LAKE = (GRID_X > -40) & (GRID_X < 120) & (GRID_Y > -40) & (GRID_Y < 40)   # 160 x 80 m
OPEN = Workspace(LAKE, (XS[0], YS[0]), RES)
# A land wall across the lower 50 m of the lake at x = 35..45 m: from (0, -20) to (90, -20)
# the way round is through the gap north of y = 10 m.
WALL = (np.abs(GRID_X - 40.0) <= 5.0) & (GRID_Y <= 10.0)
WALLED = Workspace(LAKE & ~WALL, (XS[0], YS[0]), RES)
SURVEY_POLYGON = (0.0, -30.0, 60.0, -30.0, 60.0, 10.0, 0.0, 10.0)


def flow(velocity=(0.0, 0.0), spread=0.05):
    return FlowField.uniform(velocity, spread, OPEN.extent, 10.0)


def config(**kw):
    return PlannerConfig(**{'mode': 'goto', 'mppi': SMALL_MPPI, **kw})


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    """Small rollouts and solves run fastest on one thread on this busy 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class SceneRecorder:
    """Wraps a planner's optimiser to keep every Scene it is given."""

    def __init__(self, planner):
        self.scenes = []
        optimise = planner.optimiser.optimise

        def recording(state, thrust, scene):
            self.scenes.append(scene)
            return optimise(state, thrust, scene)

        planner.optimiser.optimise = recording


def drive(planner, state, steps, current=(0.0, 0.0), stop=None, t0=0.0):
    """Closed loop: plan, apply the command to the vessel model for DT in ``current``.

    Returns the states (steps + 1, 6) before each command, the commands and the final
    state; stops early when ``stop(command)`` is true."""
    state, thrust = np.asarray(state, float), np.zeros(2)
    states, commands = [state], []
    for k in range(steps):
        command = planner.plan(PlanarOdometry(t0 + k * DT, *state))
        commands.append(command)
        if stop is not None and stop(command):
            break
        state, thrust = step(state, thrust, np.array([command.thrust_left,
                                                      command.thrust_right]),
                             np.asarray(current, float), np.zeros(2), DT, VESSEL)
        states.append(state)
    return np.array(states), commands


def assert_within_limits(commands):
    thrust = np.array([[c.thrust_left, c.thrust_right] for c in commands])
    assert np.isfinite(thrust).all()
    assert (thrust >= -VESSEL.max_thrust_reverse - 1e-9).all()
    assert (thrust <= VESSEL.max_thrust_forward + 1e-9).all()


def land_distance(workspace, xy):
    return workspace.distance_to_land(torch.as_tensor(np.asarray(xy), dtype=torch.float32))


# ---------------------------------------------------------------------------- goto


def test_goto_in_open_water_reaches_the_goal_then_holds_with_zero_thrust():
    planner = Planner(config(use_mdp=False), VESSEL, OPEN, flow())
    goal = (60.0, 10.0)
    planner.set_goal(*goal)
    assert planner.goal == goal and planner.mode == 'goto'
    states, commands = drive(planner, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 200)
    assert_within_limits(commands)
    done = [c.done for c in commands]
    assert any(done), 'never reached the goal'
    first = done.index(True)
    assert first * DT < 90.0                                  # ~61 m at ~1 m/s
    assert np.hypot(*(states[first][:2] - goal)) < planner.config.acceptance_radius
    for c in commands:
        assert c.goal == goal and c.mode == 'goto'
        if c.done:
            assert c.thrust_left == c.thrust_right == 0.0
    # Holding: the boat coasts to a stop near the goal, zero thrust all along.
    assert all(done[first:])
    assert np.hypot(*(states[-1][:2] - goal)) < planner.config.hold_radius
    # Pushed beyond the hold radius, it drives back.
    away = planner.plan(PlanarOdometry(1000.0, goal[0] - 10.0, goal[1], 0.0))
    assert not away.done and max(away.thrust_left, away.thrust_right) > 0.0
    assert away.path.shape[1] == 2 and len(away.path) == SMALL_MPPI.horizon + 1


def test_goto_without_a_goal_commands_zero_thrust():
    planner = Planner(config(use_mdp=False), VESSEL, OPEN, flow())
    command = planner.plan(PlanarOdometry(0.0, 0.0, 0.0, 0.0))
    assert isinstance(command, PlannerCommand)
    assert command.thrust_left == command.thrust_right == 0.0 and planner.goal is None


@pytest.mark.parametrize('field, value', [('x', np.nan), ('yaw', np.inf), ('u', np.nan),
                                          ('stamp', np.nan)])
def test_non_finite_odometry_is_refused_as_nan(field, value):
    planner = Planner(config(use_mdp=False), VESSEL, OPEN, flow())
    planner.set_goal(50.0, 0.0)
    odometry = replace(PlanarOdometry(0.0, 0.0, 0.0, 0.0), **{field: value})
    with pytest.raises(InvalidInput) as error:
        planner.plan(odometry)
    assert error.value.reason == 'nan'
    with pytest.raises(ValueError, match='finite'):
        planner.set_goal(np.nan, 0.0)


def test_config_refuses_bad_settings_with_reasons():
    with pytest.raises(ValueError, match='mode'):
        PlannerConfig(mode='wander')
    with pytest.raises(ValueError, match='optimiser'):
        PlannerConfig(optimiser='cem')
    with pytest.raises(ValueError, match='mdp_method'):
        PlannerConfig(mdp_method='grid-vi')
    with pytest.raises(ValueError, match='hold_radius'):
        PlannerConfig(acceptance_radius=5.0, hold_radius=4.0)
    with pytest.raises(ValueError, match='stuck_time'):
        PlannerConfig(stuck_time=0.0)
    with pytest.raises(ValueError, match='survey_budget'):
        PlannerConfig(survey_budget=-1.0)
    with pytest.raises(ValueError, match='time_budget'):
        PlannerConfig(time_budget=math.nan)
    with pytest.raises(ValueError, match='max_hurry'):
        PlannerConfig(max_hurry=0.5)
    with pytest.raises(ValueError, match='pace_window'):
        PlannerConfig(pace_window=0.0)


def test_mdp_guides_around_a_land_wall_without_entering_the_clearance():
    planner = Planner(config(use_mdp=True), VESSEL, WALLED, flow())
    goal = np.array([90.0, -20.0])
    planner.set_goal(*goal)
    states, commands = drive(planner, (0.0, -20.0, 0.0, 0.0, 0.0, 0.0), 300,
                             stop=lambda c: c.done)
    assert commands[-1].done, f'stuck at {states[-1][:2]}'
    assert np.hypot(*(states[-1][:2] - goal)) < planner.config.acceptance_radius
    assert states[:, 1].max() > 10.0                          # through the gap in the north
    assert float(land_distance(WALLED, states[:, :2]).min()) > VESSEL.hull_radius
    assert_within_limits(commands)


def test_blocked_cells_from_perception_are_avoided_and_can_be_cleared():
    # A 10 x 5 m blocked patch (x 26..36, y 0..5 m) on the straight line from (0, 0) to
    # (50, 0); occupancy cells of 2.5 m, cell (0, 0) centred at ``origin``.
    occupancy = np.zeros((12, 12), np.int8)
    occupancy[6:8, 4:8] = 100
    occupancy[0, :] = -1                                      # unknown: ignored
    origin = (17.0, -13.75)
    patch_centre = np.array([30.75, 2.5])
    planner = Planner(config(use_mdp=False), VESSEL, OPEN, flow())
    planner.set_blocked(occupancy, origin, 2.5)
    assert float(land_distance(planner.workspace, patch_centre)) < 0.0
    assert float(land_distance(planner.workspace, (origin[0] + 12.5, origin[1]))) > 0.0  # unknown
    planner.set_goal(50.0, 0.0)
    states, commands = drive(planner, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 150,
                             stop=lambda c: c.done)
    assert commands[-1].done
    assert float(land_distance(planner.workspace, states[:, :2]).min()) > VESSEL.hull_radius
    planner.set_blocked(None)
    assert float(land_distance(planner.workspace, patch_centre)) > 10.0


# ---------------------------------------------------------------------------- survey


def test_survey_visits_distinct_candidates_in_water_and_stops_when_the_budget_is_spent():
    budget = 60.0
    cfg = PlannerConfig(mode='survey', use_mdp=False, survey_polygon=SURVEY_POLYGON,
                        survey_budget=budget, mppi=SMALL_MPPI)
    planner = Planner(cfg, VESSEL, OPEN, flow())
    polygon = np.reshape(SURVEY_POLYGON, (-1, 2))
    inset = cfg.candidate_inset
    states, commands = drive(planner, (5.0, -25.0, 0.0, 0.0, 0.0, 0.0), 300,
                             stop=lambda c: c.done)
    assert commands[-1].done, 'survey never finished'
    assert commands[-1].thrust_left == commands[-1].thrust_right == 0.0
    assert_within_limits(commands)
    goals = []
    for c in commands[:-1]:
        assert c.mode == 'survey' and not c.done
        if not goals or goals[-1] != c.goal:
            goals.append(c.goal)
    goals = np.array(goals)
    assert len(goals) >= 2
    assert len({tuple(g) for g in goals}) == len(goals)               # never the same twice
    assert (goals >= polygon.min(0) + inset - 1e-9).all()
    assert (goals <= polygon.max(0) - inset + 1e-9).all()
    assert (land_distance(OPEN, goals) > VESSEL.hull_radius).all()
    offsets = (goals - (polygon.min(0) + inset)) / cfg.candidate_spacing
    assert np.allclose(offsets, np.round(offsets), atol=1e-6)         # on the candidate grid
    # Each goal was reached before the next was chosen.
    for goal in goals[:-1]:
        assert np.hypot(*(states[:, :2] - goal).T).min() < cfg.acceptance_radius
    travelled = planner.distance_travelled
    assert np.isclose(travelled, np.hypot(*np.diff(states[:, :2], axis=0).T).sum())
    assert travelled <= budget
    # It stopped for the budget, not for lack of information: an unsampled candidate is
    # left, farther than the remaining budget.
    candidates = candidate_points(polygon, cfg.candidate_spacing, inset)
    std = planner.coverage.raster().sample(torch.as_tensor(candidates,
                                                           dtype=torch.float32))[:, 0]
    uncertain = candidates[std.numpy() > 0.1]
    assert len(uncertain)
    assert (np.hypot(*(uncertain - states[-1][:2]).T) > budget - travelled).all()


def test_survey_information_weight_rewards_uncertain_cells_in_the_rollouts():
    """Two planners with the same seed and map uncertainty, the boat 1 m south of the
    uncertain half: the one that rewards information (information_weight > 0) must plan
    differently from one that does not."""
    commands = []
    for weight in (0.0, 5.0):
        cfg = PlannerConfig(mode='survey', use_mdp=False, survey_polygon=SURVEY_POLYGON,
                            information_weight=weight, mppi=SMALL_MPPI)
        planner = Planner(cfg, VESSEL, OPEN, flow())
        std = np.where(GRID_Y > 0.0, 1.0, 0.0)       # uncertain north half only
        planner.set_information(Raster(std, (XS[0], YS[0]), RES))
        commands.append(drive(planner, (30.0, -1.0, 0.0, 0.0, 0.0, 0.0), 5)[1])
    without, rewarded = ([(c.thrust_left, c.thrust_right) for c in run] for run in commands)
    assert without != rewarded


# ---------------------------------------------------------------------------- solves


def test_solve_cache_in_the_background_answers_pending_then_the_result_once():
    release = threading.Event()
    calls = []

    def slow():
        calls.append(1)
        release.wait(5.0)
        return 'value'

    cache = SolveCache(background=True)
    assert cache.get('a', slow) is planner_module._PENDING
    assert cache.get('a', slow) is planner_module._PENDING      # not submitted twice
    release.set()
    deadline = time.monotonic() + 5.0
    while (result := cache.get('a', slow)) is planner_module._PENDING:
        assert time.monotonic() < deadline, 'background solve never finished'
        time.sleep(0.01)
    assert result == 'value' and cache.get('a', slow) == 'value' and len(calls) == 1


def test_solve_cache_in_the_foreground_solves_at_once_and_keeps_the_latest():
    cache = SolveCache(background=False, size=2)
    calls = []

    def solver(value):
        return lambda: calls.append(value) or value

    assert [cache.get(k, solver(k)) for k in ('a', 'b', 'a', 'c', 'a')] == list('abaca')
    assert calls == ['a', 'b', 'c', 'a']                         # 'a' evicted by 'b', 'c'


def test_background_solve_keeps_commanding_by_straight_line_until_the_value_is_ready(
        monkeypatch):
    release = threading.Event()
    solve = planner_module.solve

    def held_solve(*args, **kw):
        release.wait(10.0)
        return solve(*args, **kw)

    monkeypatch.setattr(planner_module, 'solve', held_solve)
    planner = Planner(config(use_mdp=True, background_solve=True), VESSEL, OPEN, flow())
    recorder = SceneRecorder(planner)
    planner.set_goal(80.0, 0.0)
    start = time.monotonic()
    states, commands = drive(planner, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 10)
    assert time.monotonic() - start < 8.0                       # never waited for the solve
    assert all(s.value is None for s in recorder.scenes)       # straight-line terminal cost
    assert all(not c.done and c.mode == 'goto' for c in commands)
    assert states[-1][0] > states[0][0] + 1.0                   # and it got going
    assert_within_limits(commands)
    release.set()
    deadline = time.monotonic() + 20.0
    while recorder.scenes[-1].value is None:
        assert time.monotonic() < deadline, 'the value function never arrived'
        time.sleep(0.05)
        planner.plan(PlanarOdometry(100.0, *states[-1]))
    value = recorder.scenes[-1].value
    near, far = (value.sample(torch.tensor(p))[0] for p in ([70.0, 0.0], [0.0, 0.0]))
    assert float(near) < float(far)                             # value-to-go to (80, 0)


# ---------------------------------------------------------------------------- health


def test_gps_lost_holds_the_position_slowly_against_a_current():
    current = (0.25, 0.0)
    planner = Planner(config(use_mdp=False), VESSEL, OPEN, flow(current))
    planner.set_goal(100.0, 0.0)
    recorder = SceneRecorder(planner)
    planner.set_health(VehicleHealth(gps_ok=False))
    states, commands = drive(planner, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 200, current=current)
    assert all(c.mode == 'hold' and not c.done for c in commands)
    assert all(c.goal == (0.0, 0.0) for c in commands)         # where the fix was lost
    assert all(float(s.max_speed) == pytest.approx(planner.config.gps_lost_speed)
               for s in recorder.scenes)
    drifted = np.hypot(*(states[:, :2].T))
    # Zero thrust would drift 25 m in 100 s. Priced at the cruise speed, a metre away from
    # the hold point cost less than the thrust to stem the current: the boat crept
    # ~0.1 m/s downstream for good (9 m after 100 s); at the hold speed it stays within
    # ~4 m (measured 4.3 m max, 2.8 m at the end).
    assert drifted.max() < 6.0
    assert planner.distance_travelled == 0.0      # dead-reckoned positions do not count
    assert_within_limits(commands)
    planner.set_health(VehicleHealth())
    command = planner.plan(PlanarOdometry(100.0, *states[-1]))
    assert command.mode == 'goto' and command.goal == (100.0, 0.0)


def test_stuck_pushing_without_moving_backs_out_in_reverse_then_goes_on():
    cfg = config(use_mdp=False, stuck_time=3.0, backout_time=2.0)
    planner = Planner(cfg, VESSEL, OPEN, flow())
    planner.set_goal(100.0, 0.0)
    modes, thrusts = [], []
    for k in range(30):                           # held in weeds at the origin
        command = planner.plan(PlanarOdometry(k * DT, 0.0, 0.0, 0.0, u=0.02))
        modes.append(command.mode)
        thrusts.append((command.thrust_left, command.thrust_right))
    thrusts = np.array(thrusts)
    first = modes.index('backout')
    pushing = thrusts.mean(axis=1) > 0.5 * VESSEL.max_thrust_forward
    # Backs out once the command it applies has been pushing hard for stuck_time without
    # moving (the odometry after the first of those commands starts the clock)...
    start = first - 1
    while start > 0 and pushing[start - 1]:
        start -= 1
    assert pushing[start:first].all() and first - start > 1, 'never pushed hard'
    assert (first - start - 1) * DT == pytest.approx(cfg.stuck_time)
    # ... for backout_time, in reverse on both thrusters, within the reverse limit...
    steps = round(cfg.backout_time / DT)
    backing = [k for k, m in enumerate(modes) if m == 'backout']
    assert backing[:steps] == list(range(first, first + steps))
    assert (thrusts[backing] < 0.0).all()
    assert (thrusts[backing] >= -VESSEL.max_thrust_reverse).all()
    # ... then plans again.
    assert modes[first + steps] == 'goto'


def test_a_stuck_status_backs_out_at_once():
    planner = Planner(config(use_mdp=False, backout_time=2.0), VESSEL, OPEN, flow())
    planner.set_goal(100.0, 0.0)
    planner.plan(PlanarOdometry(0.0, 0.0, 0.0, 0.0))
    planner.set_health(VehicleHealth(stuck=True))
    modes = [planner.plan(PlanarOdometry(t, 0.0, 0.0, 0.0)).mode for t in (0.5, 1.5, 2.5)]
    assert modes == ['backout', 'backout', 'goto']


def test_thruster_health_changes_the_mdp_solve_and_the_rollouts():
    planner = Planner(config(use_mdp=True), VESSEL, OPEN, flow())
    recorder = SceneRecorder(planner)
    planner.set_goal(80.0, 0.0)
    odometry = PlanarOdometry(0.0, 0.0, 0.0, 0.0)
    planner.plan(odometry)
    planner.set_health(VehicleHealth(thrust_efficiency=(0.5, 1.0)))     # left degraded
    planner.plan(odometry)
    planner.set_health(VehicleHealth(thrust_efficiency=(0.0, 1.0)))     # left failed
    command = planner.plan(odometry)
    healthy, degraded, failed = recorder.scenes
    assert healthy.thrust_efficiency.tolist() == [1.0, 1.0]
    assert degraded.thrust_efficiency.tolist() == [0.5, 1.0]
    assert failed.thrust_efficiency.tolist() == [0.0, 1.0]
    start = torch.tensor([0.0, 0.0])
    # A degraded thruster: slower and dearer -> a larger value-to-go (re-solved).
    assert degraded.value is not healthy.value
    assert float(degraded.value.sample(start)[0]) > float(healthy.value.sample(start)[0])
    # A failed one leaves no straight course for the MDP: straight-line terminal cost.
    assert failed.value is None
    assert_within_limits([command])
    # Healthy again: the first solve is reused, not repeated.
    planner.set_health(VehicleHealth())
    planner.plan(odometry)
    assert recorder.scenes[-1].value is healthy.value


def test_online_current_correction_learns_an_unexpected_current():
    """The planner is told still water; the boat drifts in 0.4 m/s east. The correction
    it adds to the expected current converges towards the true one."""
    planner = Planner(config(use_mdp=False, current_estimation_time=5.0), VESSEL, OPEN, flow())
    planner.set_goal(0.0, 30.0)
    drive(planner, (0.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0), 60, current=(0.4, 0.0))
    east, north = planner.current_correction
    assert east == pytest.approx(0.4, abs=0.15)
    assert abs(north) < 0.15


def test_a_pace_that_would_miss_the_time_budget_hurries_and_arrives_sooner():
    """Forecast still water, a true 0.5 m/s head current: at the energy-saving pace the
    100 m take longer than a 120 s budget, so the planner raises the MDP's time weight
    and arrives sooner than with a budget it meets, where it never hurries."""
    def arrival(budget):
        planner = Planner(config(use_mdp=True, time_budget=budget, pace_window=20.0,
                                 acceptance_radius=8.0, hold_radius=12.0),
                          VESSEL, OPEN, flow())
        planner.set_goal(70.0, 0.0)
        _, commands = drive(planner, (-30.0, 0.0, 0.0, 0.0, 0.0, 0.0), 500,
                            current=(-0.5, 0.0), stop=lambda c: c.done)
        assert_within_limits(commands)
        assert commands[-1].done, f'budget {budget} s: not at the goal in 250 s'
        return (len(commands) - 1) * DT, planner.hurry

    relaxed_time, relaxed_hurry = arrival(10_000.0)
    rushed_time, rushed_hurry = arrival(120.0)
    assert relaxed_hurry == 1.0 and relaxed_time > 120.0
    assert rushed_hurry > 1.0
    assert rushed_time < 0.8 * relaxed_time         # measured: 122 s against 222 s


RATES = torch.tensor([2.0, 3.0, 5.0])        # [cost/s] holding 0.6, 1.2, 1.8 m/s
SPEEDS = torch.tensor([0.6, 1.2, 1.8])


@pytest.mark.parametrize('current, expected', [
    ((0.0, 0.0), min(2.0 / 0.6, 3.0 / 1.2, 5.0 / 1.8)),        # still water
    ((0.5, 0.0), min(2.0 / 1.1, 3.0 / 1.7, 5.0 / 2.3)),        # carried towards the goal
    ((-1.0, 0.0), min(3.0 / 0.2, 5.0 / 0.8)),                  # against: 0.6 m/s no way
    ((0.0, 0.7), min(3.0 / math.sqrt(1.44 - 0.49), 5.0 / math.sqrt(3.24 - 0.49))),  # crab
    ((-2.5, 0.0), 5.0 / planner_module.MIN_PROGRESS),          # stronger than the boat
])
def test_homing_price_is_the_cheapest_metre_towards_the_goal_in_the_current(current,
                                                                          expected):
    # The goal lies east of the point.
    price = planner_module.homing_price(flow(current).raster, torch.tensor([[10.0, 0.0]]),
                                        torch.tensor([30.0, 0.0]), SPEEDS, RATES)
    assert float(price[0]) == pytest.approx(expected, rel=1e-5)


def test_the_goal_disc_costs_more_against_the_current_and_matches_the_mdp_at_its_edge():
    values = Raster(torch.stack([torch.as_tensor(np.hypot(GRID_X - 80.0, GRID_Y)).float(),
                                 torch.zeros(GRID_X.shape)]), (XS[0], YS[0]), RES)
    values.values[0] = (values.values[0] - 20.0).clamp_min(0.0)   # 0 on the 20 m disc
    still = planner_module.homing(values, np.array([80.0, 0.0]), 20.0, flow().raster,
                                  SPEEDS, RATES)
    against = planner_module.homing(values, np.array([80.0, 0.0]), 20.0,
                                    flow((-1.0, 0.0)).raster, SPEEDS, RATES)

    def at(raster, x, y):
        return float(raster.sample(torch.tensor([x, y], dtype=torch.float32))[0])
    # 10 m west of the goal, inside the disc: 10 m at the cheapest price of each current.
    assert at(still, 70.0, 0.0) == pytest.approx(10.0 * 3.0 / 1.2, rel=1e-4)
    assert at(against, 70.0, 0.0) == pytest.approx(10.0 * 5.0 / 0.8, rel=1e-4)
    # Continuous across the disc's edge (west of the goal), and the MDP's value beyond.
    assert at(against, 60.0 - 1e-3, 0.0) == pytest.approx(at(against, 60.0 + 1e-3, 0.0),
                                                          abs=0.01)
    assert at(against, 50.0, 0.0) - at(against, 55.0, 0.0) == pytest.approx(5.0, abs=1e-3)


def test_a_boat_held_off_the_goal_by_a_head_current_pushes_on_to_it():
    """15 m short of the goal, inside the MDP's goal disc, in a 1.3 m/s head current: the
    last metres are dear, and the planner spends the thrust to cover them."""
    planner = Planner(config(use_mdp=True), VESSEL, OPEN, flow((-1.3, 0.0)))
    planner.set_goal(80.0, 0.0)
    states, commands = drive(planner, [65.0, 0.0, 0.0, 0.0, 0.0, 0.0], 120,
                             current=(-1.3, 0.0), stop=lambda c: c.done)
    assert commands[-1].done, states[-1]
    assert np.hypot(*(states[-1][:2] - (80.0, 0.0))) <= planner.config.hold_radius
    assert_within_limits(commands)
