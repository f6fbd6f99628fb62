"""The built-in simulator (sim/simulator.py): safety, grounding, rates, faults, determinism."""
import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from asv_autonomy.measurements import FIX_NONE, InvalidInput
from asv_autonomy.sim.camera import CameraConfig
from asv_autonomy.sim.faults import Fault, FaultSchedule
from asv_autonomy.sim.simulator import SimConfig, Simulator

CONFIG = SimConfig()
# No current and no wind: the boat goes where it is pointed.
CALM = replace(CONFIG, current=replace(CONFIG.current, drift=(0.0, 0.0), gyre_speed=0.0),
               wind=replace(CONFIG.wind, mean_speed=0.0, gust_std=0.0))


def run(sim, seconds, command=None):
    steps = []
    for _ in range(int(round(seconds / sim.config.dt))):
        if command is not None:
            sim.command_thrust(*command)
        steps.append(sim.step())
    return steps


def test_stamps_rates_and_truth():
    sim = Simulator(CONFIG)
    assert sim.time == CONFIG.start_time
    steps = run(sim, 1.0)
    assert steps[-1].time == pytest.approx(CONFIG.start_time + 1.0)
    counts = {name: sum(getattr(s, name) is not None for s in steps)
              for name in ('imu', 'gnss', 'depth', 'temperature')}
    assert counts == {'imu': 50, 'gnss': 5, 'depth': 5, 'temperature': 1}
    assert sum(s.camera_due for s in steps) == 2
    s = next(s for s in steps if s.gnss is not None)
    assert s.gnss.stamp == s.time == s.odometry.stamp
    odom = sim.true_odometry()
    assert (odom.x, odom.y) == (steps[-1].odometry.x, steps[-1].odometry.y)
    assert 2.0 < steps[-1].depth.value < 4.0  # ~3 m of water at the start


def test_watchdog_zeroes_thrust_without_commands():
    sim = Simulator(CONFIG)
    assert run(sim, 0.1)[-1].watchdog  # nothing commanded yet
    sim.command_thrust(40.0, 40.0)
    steps = run(sim, 1.0)
    held = [s for s in steps if not s.watchdog]
    assert len(held) == pytest.approx(CONFIG.thrust_timeout / CONFIG.dt, abs=1)
    assert all(np.array_equal(s.thrust_command, [40.0, 40.0]) for s in held)
    assert all(np.array_equal(s.thrust_command, [0.0, 0.0]) for s in steps[len(held):])
    assert steps[-1].thrust_applied.max() < 40.0 * math.exp(-0.4 / 0.2)  # decaying
    steps = run(sim, 2.0, command=(40.0, 40.0))  # fresh commands keep it going
    assert not any(s.watchdog for s in steps)


def test_each_thruster_has_its_own_watchdog():
    """A thruster whose command stream stops goes to zero even while the other's continues."""
    sim = Simulator(CONFIG)
    sim.command_thruster(0, 30.0)
    sim.command_thruster(1, 20.0)
    steps = []
    for _ in range(int(1.0 / CONFIG.dt)):
        sim.command_thruster(0, 30.0)    # the right thruster's stream has stopped
        steps.append(sim.step())
    assert np.array_equal(steps[0].thrust_command, [30.0, 20.0])
    assert np.array_equal(steps[-1].thrust_command, [30.0, 0.0]) and steps[-1].watchdog
    with pytest.raises(InvalidInput):
        sim.command_thruster(1, math.nan)


def test_command_saturates_and_rejects_non_finite():
    sim = Simulator(CONFIG)
    sim.command_thrust(100.0, -100.0)
    assert np.array_equal(sim.step().thrust_command, [45.0, -35.0])
    for bad in (math.nan, math.inf):
        with pytest.raises(InvalidInput) as err:
            sim.command_thrust(bad, 0.0)
        assert err.value.reason == 'nan'
    assert np.array_equal(sim.step().thrust_command, [45.0, -35.0])  # old command kept


def test_estop_holds_thrust_at_zero_until_released():
    sim = Simulator(CONFIG)
    sim.set_estop(True)
    steps = run(sim, 1.0, command=(45.0, 45.0))
    assert all(s.estop and not s.thrust_command.any() for s in steps)
    assert abs(steps[-1].odometry.u) < 0.05
    sim.set_estop(False)
    steps = run(sim, 3.0, command=(45.0, 45.0))
    assert not steps[-1].estop and steps[-1].odometry.u > 1.0


def ray_to_shore(sim, yaw):
    """Distance [m] along yaw from the start to the first water shallower than the draft."""
    x0, y0 = CONFIG.start_pose[:2]
    r = np.arange(0.0, 400.0, 0.5)
    depth = sim.world.depth(x0 + r * math.cos(yaw), y0 + r * math.sin(yaw))
    return r[np.argmax(depth < CONFIG.vessel.draft)]


def test_running_aground_stops_at_the_shore_and_can_back_off():
    yaw = math.radians(200.0)  # towards the islet south-west of the start
    config = replace(CALM, start_pose=(0.0, 0.0, yaw))
    sim = Simulator(config)
    shore = ray_to_shore(sim, yaw)
    assert 20.0 < shore < 200.0
    steps = run(sim, shore / 2.5, command=(45.0, 45.0))
    assert not any(s.grounded for s in steps)
    steps += run(sim, 30.0, command=(45.0, 45.0))
    first = next(s for s in steps if s.grounded)
    # Stopped at the shoreline, not through it.
    assert math.hypot(first.odometry.x, first.odometry.y) == pytest.approx(shore, abs=0.5)
    assert first.odometry.u == 0.0 and first.odometry.v == 0.0
    assert sum(s.grounded for s in steps) > 100  # pushing on: held at the shore
    for s in steps:
        assert sim.world.depth(s.odometry.x, s.odometry.y) >= config.vessel.draft
    assert sim.contacts == 1   # one contact, however long the boat pushes on
    held = (steps[-1].odometry.x, steps[-1].odometry.y)
    steps = run(sim, 5.0, command=(-35.0, -35.0))
    assert not steps[-1].grounded
    assert math.hypot(steps[-1].odometry.x - held[0], steps[-1].odometry.y - held[1]) > 2.0


def test_energy_is_the_thruster_power_integrated_over_the_delivered_thrust():
    from asv_autonomy.planning.vessel import thruster_power
    sim = Simulator(CALM)
    steps = run(sim, 20.0, command=(30.0, 20.0))
    expected = sum(float(thruster_power(s.thrust_applied, CONFIG.vessel)) for s in steps) \
        * CONFIG.dt
    assert sim.energy_j == pytest.approx(expected, rel=1e-6)
    # 20 s at ~(30 N, 20 N) after a 0.2 s spin-up: ~ 20 s * 1.055 * (30^1.5 + 20^1.5) W.
    assert sim.energy_j == pytest.approx(20.0 * 1.055 * (30 ** 1.5 + 20 ** 1.5), rel=0.03)
    assert sim.contacts == 0


def test_collision_with_a_buoy():
    buoy = next(o for o in Simulator(CONFIG).world.obstacles if o.kind == 'buoy')
    start = (buoy.x - 20.0, buoy.y, 0.0)  # heading east, straight at it
    sim = Simulator(replace(CALM, start_pose=start))
    steps = run(sim, 25.0, command=(30.0, 30.0))
    assert steps[-1].collision
    gap = math.hypot(steps[-1].odometry.x - buoy.x, steps[-1].odometry.y - buoy.y)
    assert buoy.radius + CONFIG.vessel.hull_radius - 0.1 < gap < buoy.radius + 1.0


def test_same_seed_same_run_other_seed_other_noise():
    def trace(seed):
        sim = Simulator(replace(CONFIG, seed=seed))
        sim.command_thrust(30.0, 28.0)
        out = []
        for s in run(sim, 2.0, command=(30.0, 28.0)):
            out.append((s.odometry.x, s.odometry.yaw))
            if s.gnss is not None:
                out.append((s.gnss.latitude, s.gnss.longitude))
            if s.imu is not None:
                out.append(tuple(s.imu.angular_velocity))
            if s.depth is not None:
                out.append((s.depth.value,))
        return out

    assert trace(7) == trace(7)
    assert trace(7) != trace(8)


def test_faults_reach_the_dynamics_and_the_sensors(tmp_path):
    schedule = FaultSchedule([
        Fault('thruster_failure', 0.0, params=dict(side='left')),
        Fault('gps_dropout', 0.0, 1.0),
        Fault('gps_jump', 1.0, params=dict(offset=[50.0, 0.0])),
        Fault('sonar_spurious', 0.0, params=dict(probability=1.0, depth_range=[0.5, 0.6])),
    ])
    sim = Simulator(CONFIG, faults=schedule)
    steps = run(sim, 2.0, command=(40.0, 40.0))
    assert steps[-1].odometry.r > 0.2  # only the right thruster pushes: turns left
    assert steps[-1].thrust_applied[0] == 0.0 and steps[-1].thrust_applied[1] > 30.0
    fixes = [s.gnss for s in steps if s.gnss is not None]
    assert all(f.status == FIX_NONE for f in fixes[:4]) and fixes[-1].status != FIX_NONE
    depths = [s.depth.value for s in steps if s.depth is not None]
    assert all(0.5 <= d <= 0.6 for d in depths)
    assert {f.kind for f in steps[-1].active_faults} == {'thruster_failure', 'gps_jump',
                                                         'sonar_spurious'}
    assert len(sim.active_faults()) == 3
    # From the config file path too.
    path = tmp_path / 'f.yaml'
    path.write_text('faults:\n  - type: stuck\n    onset: 0\n    drag_multiplier: 20\n')
    stuck = Simulator(replace(CONFIG, fault_schedule=str(path)))
    assert run(stuck, 5.0, command=(45.0, 45.0))[-1].odometry.u < 0.6


def test_heaviest_weeds_stay_numerically_stable():
    # drag 100 at full differential thrust is far beyond one RK4 step's stability.
    sim = Simulator(CONFIG, faults=FaultSchedule([
        Fault('stuck', 1.0, params=dict(drag_multiplier=100.0))]))
    steps = run(sim, 3.0, command=(45.0, -35.0))
    assert all(np.isfinite([s.odometry.u, s.odometry.v, s.odometry.r]).all() for s in steps)
    assert abs(steps[-1].odometry.r) < 0.2 and abs(steps[-1].odometry.u) < 0.2


def test_ground_truth_fields():
    sim = Simulator(CONFIG)
    x, y, depth = sim.ground_truth_field('bathymetry')
    assert x.shape == y.shape == depth.shape and x.ndim == 2
    assert x[0, 1] - x[0, 0] == CONFIG.ground_truth_resolution
    assert np.isnan(depth).any() and np.nanmin(depth) > 0.0
    _, _, temp = sim.ground_truth_field('temperature')
    assert np.array_equal(np.isnan(temp), np.isnan(depth))
    sx, sy = CONFIG.temperature.plume_source
    near = np.hypot(x - sx, y - sy) < 10.0
    assert np.nanmax(temp[near]) > np.nanmedian(temp) + 1.5  # the plume shows
    with pytest.raises(ValueError, match='unknown field'):
        sim.ground_truth_field('salinity')


def test_camera_frame():
    sim = Simulator(replace(CONFIG, camera=CameraConfig(width=64, height=48)))
    rgb, mask = sim.render_camera()
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert mask.shape == (48, 64) and mask.dtype == bool and mask.any()
    fx, fy, cx, cy = sim.camera_intrinsics()
    assert fx == fy > 0 and 0 < cx < 64 and 0 < cy < 48


def test_simulator_does_not_load_torch():
    # The sim process stays light: numpy/scipy only.
    code = ('import sys; import asv_autonomy.sim.simulator as s; s.Simulator().step(); '
            'sys.exit("torch" in sys.modules)')
    assert subprocess.run([sys.executable, '-c', code], timeout=60).returncode == 0


def test_invalid_configs():
    with pytest.raises(ValueError, match='draft'):
        Simulator(replace(CONFIG, start_pose=(-2000.0, 0.0, 0.0)))
    with pytest.raises(ValueError, match='dt'):
        SimConfig(dt=0.0)
    with pytest.raises(ValueError, match='start_pose'):
        SimConfig(start_pose=(0.0, 0.0))
