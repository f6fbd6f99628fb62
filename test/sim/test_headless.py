"""The headless closed loop (simulator + EKF + baseline controller in one process)."""
import numpy as np
import pytest

from asv_autonomy.localization import LocalizationConfig, Localizer
from asv_autonomy.planning.baseline import BaselineConfig, BaselineController
from asv_autonomy.planning.vessel import VesselParams
from asv_autonomy.sim.faults import Fault, FaultSchedule
from asv_autonomy.sim.headless import HeadlessConfig, run_headless
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


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match='duration'):
        HeadlessConfig(duration=0.0)
