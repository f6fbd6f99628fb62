"""The headless closed loop (simulator + EKF + baseline controller or planner in one
process)."""
import numpy as np
import pytest

from asv_autonomy.localization import LocalizationConfig, Localizer
from asv_autonomy.measurements import PlanarOdometry
from asv_autonomy.planning.baseline import BaselineConfig, BaselineController
from asv_autonomy.planning.flow import FlowField
from asv_autonomy.planning.health import HealthMonitor
from asv_autonomy.planning.planner import Planner, PlannerConfig
from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.planning.workspace import Workspace
from asv_autonomy.sim.faults import Fault, FaultSchedule
from asv_autonomy.sim.headless import HeadlessConfig, PlannerLoop, run_headless
from asv_autonomy.sim.simulator import SimConfig, Simulator

SURVEY = (-50.0, 40.0, 150.0, 40.0, 150.0, 190.0, -50.0, 190.0)   # config/autonomy.yaml


def mission(seed=0, duration=120.0, faults=None):
    sim = Simulator(SimConfig(seed=seed), faults)
    steps = list(run_headless(sim, Localizer(LocalizationConfig(datum=sim.config.datum)),
                              BaselineController(BaselineConfig(survey_polygon=SURVEY),
                                                 VesselParams()),
                              HeadlessConfig(duration=duration)))
    return sim, steps


def test_closed_loop_localizes_and_drives_to_the_survey():
    sim, steps = mission()
    assert len(steps) == round(120.0 / sim.config.dt)
    odometry = [(s.odometry, s.sim.odometry) for s in steps if s.odometry is not None]
    assert len(odometry) == pytest.approx(20 * 120, abs=10)   # 20 Hz once initialised
    assert sum(s.thrust is not None for s in steps) == pytest.approx(10 * 120, abs=2)
    error = np.array([np.hypot(e.x - t.x, e.y - t.y) for e, t in odometry[100:]])
    assert np.sqrt(np.mean(error ** 2)) < 0.8
    track = np.array([(s.sim.odometry.x, s.sim.odometry.y) for s in steps])
    assert np.linalg.norm(np.diff(track, axis=0), axis=1).sum() > 120.0   # ~1.5 m/s
    assert track[-1, 1] > 40.0          # it reached the survey area (y >= 40 m)


def test_same_seed_same_mission():
    _, a = mission(seed=2, duration=30.0)
    _, b = mission(seed=2, duration=30.0)
    assert [s.thrust for s in a] == [s.thrust for s in b]
    assert a[-1].sim.odometry.x == b[-1].sim.odometry.x


def test_a_failed_thruster_shows_in_the_motion():
    failure = FaultSchedule([Fault('thruster_failure', onset=40.0, duration=None,
                                   params={'side': 'left'})])
    _, normal = mission(duration=80.0)
    _, faulty = mission(duration=80.0, faults=failure)
    assert [s.sim.active_faults for s in faulty[-5:]] and not normal[-1].sim.active_faults
    assert faulty[-1].sim.thrust_applied[0] == 0.0
    gap = np.hypot(faulty[-1].sim.odometry.x - normal[-1].sim.odometry.x,
                   faulty[-1].sim.odometry.y - normal[-1].sim.odometry.y)
    assert gap > 10.0


def test_an_idle_start_leaves_the_boat_at_rest_until_the_controller_starts():
    sim = Simulator(SimConfig(seed=0))
    steps = list(run_headless(sim, Localizer(LocalizationConfig(datum=sim.config.datum)),
                              BaselineController(BaselineConfig(survey_polygon=SURVEY),
                                                 VesselParams()),
                              HeadlessConfig(duration=20.0, idle_start=8.0)))
    start = steps[0].sim.time - sim.config.dt
    commanded = [s.sim.time - start for s in steps if s.thrust is not None]
    assert commanded[0] == pytest.approx(8.0, abs=1.5 * sim.config.dt)
    assert len(commanded) == pytest.approx(10 * 12, abs=2)      # 10 Hz from 8 s on
    before = [s for s in steps if s.sim.time - start < 8.0]
    assert all(not np.any(s.sim.thrust_applied) for s in before)
    assert np.abs(steps[-1].sim.thrust_applied).max() > 10.0
    # Drifting with the current until then; under way at the end.
    assert np.hypot(steps[-1].sim.odometry.u, steps[-1].sim.odometry.v) > 1.0


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match='duration'):
        HeadlessConfig(duration=0.0)
    with pytest.raises(ValueError, match='idle_start'):
        HeadlessConfig(idle_start=-1.0)


def planner_loop(sim: Simulator) -> PlannerLoop:
    vessel = VesselParams()
    workspace = Workspace.from_world(sim.world, 5.0, min_depth=vessel.draft)
    flow = FlowField.uniform((0.0, 0.0), 0.1, workspace.extent, 20.0)
    planner = Planner(PlannerConfig(survey_polygon=SURVEY, background_solve=False), vessel,
                      workspace, flow)
    return PlannerLoop(planner, HealthMonitor())


@pytest.mark.slow
def test_the_planner_drives_the_headless_loop():
    sim = Simulator(SimConfig(seed=0))
    loop = planner_loop(sim)
    steps = list(run_headless(sim, Localizer(LocalizationConfig(datum=sim.config.datum)), loop,
                              HeadlessConfig(duration=60.0, control_rate=5.0)))
    commands = [s.thrust for s in steps if s.thrust is not None]
    assert len(commands) == pytest.approx(5 * 60, abs=2)
    limits = VesselParams()
    assert all(-limits.max_thrust_reverse - 1e-9 <= t <= limits.max_thrust_forward + 1e-9
               for command in commands for t in command)
    track = np.array([(s.sim.odometry.x, s.sim.odometry.y) for s in steps])
    assert np.linalg.norm(np.diff(track, axis=0), axis=1).sum() > 40.0
    assert loop.planner.distance_travelled > 40.0
    # It plans from the filter's odometry, as the node does: healthy GPS, a survey goal.
    assert loop.planner.health.gps_ok and loop.planner.goal is not None


def test_the_planner_loop_passes_a_coasting_filter_to_the_planner():
    sim = Simulator(SimConfig(seed=0))
    loop = planner_loop(sim)
    lost = np.diag([50.0, 50.0, 0.1, 0.1, 0.1, 0.1])    # 7 m 1-sigma: no GPS for a while
    loop.plan(PlanarOdometry(stamp=1.0, x=0.0, y=60.0, yaw=0.0, covariance=lost))
    assert not loop.planner.health.gps_ok
    loop.plan(PlanarOdometry(stamp=1.2, x=0.0, y=60.0, yaw=0.0,
                             covariance=np.diag([0.5, 0.5, 0.1, 0.1, 0.1, 0.1])))
    assert loop.planner.health.gps_ok
